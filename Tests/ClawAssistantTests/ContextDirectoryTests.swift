import ClawReactor
import Glibc
import Testing
@testable import ClawAssistant

private func makeTempDirectory() -> String {
    var template = Array("/tmp/clawchat-context-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

private func removeTree(_ path: String) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }
    if st.st_mode & S_IFMT == S_IFDIR, let d = opendir(path) {
        var names: [String] = []
        while let entry = readdir(d) {
            names.append(withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) })
        }
        closedir(d)
        for name in names where name != "." && name != ".." { removeTree("\(path)/\(name)") }
        rmdir(path)
    } else {
        unlink(path)
    }
}

private func readText(_ path: String) throws -> String? {
    try AtomicFile.read(path, limit: 4 << 20).map { String(decoding: $0, as: UTF8.self) }
}

/// Unix time of a UTC calendar moment.
private func utc(_ year: Int, _ month: Int, _ day: Int, _ hour: Int = 0, _ minute: Int = 0) -> Int64 {
    var t = tm()
    t.tm_year = Int32(year - 1900)
    t.tm_mon = Int32(month - 1)
    t.tm_mday = Int32(day)
    t.tm_hour = Int32(hour)
    t.tm_min = Int32(minute)
    return Int64(timegm(&t))
}

/// Runs `body` with `TZ` set to `zone`, then restores the process's zone. Only the serialized
/// suite below calls it, and no other test in this target reads local time.
private func withTimeZone<T>(_ zone: String, _ body: () throws -> T) rethrows -> T {
    let old = getenv("TZ").map { String(cString: $0) }
    setenv("TZ", zone, 1)
    tzset()
    defer {
        if let old { setenv("TZ", old, 1) } else { unsetenv("TZ") }
        tzset()
    }
    return try body()
}

/// Everything that reads local time, serialized because one test changes `TZ` for the process.
@Suite(.serialized) struct ContextLocalTimeTests {
    @Test func previousCrossesMonthAndYearEnds() {
        #expect(LocalDate(year: 2024, month: 3, day: 1).previous == LocalDate(year: 2024, month: 2, day: 29))
        #expect(LocalDate(year: 2023, month: 3, day: 1).previous == LocalDate(year: 2023, month: 2, day: 28))
        #expect(LocalDate(year: 1900, month: 3, day: 1).previous == LocalDate(year: 1900, month: 2, day: 28))
        #expect(LocalDate(year: 2000, month: 3, day: 1).previous == LocalDate(year: 2000, month: 2, day: 29))
        #expect(LocalDate(year: 2025, month: 1, day: 1).previous == LocalDate(year: 2024, month: 12, day: 31))
        #expect(LocalDate(year: 2024, month: 5, day: 1).previous == LocalDate(year: 2024, month: 4, day: 30))
        #expect(LocalDate(year: 2024, month: 8, day: 1).previous == LocalDate(year: 2024, month: 7, day: 31))
        #expect(LocalDate(year: 2024, month: 3, day: 11).previous == LocalDate(year: 2024, month: 3, day: 10))
        #expect(LocalDate(year: 987, month: 6, day: 5).description == "0987-06-05")
        #expect(LocalDate(year: 2026, month: 11, day: 30).description == "2026-11-30")
    }

    @Test func localDaysFollowTheTimeZone() {
        withTimeZone("UTC") {
            #expect(LocalDate(unixTime: 0) == LocalDate(year: 1970, month: 1, day: 1))
            #expect(LocalDate.clockTime(unixTime: utc(2026, 11, 30, 23, 59)) == "23:59")
        }
        withTimeZone("Asia/Tokyo") {
            #expect(LocalDate(unixTime: utc(2026, 11, 30, 15, 0)) == LocalDate(year: 2026, month: 12, day: 1))
            #expect(LocalDate.clockTime(unixTime: utc(2026, 11, 30, 15, 5)) == "00:05")
        }
    }

    /// New York sprang forward on 2024-03-10, a 23-hour day: 24 hours before 00:30 on the 11th
    /// is 23:30 on the 9th, so "yesterday" must come from the calendar, not from `now - 86_400`.
    @Test(.enabled(if: access("/usr/share/zoneinfo/America/New_York", R_OK) == 0))
    func yesterdayIsRightAcrossADaylightSavingChange() {
        withTimeZone("America/New_York") {
            let t = utc(2024, 3, 11, 4, 30)   // 00:30 EDT
            let today = LocalDate(unixTime: t)
            #expect(today == LocalDate(year: 2024, month: 3, day: 11))
            #expect(LocalDate.clockTime(unixTime: t) == "00:30")
            #expect(today.previous == LocalDate(year: 2024, month: 3, day: 10))
            #expect(LocalDate(unixTime: t - 86_400) == LocalDate(year: 2024, month: 3, day: 9), "the trap the calendar avoids")
            let fallBack = utc(2024, 11, 4, 4, 30)   // 23:30 EST on the 3rd, a 25-hour day
            #expect(LocalDate(unixTime: fallBack) == LocalDate(year: 2024, month: 11, day: 3))
            #expect(LocalDate(unixTime: fallBack).previous == LocalDate(year: 2024, month: 11, day: 2))
            #expect(ContextDirectory.fileNames(now: t).suffix(2) == ["memory/2024-03-11.md", "memory/2024-03-10.md"])
        }
    }

