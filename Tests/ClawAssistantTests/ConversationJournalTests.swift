import ClawReactor
import Glibc
import Testing
@testable import ClawAssistant

/// A fresh private directory under /tmp, removed by `removeTree`.
private func makeTempDirectory() -> String {
    var template = Array("/tmp/clawchat-journal-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}

private func removeTree(_ dir: String) {
    guard let d = opendir(dir) else { return }
    while let entry = readdir(d) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
        if name != "." && name != ".." { unlink("\(dir)/\(name)") }
    }
    closedir(d)
    rmdir(dir)
}

private func contents(_ path: String) throws -> [UInt8] {
    try AtomicFile.read(path, limit: 64 << 20) ?? []
}

private func fileSize(_ path: String) -> Int {
    var st = stat()
    return stat(path, &st) == 0 ? Int(st.st_size) : -1
}

/// Records with the awkward cases: multi-byte UTF-8, quotes, backslashes, newlines, tabs.
private let samples: [Exchange] = [
    Exchange(time: 1_764_590_000, user: "Hello", assistant: "Hi! How can I help?"),
    Exchange(time: 1_764_590_060, user: "Sag \"Grüß Gott\" auf Japanisch", assistant: "「こんにちは」\nor 🙇‍♂️ \\ back\\slash"),
    Exchange(time: 1_764_590_120, user: "line one\nline two\ttabbed", assistant: "{\"json\": [1, 2]}\r\n"),
    Exchange(time: 1_764_590_180, user: "ok", assistant: "é"),
]

@Suite struct ConversationJournalTests {
    let dir = makeTempDirectory()
    var path: String { dir + "/conversation.jsonl" }

    @Test func appendedExchangesSurviveAReopen() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        for e in samples { try journal.append(e) }
        #expect(journal.exchanges == samples)
        let again = try ConversationJournal(path: path)
        #expect(again.exchanges == samples)
        #expect(again.skippedLines == 0 && again.discardedTailBytes == 0 && again.firstSkipReason == nil)
        #expect(AtomicFile.mode(of: path) == 0o600)
    }

    @Test func linesAreCompactJSONWithVersionTypeAndChecksum() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        try journal.append(samples[0])
        try journal.clear(time: 1_764_600_000)
        try journal.append(samples[1])
        let text = String(decoding: try contents(path), as: UTF8.self)
        #expect(text.hasSuffix("\n"))
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1, "the clear compacted the file to what follows it")
        let record = try JSONValue.parse(String(lines[0]))
        #expect(record["v"] == 1 && record["type"] == "exchange" && record["time"] == 1_764_590_060)
        #expect(record["user"]?.stringValue == samples[1].user && record["assistant"]?.stringValue == samples[1].assistant)
        #expect(record["sum"]?.stringValue?.utf8.count == 16)
    }

    @Test func clearEmptiesTheHistoryAndTheFile() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        try journal.append(samples[0])
        try journal.append(samples[1])
        try journal.clear(time: 1_764_600_000)
        #expect(journal.exchanges.isEmpty)
        #expect(fileSize(path) == 0)
        #expect(try ConversationJournal(path: path).exchanges.isEmpty)
        try journal.append(samples[2])
        #expect(try ConversationJournal(path: path).exchanges == [samples[2]])
    }

    @Test func aClearRecordInTheFileDropsWhatCameBefore() throws {
        defer { removeTree(dir) }
        let lines = [JournalRecord.exchange(samples[0]), .exchange(samples[1]), .clear(time: 5), .exchange(samples[2])]
        try AtomicFile.write(lines.flatMap(\.line), to: path)
        #expect(try ConversationJournal(path: path).exchanges == [samples[2]])
    }

    /// The crash test: a file cut at every byte offset, as `kill -9` or a power cut can leave it.
    @Test func aFileCutAtAnyByteLoadsExactlyTheCompleteLines() throws {
        defer { removeTree(dir) }
        let lines = samples.map { JournalRecord.exchange($0).line }
        let full = lines.flatMap { $0 }
        var lineEnds: [Int] = []
        for line in lines { lineEnds.append((lineEnds.last ?? 0) + line.count) }
        let extra = Exchange(time: 1_764_599_999, user: "after the crash", assistant: "still here")
        for cut in 0...full.count {
            try AtomicFile.write(Array(full[..<cut]), to: path)
            let complete = lineEnds.filter { $0 <= cut }.count
            let goodEnd = lineEnds.last { $0 <= cut } ?? 0
            let journal = try ConversationJournal(path: path)
            #expect(journal.exchanges == Array(samples.prefix(complete)), "cut at \(cut)")
            #expect(journal.skippedLines == 0, "cut at \(cut)")
            #expect(journal.discardedTailBytes == cut - goodEnd, "cut at \(cut)")
            #expect(fileSize(path) == goodEnd, "the torn line is cut off the file (cut at \(cut))")
            try journal.append(extra)
            let reloaded = try ConversationJournal(path: path)
            #expect(reloaded.exchanges == Array(samples.prefix(complete)) + [extra], "cut at \(cut)")
            #expect(reloaded.skippedLines == 0 && reloaded.discardedTailBytes == 0, "cut at \(cut)")
        }
    }

    @Test func aFlippedByteInAMiddleLineIsSkippedAndCounted() throws {
        defer { removeTree(dir) }
        let lines = samples.map { JournalRecord.exchange($0).line }
        let start = lines[0].count
        let full = lines.flatMap { $0 }
        for offset in start..<(start + lines[1].count - 1) {
            var damaged = full
            damaged[offset] ^= 0x01
            try AtomicFile.write(damaged, to: path)
            let journal = try ConversationJournal(path: path)
            #expect(journal.exchanges == [samples[0], samples[2], samples[3]], "flip at \(offset)")
            #expect(journal.skippedLines == 1, "flip at \(offset)")
            #expect(journal.firstSkipReason?.hasPrefix("line 2: ") == true, "flip at \(offset)")
        }
    }

    @Test func aRecordFromANewerVersionIsSkippedWithTheReason() throws {
        defer { removeTree(dir) }
        let newer = #"{"v":2,"type":"exchange","time":1,"user":"a","assistant":"b","sum":"0000000000000000"}"#
        let bytes = JournalRecord.exchange(samples[0]).line + Array((newer + "\n").utf8) + JournalRecord.exchange(samples[1]).line
        try AtomicFile.write(bytes, to: path)
        let journal = try ConversationJournal(path: path)
        #expect(journal.exchanges == [samples[0], samples[1]])
        #expect(journal.skippedLines == 1)
        let reason = try #require(journal.firstSkipReason)
        #expect(reason.hasPrefix("line 2: record version 2 is newer"), "\(reason)")
    }

    @Test func junkLinesAreSkippedAndTheFirstReasonKept() throws {
        defer { removeTree(dir) }
        let junk = "not json\n[1,2]\n\n{\"v\":1,\"type\":\"exchange\"}\n"
        try AtomicFile.write(Array(junk.utf8) + JournalRecord.exchange(samples[3]).line, to: path)
        let journal = try ConversationJournal(path: path)
        #expect(journal.exchanges == [samples[3]])
        #expect(journal.skippedLines == 3, "a blank line is not counted")
        #expect(journal.firstSkipReason?.hasPrefix("line 1: not valid JSON") == true)
    }

    @Test func compactionKeepsTheNewestAndShrinksTheFile() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path, maxBytes: 1_000, keep: 3)
        var all: [Exchange] = []
        var shrank = false
        for i in 0..<30 {
            let e = Exchange(time: Int64(i), user: "question \(i)", assistant: String(repeating: "answer ", count: 5))
            let before = fileSize(path)
            try journal.append(e)
            all.append(e)
            if fileSize(path) < before { shrank = true }
            #expect(journal.exchanges == Array(all.suffix(3)))
            #expect(fileSize(path) <= 1_000)
            #expect(journal.compactionError == nil)
        }
        #expect(shrank)
        #expect(try ConversationJournal(path: path, maxBytes: 1_000, keep: 3).exchanges == Array(all.suffix(3)))
    }

    @Test func compactionKeepsHalfOfMaxBytesSoItDoesNotRunOnEveryAppend() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path, maxBytes: 2_000, keep: 500)
        var compactions = 0
        for i in 0..<200 {
            let before = fileSize(path)
            try journal.append(Exchange(time: Int64(i), user: "q\(i)", assistant: "a\(i)"))
            if fileSize(path) < before {
                compactions += 1
                #expect(fileSize(path) <= 1_000)
            }
        }
        #expect(compactions > 0 && compactions < 40)
        let reloaded = try ConversationJournal(path: path, maxBytes: 2_000, keep: 500)
        #expect(reloaded.exchanges == journal.exchanges)
        #expect(journal.exchanges.last?.user == "q199")
    }

    @Test func anOversizedFileIsCompactedOnLoad() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        for i in 0..<50 { try journal.append(Exchange(time: Int64(i), user: "q\(i)", assistant: "a\(i)")) }
        let small = try ConversationJournal(path: path, maxBytes: 4 << 20, keep: 10)
        #expect(small.exchanges.map(\.user) == (40..<50).map { "q\($0)" })
        let big = fileSize(path)
        #expect(try ConversationJournal(path: path, maxBytes: 500, keep: 10).exchanges.count < 10)
        #expect(fileSize(path) < big)
    }

    @Test func aMegabyteAnswerRoundTrips() throws {
        defer { removeTree(dir) }
        let text = String(repeating: "Zürich \"quoted\"\n", count: 1 << 16)
        let journal = try ConversationJournal(path: path)
        try journal.append(Exchange(time: 1, user: "long please", assistant: text))
        #expect(try ConversationJournal(path: path).exchanges.first?.assistant == text)
    }

    @Test func aWriteThatFailsPartWayLeavesTheFileAsItWas() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        try journal.append(samples[0])
        let before = try contents(path)
        journal.writeCall = { fd, buffer, count in
            _ = Glibc.write(fd, buffer, count / 2)
            errno = ENOSPC
            return -1
        }
        #expect(throws: JournalError.io(path: path, operation: "write", errno: ENOSPC)) { try journal.append(samples[1]) }
        #expect(journal.exchanges == [samples[0]])
        #expect(try contents(path) == before)
        journal.writeCall = { Glibc.write($0, $1, $2) }
        try journal.append(samples[2])
        let reloaded = try ConversationJournal(path: path)
        #expect(reloaded.exchanges == [samples[0], samples[2]])
        #expect(reloaded.skippedLines == 0)
    }

    @Test func shortAndInterruptedWritesAreCompleted() throws {
        defer { removeTree(dir) }
        let journal = try ConversationJournal(path: path)
        var calls = 0
        journal.writeCall = { fd, buffer, count in
            calls += 1
            if calls % 3 == 0 { errno = EINTR; return -1 }
            return Glibc.write(fd, buffer, min(count, 7))
        }
        for e in samples { try journal.append(e) }
        #expect(calls > 20)
        #expect(try ConversationJournal(path: path).exchanges == samples)
    }

    @Test func errorsNameThePathAndTheReason() throws {
        defer { removeTree(dir) }
        let missing = dir + "/no/such/dir/conversation.jsonl"
        #expect(throws: JournalError.io(path: missing, operation: "open", errno: ENOENT)) {
            try ConversationJournal(path: missing)
        }
        let message = JournalError.io(path: missing, operation: "open", errno: ENOENT).description
        #expect(message.contains(missing) && message.contains("No such file or directory"))
    }
}
