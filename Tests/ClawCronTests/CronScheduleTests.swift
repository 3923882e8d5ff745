import Testing
@testable import ClawCron
import ClawReactor

/// Seconds since the epoch of a UTC wall-clock time.
private func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int = 0, _ mi: Int = 0, _ s: Int = 0) -> Int64 {
    LocalDateTime(year: y, month: mo, day: d, hour: h, minute: mi, second: s).secondsAsIfUTC
}

private func zone(_ name: String) throws -> TimeZoneRules { try TimeZoneRules.load(named: name) }

private func show(_ t: Int64?) -> String { t.map { "\(LocalDateTime(asIfUTC: $0)) UTC" } ?? "nil" }

@Suite struct CronScheduleTests {
    /// (expression, after, expected next run), all in UTC; checked by hand and against an
    /// independent brute-force implementation.
    static let utcTable: [(String, Int64, Int64?)] = [
        ("0 9 * * 1-5", utc(2026, 5, 15, 18), utc(2026, 5, 18, 9)),     // Friday evening -> Monday
        ("0 9 * * 1-5", utc(2026, 5, 18, 8, 59, 59), utc(2026, 5, 18, 9)),
        ("0 9 * * MON-FRI", utc(2026, 5, 18, 9), utc(2026, 5, 19, 9)),   // strictly after
        ("@weekly", utc(2026, 5, 13, 12), utc(2026, 5, 17)),             // Wednesday -> Sunday 00:00
        ("0 0 13 * 5", utc(2026, 4, 10), utc(2026, 4, 13)),              // the 13th, a Monday
        ("0 0 13 * 5", utc(2026, 4, 13), utc(2026, 4, 17)),              // then a Friday
        ("0 0 13 * 5", utc(2026, 3, 12), utc(2026, 3, 13)),              // Friday the 13th
        ("0 0 */2 * MON", utc(2026, 5, 1), utc(2026, 5, 11)),            // "*"-led day field: odd days AND Mondays
        ("0 0 1 * MON", utc(2026, 5, 1), utc(2026, 5, 4)),               // both restricted: 1st OR Monday
        ("0 0 29 2 *", utc(2026, 1, 1), utc(2028, 2, 29)),
        ("0 0 29 2 *", utc(2096, 3, 1), utc(2104, 2, 29)),               // 2100 is not a leap year
        ("*/15 * * * *", utc(2026, 5, 13, 10, 7), utc(2026, 5, 13, 10, 15)),
        ("*/15 * * * *", utc(2026, 5, 13, 10, 15), utc(2026, 5, 13, 10, 30)),
        ("*/15 * * * *", utc(2026, 5, 13, 23, 59, 59), utc(2026, 5, 14)),
        ("1-10/2 * * * *", utc(2026, 5, 13, 10, 4), utc(2026, 5, 13, 10, 5)),
        ("1-10/2 * * * *", utc(2026, 5, 13, 10, 9), utc(2026, 5, 13, 11, 1)),
        ("50/5 * * * *", utc(2026, 5, 13, 10, 56), utc(2026, 5, 13, 11, 50)), // N/S = N-59/S
        ("0 0 * JAN,jul SUN", utc(2026, 5, 1), utc(2026, 7, 5)),
        ("0 0 * JAN,jul SUN", utc(2026, 7, 26), utc(2027, 1, 3)),
        ("5 4 * * 7", utc(2026, 5, 13), utc(2026, 5, 17, 4, 5)),         // 7 is Sunday
        ("5 4 * * 0", utc(2026, 5, 13), utc(2026, 5, 17, 4, 5)),
        ("0 12 1 * *", utc(2026, 12, 15), utc(2027, 1, 1, 12)),           // across a year end
        ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
        ("@hourly", utc(2026, 5, 13, 10, 0, 1), utc(2026, 5, 13, 11)),
        ("@daily", utc(2026, 2, 28, 12), utc(2026, 3, 1)),
        ("@midnight", utc(2028, 2, 28, 12), utc(2028, 2, 29)),
        ("@monthly", utc(2026, 5, 13), utc(2026, 6, 1)),
        ("@yearly", utc(2026, 5, 13), utc(2027, 1, 1)),
        ("@annually", utc(2026, 5, 13), utc(2027, 1, 1)),
        ("* * * * *", utc(1969, 12, 31, 23, 59, 30), utc(1970, 1, 1)),   // before the epoch
        ("0 0 30 2 *", utc(2026, 1, 1), nil),
        ("0 0 31 4 *", utc(2026, 1, 1), nil),
        ("0 0 31 2,4,6,9,11 *", utc(2026, 1, 1), nil),
        ("@reboot", utc(2026, 1, 1), nil),
    ]