    @Test func defaultsAreCreatedOnceAndNeverOverwritten() throws {
        let root = makeTempDirectory()
        defer { removeTree(root) }
        let path = root + "/state/context"
        let dir = ContextDirectory(path: path)
        #expect(try dir.ensureDefaults() == ["SOUL.md", "AGENTS.md", "USER.md", "MEMORY.md"])
        #expect(AtomicFile.mode(of: path) == 0o700)
        #expect(AtomicFile.mode(of: path + "/memory") == 0o700)
        for (name, content) in DefaultContext.files {
            #expect(try readText("\(path)/\(name)") == content)
            #expect(AtomicFile.mode(of: "\(path)/\(name)") == 0o600)
        }
        try AtomicFile.write(Array("my own soul\n".utf8), to: path + "/SOUL.md")
        try AtomicFile.write([], to: path + "/USER.md")
        AtomicFile.remove(path + "/MEMORY.md")
        #expect(try dir.ensureDefaults() == ["MEMORY.md"])
        #expect(try readText(path + "/SOUL.md") == "my own soul\n")
        #expect(try readText(path + "/USER.md") == "", "an emptied file is the owner's choice")
        #expect(try dir.ensureDefaults() == [])
    }

    @Test func loadReadsTheSixFilesInOrder() throws {
        try withTimeZone("UTC") {
            let root = makeTempDirectory()
            defer { removeTree(root) }
            let dir = ContextDirectory(path: root)
            _ = try dir.ensureDefaults()
            let now = utc(2026, 12, 1, 12)
            try AtomicFile.write(Array("# 2026-11-30\n\nolder".utf8), to: root + "/memory/2026-11-30.md")
            let files = dir.load(now: now)
            #expect(files.map(\.name) == ["SOUL.md", "AGENTS.md", "USER.md", "MEMORY.md", "memory/2026-12-01.md", "memory/2026-11-30.md"])
            #expect(files.prefix(4).map(\.content) == DefaultContext.files.map(\.content))
            #expect(files[4].content == nil, "no log yet today")
            #expect(files[5].content == "# 2026-11-30\n\nolder", "yesterday's log is picked up")
            #expect(dir.warnings.isEmpty)
        }
    }

    @Test func dailyLogEntriesAppendUnderOneHeading() throws {
        try withTimeZone("UTC") {
            let root = makeTempDirectory()
            defer { removeTree(root) }
            let dir = ContextDirectory(path: root)   // no ensureDefaults: memory/ is made on demand
            let t = utc(2026, 11, 30, 9, 5)
            try dir.appendDailyLog(user: "What's up?", assistant: "Not much.\n", time: t)
            try dir.appendDailyLog(user: "Two\nlines", assistant: "Noted.", time: t + 3_600)
            let path = root + "/memory/2026-11-30.md"
            #expect(try readText(path) == """
                # 2026-11-30

                ### 09:05

                **User:** What's up?

                **Claw:** Not much.

                ### 10:05

                **User:** Two
                lines

                **Claw:** Noted.

                """)
            #expect(AtomicFile.mode(of: path) == 0o600)
            try dir.appendDailyLog(user: "tomorrow", assistant: "yes", time: utc(2026, 12, 1, 0, 1))
            let files = dir.load(now: utc(2026, 12, 1, 8))
            #expect(files[4].content?.hasPrefix("# 2026-12-01\n\n### 00:01\n") == true)
            #expect(files[5].content?.contains("**Claw:** Noted.") == true)
        }
    }

    @Test func anUnreadableFileIsNilWithAWarning() throws {
        let root = makeTempDirectory()
        defer { removeTree(root) }
        mkdir(root + "/AGENTS.md", 0o700)
        let dir = ContextDirectory(path: root)
        let files = dir.load(now: 0)
        #expect(files.allSatisfy { $0.content == nil })
        #expect(dir.warnings.count == 1)
        #expect(dir.warnings.first?.contains("AGENTS.md") == true && dir.warnings.first?.contains("Is a directory") == true)
        #expect(try dir.ensureDefaults() == ["SOUL.md", "USER.md", "MEMORY.md"])
        _ = dir.load(now: 0)
        #expect(dir.warnings.count == 1, "warnings are those of the last load")
    }

    @Test func anOversizedLogKeepsItsEndAndOtherFilesTheirStart() throws {
        try withTimeZone("UTC") {
            let root = makeTempDirectory()
            defer { removeTree(root) }
            let dir = ContextDirectory(path: root)
            _ = try dir.ensureDefaults()
            let big = contextTestLines("entry", count: 10_000)   // 400 kB with a two-byte character in each line
            try AtomicFile.write(Array(big.utf8), to: root + "/memory/2026-11-30.md")
            try AtomicFile.write(Array(big.utf8), to: root + "/MEMORY.md")
            let files = dir.load(now: utc(2026, 11, 30, 12))
            let log = try #require(files[4].content)
            let memory = try #require(files[3].content)
            #expect(log.utf8.count <= ContextDirectory.maxFileBytes && log.utf8.count > ContextDirectory.maxFileBytes - 4)
            #expect(big.hasSuffix(log) && big.hasPrefix(memory))
            #expect(memory.utf8.count <= ContextDirectory.maxFileBytes)
            #expect(!log.unicodeScalars.contains("\u{FFFD}") && !memory.unicodeScalars.contains("\u{FFFD}"))
            #expect(dir.warnings.count == 2)
        }
    }
}
