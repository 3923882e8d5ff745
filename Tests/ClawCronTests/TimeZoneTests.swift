import Foundation
import Testing
import ClawReactor
@testable import ClawCron

/// Seconds since the epoch of a UTC wall-clock time.
private func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Int64 {
    LocalDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s).secondsAsIfUTC
}

private func zone(_ name: String) throws -> TimeZoneRules { try TimeZoneRules.load(named: name) }

private func zoneFile(_ name: String) throws -> [UInt8] {
    try #require(try AtomicFile.read("/usr/share/zoneinfo/" + name))
}

/// Builds a TZif file: a version 1 block with the 32-bit-representable part of the data, and
/// for version 2+ a 64-bit block and the footer.
private func tzif(version: UInt8 = UInt8(ascii: "2"), transitions: [(Int64, UInt8)],
                  types: [(utoff: Int32, isDST: Bool, abbreviation: String)], footer: String?,
                  leapCount: UInt32 = 0) -> [UInt8] {
    func be(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).reversed().map { UInt8(truncatingIfNeeded: v >> (8 * UInt64($0))) } }
    var chars: [UInt8] = [], indices: [UInt8] = []
    for t in types { indices.append(UInt8(chars.count)); chars += Array(t.abbreviation.utf8) + [0] }
    func block(_ timeSize: Int, _ list: [(Int64, UInt8)]) -> [UInt8] {
        var out = Array("TZif".utf8) + [version] + [UInt8](repeating: 0, count: 15)
        for c in [0, 0, leapCount, UInt32(list.count), UInt32(types.count), UInt32(chars.count)] { out += be(UInt64(c), 4) }
        for (t, _) in list { out += be(UInt64(bitPattern: t), timeSize) }
        out += list.map(\.1)
        for (i, t) in types.enumerated() {
            out += be(UInt64(UInt32(bitPattern: t.utoff)), 4) + [t.isDST ? 1 : 0, indices[i]]
        }
        out += chars
        for _ in 0..<leapCount { out += [UInt8](repeating: 0, count: timeSize + 4) }
        return out
    }
    let small = transitions.filter { $0.0 >= Int64(Int32.min) && $0.0 <= Int64(Int32.max) }
    if version == 0 { return block(4, small) }
    return block(4, small) + block(8, transitions) + Array("\n\(footer ?? "")\n".utf8)
}

@Suite struct TimeZoneTests {
    // MARK: Real zones, against values from Python's zoneinfo