    @Test(arguments: utcTable) func nextRunInUTC(_ expression: String, _ after: Int64, _ expected: Int64?) throws {
        let got = try CronSchedule.parse(expression).next(after: after, in: .utc)
        #expect(got == expected, "\(expression) after \(show(after)): got \(show(got))")
    }

    /// New York: 2026-03-08 02:00 EST jumps to 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT falls
    /// back to 01:00 EST (06:00 UTC).
    static let newYorkTable: [(String, Int64, Int64?)] = [
        ("0 0 * * *", utc(2026, 1, 10, 12), utc(2026, 1, 11, 5)),         // midnight EST
        ("0 0 * * *", utc(2026, 7, 10, 12), utc(2026, 7, 11, 4)),         // midnight EDT
        ("0 9 * * 1-5", utc(2026, 3, 6, 15), utc(2026, 3, 9, 13)),         // Friday EST -> Monday 09:00 EDT
        // Spring forward, time-of-day jobs: a skipped time runs once, as the clocks land at 03:00.
        ("30 2 * * *", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
        ("30 2 * * *", utc(2026, 3, 8, 7), utc(2026, 3, 9, 6, 30)),
        ("0 2 * * *", utc(2026, 3, 7, 12), utc(2026, 3, 8, 7)),
        ("0,30 2 * * *", utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)),          // both skipped times ran as one
        ("* 2 * * *", utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
        ("* 2 * * *", utc(2026, 3, 8, 7), utc(2026, 3, 9, 6)),
        ("0 3 * * *", utc(2026, 3, 8, 6), utc(2026, 3, 8, 7)),
        ("59 1 * * *", utc(2026, 3, 8, 6), utc(2026, 3, 8, 6, 59)),        // 01:59 EST still exists
        // Spring forward, "*" hour: the missing hour simply has no minutes.
        ("15 * * * *", utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7, 15)),
        ("*/30 * * * *", utc(2026, 3, 8, 6, 45), utc(2026, 3, 8, 7)),
        ("0 */2 * * *", utc(2026, 3, 8, 6, 30), utc(2026, 3, 8, 8)),       // 02:00 is skipped, 04:00 EDT next
        // Fall back, time-of-day jobs: only the first 01:30 (EDT) runs.
        ("30 1 * * *", utc(2026, 11, 1), utc(2026, 11, 1, 5, 30)),
        ("30 1 * * *", utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)),
        ("45 1 * * *", utc(2026, 11, 1, 6, 10), utc(2026, 11, 2, 6, 45)),  // asked during the second pass
        ("0 2 * * *", utc(2026, 11, 1, 5), utc(2026, 11, 1, 7)),           // 02:00 EST happens once
        // Fall back, "*" hour: both passes run.
        ("*/15 * * * *", utc(2026, 11, 1, 5, 45), utc(2026, 11, 1, 6)),    // 01:45 EDT -> 01:00 EST
        ("*/15 * * * *", utc(2026, 11, 1, 6), utc(2026, 11, 1, 6, 15)),
        ("30 * * * *", utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)),  // 01:30 EDT, then 01:30 EST
        // Beyond the zone file's table: the footer rule, 2090-03-12.
        ("30 2 * * *", utc(2090, 3, 11, 12), utc(2090, 3, 12, 7)),
        ("0 0 29 2 *", utc(2026, 1, 1), utc(2028, 2, 29, 5)),
    ]

    @Test(arguments: newYorkTable) func nextRunInNewYork(_ expression: String, _ after: Int64, _ expected: Int64?) throws {
        let ny = try zone("America/New_York")
        let got = try CronSchedule.parse(expression).next(after: after, in: ny)
        #expect(got == expected, "\(expression) after \(show(after)): got \(show(got))")
    }

    @Test func fallBackCountsRunsPerPass() throws {
        // Between 01:00 EDT (05:00 UTC) and 02:00 EST (07:00 UTC) the clocks show 01:xx twice.
        let ny = try zone("America/New_York")
        func runs(_ expression: String) throws -> Int {
            let s = try CronSchedule.parse(expression)
            var count = 0, t = utc(2026, 11, 1, 5) - 1
            while let n = s.next(after: t, in: ny), n < utc(2026, 11, 1, 7) { count += 1; t = n }
            return count
        }
        #expect(try runs("*/15 * * * *") == 8)
        #expect(try runs("*/15 1 * * *") == 4)
        #expect(try runs("* 1 * * *") == 60)
        #expect(try runs("* * * * *") == 120)
    }

    @Test func lordHoweHalfHourGap() throws {
        let lh = try zone("Australia/Lord_Howe")
        // 2026-10-04 02:00 +10:30 jumps to 02:30 +11 (15:30 UTC the day before).
        #expect(try CronSchedule.parse("15 2 * * *").next(after: utc(2026, 10, 3, 12), in: lh) == utc(2026, 10, 3, 15, 30))
        #expect(try CronSchedule.parse("15 * * * *").next(after: utc(2026, 10, 3, 15, 15), in: lh) == utc(2026, 10, 3, 16, 15))
    }

    // MARK: Parsing

    @Test func badExpressionsNameTheFieldAndTheText() {
        let cases: [(String, String)] = [
            ("60 * * * *", "minute: 60 is out of range 0-59"),
            ("* 24 * * *", "hour: 24 is out of range 0-23"),
            ("* * 0 * *", "day of month: 0 is out of range 1-31"),
            ("* * 32 * *", "day of month: 32 is out of range 1-31"),
            ("* * * 13 *", "month: 13 is out of range 1-12"),
            ("* * * * 8", "day of week: 8 is out of range 0-7"),
            ("99999999999 * * * *", "minute: 99999999999 is out of range 0-59"),
            ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), found 4 in \"* * * *\""),
            ("* * * * * echo", "expected 5 fields (minute hour day-of-month month day-of-week), found 6 in \"* * * * * echo\""),
            ("", "the schedule is empty; expected five fields such as \"0 9 * * 1-5\", or @daily"),
            ("*/0 * * * *", "minute: step 0 is out of range 1-59"),
            ("* */24 * * *", "hour: step 24 is out of range 1-23"),
            ("5-1 * * * *", "minute: range 5-1 goes backwards; ranges do not wrap around, so write it as 5-59,0-1"),
            ("* * * * FRI-MON", "day of week: range FRI-MON goes backwards; ranges do not wrap around, so write it as FRI-7,0-MON"),
            ("MON * * * *", "minute: \"MON\" is a name, but names are only allowed in the month and day of week fields"),
            ("* jan * * *", "hour: \"jan\" is a name, but names are only allowed in the month and day of week fields"),
            ("* * * JANUARY *", "month: unknown name \"JANUARY\" (expected JAN-DEC or a number)"),
            ("* * * * FUN", "day of week: unknown name \"FUN\" (expected SUN-SAT or a number)"),
            ("1,,2 * * * *", "minute: empty item in \"1,,2\""),
            ("1, * * * *", "minute: empty item in \"1,\""),
            ("5x * * * *", "minute: \"5x\" is not a number"),
            ("*/5x * * * *", "minute: \"5x\" is not a number"),
            ("1-2-3 * * * *", "minute: \"1-2-3\" is not a valid item (expected *, N, A-B, */S, A-B/S or N/S)"),
            ("*/5/2 * * * *", "minute: \"*/5/2\" is not a valid item (expected *, N, A-B, */S, A-B/S or N/S)"),
            ("-5 * * * *", "minute: \"-5\" is not a valid item (expected *, N, A-B, */S, A-B/S or N/S)"),
            ("*/ * * * *", "minute: \"*/\" is not a valid item (expected *, N, A-B, */S, A-B/S or N/S)"),
            ("@every5m", "unknown schedule \"@every5m\"; the @ forms are "
                + "@reboot, @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly"),
            ("@daily echo hi", "@daily stands alone, but \"echo hi\" follows it"),
        ]
        for (text, message) in cases {
            do {
                let s = try CronSchedule.parse(text)
                Issue.record("\"\(text)\" parsed as \(s)")
            } catch {
                #expect(error.description == message, "\"\(text)\"")
            }
        }
        #expect(throws: CronSyntaxError.outOfRange(.minute, value: "60")) { try CronSchedule.parse("60 * * * *") }
        #expect(throws: CronSyntaxError.reversedRange(.hour, from: "5", to: "1")) { try CronSchedule.parse("* 5-1 * * *") }
    }

    @Test func descriptionIsNormalised() throws {
        #expect(try CronSchedule.parse("  0\t9  * * mon-fri ").description == "0 9 * * MON-FRI")
        #expect(try CronSchedule.parse("0 0 * jan,Jul sun").description == "0 0 * JAN,JUL SUN")
        #expect(try CronSchedule.parse("@Annually").description == "@annually")
        #expect(try CronSchedule.parse("@reboot").description == "@reboot")
        #expect(try CronSchedule.parse("7  * * * 0") == CronSchedule.parse("7 * * * 0"))
    }

    @Test func rebootHasNoTimes() throws {
        let reboot = try CronSchedule.parse("@reboot")
        let daily = try CronSchedule.parse("@daily")
        #expect(reboot.isReboot && !daily.isReboot)
        #expect(reboot.next(after: 0, in: .utc) == nil && !reboot.matches(LocalDateTime(year: 2026, month: 1, day: 1)))
    }

    @Test func specialsEqualTheirExpansions() throws {
        let pairs = [("@yearly", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"), ("@weekly", "0 0 * * 0"),
                     ("@daily", "0 0 * * *"), ("@hourly", "0 * * * *")]
        for (special, fields) in pairs {
            let a = try CronSchedule.parse(special), b = try CronSchedule.parse(fields)
            var t = utc(2026, 1, 1)
            for _ in 0..<20 {
                let n = a.next(after: t, in: .utc)
                #expect(n == b.next(after: t, in: .utc), "\(special)")
                t = try #require(n)
            }
        }
    }

    // MARK: Properties

    /// A random field: lists, ranges, steps, names, and "*" forms.
    private static func randomField(_ field: CronSchedule.Field, _ rng: inout SplitMix64) -> String {
        let r = field.range
        func value() -> Int { Int.random(in: r, using: &rng) }
        func item() -> String {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0: return "*"
            case 1: return "*/\(Int.random(in: 1...max(1, r.upperBound / 2), using: &rng))"
            case 2: let a = value(), b = value(); return "\(min(a, b))-\(max(a, b))"
            case 3: let a = value(), b = value(); return "\(min(a, b))-\(max(a, b))/\(Int.random(in: 1...4, using: &rng))"
            case 4: return "\(value())/\(Int.random(in: 1...r.upperBound, using: &rng))"
            case 5 where !field.names.isEmpty: return field.names.randomElement(using: &rng)!.lowercased()
            default: return "\(value())"
            }
        }
        return (0..<Int.random(in: 1...3, using: &rng)).map { _ in item() }.joined(separator: ",")
    }

    @Test func randomSchedulesAgreeWithMinuteByMinuteSearch() throws {
        var rng = SplitMix64(seed: 2026)
        let window: Int64 = 4 * 86_400
        var checked = 0
        for _ in 0..<400 {
            // Often-firing minute and hour fields keep most answers inside the brute-force window.
            let text = [CronSchedule.Field.minute, .hour, .dayOfMonth, .month, .dayOfWeek].map { field -> String in
                let f = Self.randomField(field, &rng)
                return field == .month && Bool.random(using: &rng) ? "*" : f
            }.joined(separator: " ")
            let s = try CronSchedule.parse(text)
            let after = Int64.random(in: utc(1990, 1, 1)...utc(2060, 1, 1), using: &rng)
            let next = s.next(after: after, in: .utc)
            var m = (after / 60 + 1) * 60
            let end = min(next ?? .max, after + window)
            while m < end {
                #expect(!s.matches(LocalDateTime(asIfUTC: m)), "\(text) after \(after): missed \(LocalDateTime(asIfUTC: m))")
                m += 60
            }
            if let next {
                checked += 1
                #expect(next > after && next % 60 == 0 && s.matches(LocalDateTime(asIfUTC: next)), "\(text) after \(after)")
            }
        }
        #expect(checked > 200)
    }

    /// The DST rules stated instant by instant: minute m runs if its local time matches and
    /// (for a time-of-day job) m is that local time's first occurrence, or if m is the end of a
    /// gap that swallowed a matching local time.
    private static func runsAt(_ m: Int64, _ s: CronSchedule, hourIsStar: Bool, _ z: TimeZoneRules) -> Bool {
        let local = z.local(m)
        if s.matches(local) && (hourIsStar || z.instants(for: local).first == m) { return true }
        guard !hourIsStar, z.offset(at: m) > z.offset(at: m - 1) else { return false }
        var skipped = m + Int64(z.offset(at: m - 1))
        while skipped < m + Int64(z.offset(at: m)) {
            if s.matches(LocalDateTime(asIfUTC: skipped)) { return true }
            skipped += 60
        }
        return false
    }

    @Test func randomSchedulesAroundTransitionsFollowTheDSTRules() throws {
        var rng = SplitMix64(seed: 1883)
        let zones = [try zone("America/New_York"), try zone("Australia/Lord_Howe"), try zone("Europe/London")]
        let transitions = [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 4, 4, 15), utc(2026, 10, 3, 15, 30),
                           utc(2026, 3, 29, 1), utc(2026, 10, 25, 1), utc(2090, 3, 12, 7)]
        for _ in 0..<300 {
            let minute = Bool.random(using: &rng) ? Self.randomField(.minute, &rng) : "\(Int.random(in: 0...59, using: &rng))"
            let hour = Bool.random(using: &rng) ? Self.randomField(.hour, &rng) : "\(Int.random(in: 0...3, using: &rng))"
            let text = "\(minute) \(hour) * * *"
            let s = try CronSchedule.parse(text)
            let z = zones.randomElement(using: &rng)!
            let after = transitions.randomElement(using: &rng)! + Int64.random(in: -4 * 3600...2 * 3600, using: &rng)
            let next = s.next(after: after, in: z)
            var m = (after / 60 + 1) * 60
            let end = min(next ?? .max, after + 2 * 86_400)
            while m < end {
                #expect(!Self.runsAt(m, s, hourIsStar: hour.hasPrefix("*"), z), "\(text) in \(z.name) after \(after): missed \(m)")
                m += 60
            }
            let n = try #require(next, "\(text)")
            #expect(n > after && Self.runsAt(n, s, hourIsStar: hour.hasPrefix("*"), z), "\(text) in \(z.name) after \(after): \(n)")
        }
    }
}