    @Test func newYorkSpringForward() throws {
        let ny = try zone("America/New_York")
        let jump = utc(2026, 3, 8, 7)  // 02:00 EST becomes 03:00 EDT
        #expect(ny.offset(at: jump - 1) == -18_000 && ny.abbreviation(at: jump - 1) == "EST")
        #expect(ny.offset(at: jump) == -14_400 && ny.abbreviation(at: jump) == "EDT")
        #expect(ny.local(jump - 1) == LocalDateTime(year: 2026, month: 3, day: 8, hour: 1, minute: 59, second: 59))
        #expect(ny.local(jump) == LocalDateTime(year: 2026, month: 3, day: 8, hour: 3))
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 2, minute: 30)) == [])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 2)) == [])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 1, minute: 30)) == [utc(2026, 3, 8, 6, 30)])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 3)) == [jump])
    }

    @Test func newYorkFallBack() throws {
        let ny = try zone("America/New_York")
        let back = utc(2026, 11, 1, 6)  // 02:00 EDT becomes 01:00 EST
        #expect(ny.offset(at: back - 1) == -14_400 && ny.abbreviation(at: back - 1) == "EDT")
        #expect(ny.offset(at: back) == -18_000 && ny.abbreviation(at: back) == "EST")
        let twice = ny.instants(for: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 30))
        #expect(twice == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)])
        #expect(twice[1] - twice[0] == 3600)
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1)) == [back - 3600, back])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 11, day: 1, hour: 1, minute: 59, second: 59)) == [back - 1, back + 3599])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 11, day: 1, hour: 2)) == [utc(2026, 11, 1, 7)])
        #expect(ny.instants(for: LocalDateTime(year: 2026, month: 11, day: 1, hour: 0, minute: 59)) == [utc(2026, 11, 1, 4, 59)])
    }

    @Test func londonSwitchesAtOneUTC() throws {
        let london = try zone("Europe/London")
        let spring = utc(2026, 3, 29, 1), autumn = utc(2026, 10, 25, 1)
        #expect(london.offset(at: spring - 1) == 0 && london.abbreviation(at: spring - 1) == "GMT")
        #expect(london.offset(at: spring) == 3600 && london.abbreviation(at: spring) == "BST")
        #expect(london.offset(at: autumn - 1) == 3600 && london.offset(at: autumn) == 0)
        #expect(london.instants(for: LocalDateTime(year: 2026, month: 3, day: 29, hour: 1, minute: 30)) == [])
        #expect(london.instants(for: LocalDateTime(year: 2026, month: 10, day: 25, hour: 1, minute: 30))
                == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)])
    }

    @Test func lordHoweMovesItsClocksByHalfAnHour() throws {
        let lh = try zone("Australia/Lord_Howe")
        let end = utc(2026, 4, 4, 15), start = utc(2026, 10, 3, 15, 30)
        #expect(lh.offset(at: end - 1) == 39_600 && lh.abbreviation(at: end - 1) == "+11")
        #expect(lh.offset(at: end) == 37_800 && lh.abbreviation(at: end) == "+1030")
        #expect(lh.offset(at: start - 1) == 37_800 && lh.offset(at: start) == 39_600)
        // 02:00 standard becomes 02:30 daylight: a 30-minute gap.
        #expect(lh.instants(for: LocalDateTime(year: 2026, month: 10, day: 4, hour: 2, minute: 15)) == [])
        #expect(lh.instants(for: LocalDateTime(year: 2026, month: 10, day: 4, hour: 2, minute: 30)) == [start])
        // 02:00 daylight becomes 01:30 standard: a 30-minute overlap.
        #expect(lh.instants(for: LocalDateTime(year: 2026, month: 4, day: 5, hour: 1, minute: 45)) == [end - 900, end + 900])
    }

    @Test func kolkataHasAFixedHalfHourOffset() throws {
        let kolkata = try zone("Asia/Kolkata")
        let noon = utc(2026, 6, 1, 12)
        #expect(kolkata.offset(at: noon) == 19_800 && kolkata.abbreviation(at: noon) == "IST")
        #expect(kolkata.local(noon) == LocalDateTime(year: 2026, month: 6, day: 1, hour: 17, minute: 30))
        #expect(kolkata.instants(for: LocalDateTime(year: 2026, month: 6, day: 1, hour: 17, minute: 30)) == [noon])
        #expect(kolkata.offset(at: utc(2090, 1, 1)) == 19_800)
        #expect(kolkata.offset(at: utc(1890, 6, 1, 12)) == 19_270 && kolkata.abbreviation(at: utc(1890, 6, 1, 12)) == "MMT")
    }

    @Test func theFooterRuleGovernsAfterTheLastTransition() throws {
        let ny = try zone("America/New_York")
        #expect(try #require(ny.transitions.last) < utc(2090, 1, 1), "2090 must be beyond the table")
        #expect(ny.footer == (try PosixTZRule(parsing: "EST5EDT,M3.2.0,M11.1.0")))
        let spring = utc(2090, 3, 12, 7), autumn = utc(2090, 11, 5, 6)
        #expect(ny.offset(at: spring - 1) == -18_000 && ny.offset(at: spring) == -14_400)
        #expect(ny.offset(at: autumn - 1) == -14_400 && ny.offset(at: autumn) == -18_000)
        #expect(ny.abbreviation(at: utc(2090, 7, 1)) == "EDT")
        #expect(ny.instants(for: LocalDateTime(year: 2090, month: 3, day: 12, hour: 2, minute: 30)) == [])
        let london = try zone("Europe/London")
        #expect(london.offset(at: utc(2090, 3, 26, 1) - 1) == 0 && london.offset(at: utc(2090, 3, 26, 1)) == 3600)
        #expect(london.offset(at: utc(2090, 10, 29, 1) - 1) == 3600 && london.offset(at: utc(2090, 10, 29, 1)) == 0)
    }

    @Test func datesBefore1900UseLocalMeanTime() throws {
        let ny = try zone("America/New_York")
        #expect(ny.offset(at: utc(1850, 6, 1)) == -17_762 && ny.abbreviation(at: utc(1850, 6, 1)) == "LMT")
        #expect(ny.local(utc(1850, 6, 1)) == LocalDateTime(year: 1850, month: 5, day: 31, hour: 19, minute: 3, second: 58))
        // Standard time arrived at noon local time on 1883-11-18.
        let railway = utc(1883, 11, 18, 17)
        #expect(ny.offset(at: railway - 1) == -17_762 && ny.offset(at: railway) == -18_000)
        #expect(try zone("Europe/London").offset(at: utc(1890, 6, 1, 12)) == 0)
        #expect(try zone("Australia/Lord_Howe").offset(at: utc(1890, 6, 1, 12)) == 38_180)
    }

    @Test func utcNeedsNoFile() throws {
        for name in ["UTC", "Etc/UTC"] {
            let z = try TimeZoneRules.load(named: name, root: "/nonexistent")
            #expect(z.name == name && z.offset(at: utc(2026, 7, 1)) == 0 && z.abbreviation(at: 0) == "UTC")
        }
        #expect(TimeZoneRules.utc.local(utc(2026, 3, 8, 2, 30)) == LocalDateTime(year: 2026, month: 3, day: 8, hour: 2, minute: 30))
        #expect(TimeZoneRules.utc.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 2, minute: 30)) == [utc(2026, 3, 8, 2, 30)])
    }

    // MARK: POSIX TZ strings

    @Test func posixStringMatchesTheZoneFile() throws {
        let ny = try zone("America/New_York")
        let rule = try TimeZoneRules(posix: "EST5EDT,M3.2.0,M11.1.0", name: "test")
        let bare = try TimeZoneRules(posix: "EST5EDT", name: "test")  // dates default to the US rule
        var t = utc(2026, 1, 1)
        while t < utc(2031, 1, 1) {
            #expect(rule.offset(at: t) == ny.offset(at: t) && rule.abbreviation(at: t) == ny.abbreviation(at: t), "at \(t)")
            #expect(bare.offset(at: t) == ny.offset(at: t), "at \(t)")
            t += 3 * 3600 + 17
        }
    }

    @Test func posixOffsetsAreWestPositiveAndQuotedNamesWork() throws {
        let tehran = try TimeZoneRules(posix: "<+0330>-3:30", name: "test")
        #expect(tehran.offset(at: 0) == 12_600 && tehran.abbreviation(at: 0) == "+0330")
        #expect(try TimeZoneRules(posix: "IST-5:30", name: "test").offset(at: 0) == 19_800)
        #expect(try TimeZoneRules(posix: "<-03>3", name: "test").offset(at: 0) == -10_800)
        #expect(try TimeZoneRules(posix: "XXX+1:02:03", name: "test").offset(at: 0) == -3723)
        let chatham = try TimeZoneRules(posix: "<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45", name: "test")
        #expect(chatham.offset(at: utc(2026, 1, 1)) == 49_500 && chatham.offset(at: utc(2026, 7, 1)) == 45_900)
    }

    @Test func posixDefaultsAreOneHourAheadAtTwoInTheMorning() throws {
        let z = try TimeZoneRules(posix: "AAA3BBB,M3.2.0,M11.1.0", name: "test")
        // 02:00 standard (UTC-3) on the second Sunday of March, 02:00 daylight (UTC-2) in November.
        #expect(z.offset(at: utc(2026, 3, 8, 5) - 1) == -10_800 && z.offset(at: utc(2026, 3, 8, 5)) == -7200)
        #expect(z.offset(at: utc(2026, 11, 1, 4) - 1) == -7200 && z.offset(at: utc(2026, 11, 1, 4)) == -10_800)
        #expect(z.abbreviation(at: utc(2026, 7, 1)) == "BBB")
    }

    @Test func posixSouthernHemisphereRule() throws {
        let sydney = try TimeZoneRules(posix: "AEST-10AEDT,M10.1.0,M4.1.0/3", name: "test")
        #expect(sydney.offset(at: utc(2026, 1, 15)) == 39_600 && sydney.offset(at: utc(2026, 7, 15)) == 36_000)
        #expect(sydney.offset(at: utc(2026, 4, 4, 16) - 1) == 39_600 && sydney.offset(at: utc(2026, 4, 4, 16)) == 36_000)
        #expect(sydney.offset(at: utc(2026, 10, 3, 16) - 1) == 36_000 && sydney.offset(at: utc(2026, 10, 3, 16)) == 39_600)
    }

    @Test func posixNegativeAndLongRuleTimes() throws {
        // Greenland: the switch is at -1:00 (22:00 the day before) and at 0:00 local time.
        let nuuk = try TimeZoneRules(posix: "<-02>2<-01>,M3.5.0/-1,M10.5.0/0", name: "test")
        #expect(nuuk.offset(at: utc(2026, 3, 29, 1) - 1) == -7200 && nuuk.offset(at: utc(2026, 3, 29, 1)) == -3600)
        #expect(nuuk.offset(at: utc(2026, 10, 25, 1) - 1) == -3600 && nuuk.offset(at: utc(2026, 10, 25, 1)) == -7200)
        // RFC 8536's example of daylight time all year: from Jan 1 00:00 to Dec 31 25:00.
        let always = try TimeZoneRules(posix: "EST5EDT,0/0,J365/25", name: "test")
        for t in [utc(2026, 1, 1), utc(2026, 7, 1), utc(2026, 12, 31, 23, 59), utc(2028, 2, 29), utc(2028, 12, 31, 12)] {
            #expect(always.offset(at: t) == -14_400, "at \(t)")
        }
        #expect(always.nextTransition(after: utc(2026, 6, 1)).map { always.offset(at: $0) } == -14_400)
    }

    @Test func posixJulianDayForms() throws {
        // Jn never counts February 29; n (zero-based) does.
        let j = try TimeZoneRules(posix: "XXX0YYY,J60,J300", name: "test")
        #expect(j.offset(at: utc(2028, 3, 1, 2) - 1) == 0 && j.offset(at: utc(2028, 3, 1, 2)) == 3600)
        let n = try TimeZoneRules(posix: "XXX0YYY,59,300", name: "test")
        #expect(n.offset(at: utc(2028, 2, 29, 2) - 1) == 0 && n.offset(at: utc(2028, 2, 29, 2)) == 3600)
        #expect(n.offset(at: utc(2027, 3, 1, 2) - 1) == 0 && n.offset(at: utc(2027, 3, 1, 2)) == 3600)
        #expect(n.offset(at: utc(2027, 10, 28, 1) - 1) == 3600 && n.offset(at: utc(2027, 10, 28, 1)) == 0)
    }

    @Test func badPosixStringsSayWhatIsWrong() {
        let cases: [(String, String)] = [
            ("", "empty"),
            ("EST", "has no UTC offset"),
            ("ES5", "three or more letters"),
            ("5EST", "found \"5EST\""),
            ("EST25", "at most 24"),
            ("EST5:60", "60 minutes"),
            ("<+03", "lacks its closing '>'"),
            ("<+0 3>-3", "invalid character"),
            ("EST5EDT,M3.2.0", "end rule"),
            ("EST5EDT,M13.1.0,M11.1.0", "out of range"),
            ("EST5EDT,M3.6.0,M11.1.0", "out of range"),
            ("EST5EDT,J366,J300", "out of range J1-J365"),
            ("EST5EDT,M3.2.0/168,M11.1.0", "at most 167"),
            ("EST5EDT,M3.2.0,M11.1.0x", "unexpected text \"x\""),
            ("EST5EDT;M3.2.0,M11.1.0", "expected an offset or a ','"),
        ]
        for (text, problem) in cases {
            do {
                _ = try TimeZoneRules(posix: text, name: "Test/Zone")
                Issue.record("\"\(text)\" parsed")
            } catch {
                guard case .malformedPosixTZ(let name, let string, let p) = error else { Issue.record("\(error)"); continue }
                #expect(name == "Test/Zone" && string == text)
                #expect(p.contains(problem), "\"\(text)\": \(p)")
                #expect(error.description.hasPrefix("time zone \"Test/Zone\": invalid POSIX TZ string \"\(text)\": "))
            }
        }
    }

    // MARK: TZif structure

    @Test func slimFileWithOnlyAFooterAgreesWithTheFullFile() throws {
        let ny = try zone("America/New_York")
        let slim = try TimeZoneRules(tzif: tzif(transitions: [], types: [(-18_000, false, "EST")],
                                                footer: "EST5EDT,M3.2.0,M11.1.0"), name: "slim")
        #expect(slim.transitions.isEmpty)
        var t = utc(2007, 1, 1)
        while t < utc(2040, 1, 1) {
            #expect(slim.offset(at: t) == ny.offset(at: t) && slim.abbreviation(at: t) == ny.abbreviation(at: t), "at \(t)")
            t += 86_400 * 5 + 3601
        }
    }

    @Test func versionOneAndEmptyFooterUseTheLastType() throws {
        let types: [(utoff: Int32, isDST: Bool, abbreviation: String)] = [(3600, false, "AAA"), (7200, false, "BBB")]
        let change = utc(2000, 1, 1)
        for bytes in [tzif(version: 0, transitions: [(change, 1)], types: types, footer: nil),
                      tzif(version: UInt8(ascii: "3"), transitions: [(change, 1)], types: types, footer: "")] {
            let z = try TimeZoneRules(tzif: bytes, name: "synthetic")
            #expect(z.offset(at: change - 1) == 3600 && z.abbreviation(at: change - 1) == "AAA")
            #expect(z.offset(at: change) == 7200 && z.offset(at: utc(2090, 1, 1)) == 7200 && z.abbreviation(at: change) == "BBB")
            #expect(z.nextTransition(after: change) == nil)
        }
    }

    @Test func versionThreeFooterWithExtensions() throws {
        let bytes = tzif(version: UInt8(ascii: "3"), transitions: [(utc(1980, 1, 1), 0)], types: [(-7200, false, "-02")],
                         footer: "<-02>2<-01>,M3.5.0/-1,M10.5.0/0")
        let z = try TimeZoneRules(tzif: bytes, name: "synthetic")
        #expect(z.offset(at: utc(2026, 3, 29, 1) - 1) == -7200 && z.offset(at: utc(2026, 3, 29, 1)) == -3600)
        #expect(z.abbreviation(at: utc(2026, 7, 1)) == "-01")
    }

    @Test func truncatedAndGarbageFilesAreRefused() throws {
        let ny = try zoneFile("America/New_York")
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(tzif: Array(ny.prefix(100)), name: "cut") }
        do {
            _ = try TimeZoneRules(tzif: Array(ny.prefix(100)), name: "America/New_York")
        } catch {
            #expect(error.description.hasPrefix("time zone \"America/New_York\" is not a valid TZif file: truncated"))
        }
        #expect(throws: TimeZoneError.malformedTZif(name: "junk", problem: "the file does not start with \"TZif\"")) {
            try TimeZoneRules(tzif: Array("# not a zone file, but long enough to have a header of 44 bytes\n".utf8), name: "junk")
        }
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(tzif: [], name: "empty") }
        #expect(throws: TimeZoneError.self) { try TimeZoneRules(tzif: Array(ny.dropLast()), name: "no final newline") }
    }

    @Test func everyPrefixOfARealFileParsesOrThrows() throws {
        let bytes = try zoneFile("America/New_York")
        var parsed = 0
        for n in 0...bytes.count {
            if (try? TimeZoneRules(tzif: Array(bytes[..<n]), name: "prefix")) != nil { parsed += 1 }
        }
        #expect(parsed == 1, "only the whole file is complete")
    }

    @Test func corruptedBytesNeverCrash() throws {
        var rng = SplitMix64(seed: 8536)
        for name in ["Australia/Lord_Howe", "Asia/Kolkata", "Etc/UTC"] {
            let bytes = try zoneFile(name)
            for i in bytes.indices {
                var copy = bytes
                copy[i] = UInt8.random(in: 0...255, using: &rng)
                if let z = try? TimeZoneRules(tzif: copy, name: name) {
                    _ = z.offset(at: utc(2026, 1, 1))
                    _ = z.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 2))
                }
            }
        }
    }

    @Test func structuralErrorsAreNamed() {
        func problem(_ bytes: [UInt8]) -> String {
            do { _ = try TimeZoneRules(tzif: bytes, name: "x"); return "parsed" } catch {
                if case .malformedTZif(_, let p) = error { return p }
                return "\(error)"
            }
        }
        let types: [(utoff: Int32, isDST: Bool, abbreviation: String)] = [(0, false, "UTC")]
        #expect(problem(tzif(transitions: [(10, 0), (5, 0)], types: types, footer: "UTC0")).contains("is not after the previous one"))
        #expect(problem(tzif(transitions: [(10, 3)], types: types, footer: "UTC0")).contains("refers to local time type 3"))
        #expect(problem(tzif(transitions: [], types: [(100_000, false, "BIG")], footer: "UTC0")).contains("beyond ±25:59:59"))
        #expect(problem(tzif(transitions: [], types: types, footer: "UTC0", leapCount: 1)).contains("right/"))
        #expect(problem(tzif(transitions: [], types: types, footer: "nonsense")).contains("footer TZ string \"nonsense\""))
        var badVersion = tzif(transitions: [], types: types, footer: "UTC0")
        badVersion[4] = UInt8(ascii: "x")
        #expect(problem(badVersion).contains("unknown version"))
        var hugeCount = tzif(transitions: [], types: types, footer: "UTC0")
        hugeCount[32...35] = [0xFF, 0xFF, 0xFF, 0xFF]  // timecnt of the version 1 header
        #expect(problem(hugeCount).contains("truncated"))
    }

    // MARK: Loading by name

    @Test func loadingMatchesParsingTheFile() throws {
        let loaded = try zone("America/New_York")
        #expect(loaded == (try TimeZoneRules(tzif: zoneFile("America/New_York"), name: "America/New_York")))
        #expect(loaded.name == "America/New_York")
    }

    @Test func unsafeOrMalformedNamesAreRefused() {
        for bad in ["../etc/passwd", "/etc/passwd", "", "America/../../etc/passwd", "America/New York",
                    "America//New_York", "Europe/Paris/", "zone.tab", String(repeating: "A", count: 101)] {
            #expect(throws: TimeZoneError.self, "\(bad)") { try TimeZoneRules.load(named: bad) }
            do { _ = try TimeZoneRules.load(named: bad) } catch {
                guard case .invalidName(let name, _) = error else { Issue.record("\(bad): \(error)"); continue }
                #expect(name == bad)
            }
        }
        #expect(throws: TimeZoneError.invalidName("../etc/passwd", reason: "it contains a \"..\" component")) {
            try TimeZoneRules.load(named: "../etc/passwd")
        }
    }

    @Test func missingUnreadableAndForeignFiles() throws {
        #expect(throws: TimeZoneError.notFound(name: "Mars/Olympus_Mons", path: "/usr/share/zoneinfo/Mars/Olympus_Mons")) {
            try TimeZoneRules.load(named: "Mars/Olympus_Mons")
        }
        do { _ = try TimeZoneRules.load(named: "America") } catch {
            guard case .unreadable(let name, let path, _) = error else { Issue.record("\(error)"); return }
            #expect(name == "America" && path == "/usr/share/zoneinfo/America")
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("Europe/Paris\n".utf8).write(to: dir.appendingPathComponent("Notes"))
        let short = "truncated: the file ends inside the header (44 bytes needed at offset 0, 13 left)"
        #expect(throws: TimeZoneError.malformedTZif(name: "Notes", problem: short)) {
            try TimeZoneRules.load(named: "Notes", root: dir.path)
        }
        try Data(zoneFile("Asia/Kolkata")).write(to: dir.appendingPathComponent("Local"))
        #expect(try TimeZoneRules.load(named: "Local", root: dir.path).offset(at: 0) == 19_800)
    }
}

