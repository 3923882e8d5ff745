/// A POSIX TZ string such as `EST5EDT,M3.2.0,M11.1.0`: a standard time, and optionally a daylight
/// time with the yearly rule for switching between them. TZif files carry one in their footer to
/// describe every instant after their last listed transition, which is all that slim files list
/// for the present day, so this rule decides what time it is "now" in most zones.
///
/// Accepted syntax (POSIX.1-2017 section 8.3 with the RFC 8536 section 3.3.1 extensions):
/// `std offset [dst [offset] [,start[/time],end[/time]]]`, where names are three or more letters
/// or `<...>` quoted (letters, digits, `+`, `-`), offsets are `[+-]hh[:mm[:ss]]` counted west of
/// Greenwich (so `EST5` is five hours *behind* UTC), start and end are `Jn` (1...365, February 29
/// never counted), `n` (0...365, February 29 counted) or `Mm.w.d` (weekday d of week w of month m,
/// week 5 meaning the last), and times may be negative or up to 167 hours.
struct PosixTZRule: Sendable, Equatable {
    /// A day of the year, in one of the three forms a rule may name it.
    enum Day: Sendable, Equatable {
        case julianNoLeap(Int)
        case zeroBased(Int)
        case monthWeekDay(month: Int, week: Int, weekday: Int)

        /// Days since 1970-01-01 of this day in `year`.
        func dayNumber(in year: Int) -> Int64 {
            switch self {
            case .julianNoLeap(let n):
                let skipsLeapDay = LocalDateTime.isLeapYear(year) && n >= 60
                return LocalDateTime.dayNumber(year: year, month: 1, day: 1) + Int64(n - 1 + (skipsLeapDay ? 1 : 0))
            case .zeroBased(let n):
                return LocalDateTime.dayNumber(year: year, month: 1, day: 1) + Int64(n)
            case .monthWeekDay(let month, let week, let weekday):
                let first = LocalDateTime(year: year, month: month, day: 1)
                var day = 1 + (weekday - first.weekday + 7) % 7 + (week - 1) * 7
                while day > LocalDateTime.daysIn(month: month, year: year) { day -= 7 }
                return LocalDateTime.dayNumber(year: year, month: month, day: day)
            }
        }
    }

    /// Daylight saving time and when it begins and ends each year.
    struct Daylight: Sendable, Equatable {
        var type: LocalTimeType
        var start: Day
        /// Seconds after local midnight, in standard time, when daylight time begins.
        var startTime: Int
        var end: Day
        /// Seconds after local midnight, in daylight time, when standard time resumes.
        var endTime: Int
    }

    var standard: LocalTimeType
    var daylight: Daylight?

    /// The local time type in force at `unix`.
    func type(at unix: Int64) -> LocalTimeType {
        guard let daylight else { return standard }
        let year = yearAround(unix)
        // The latest switch at or before `unix` decides. Looking one year further back than the
        // current one covers rule times shifted across a year end by up to 167 hours; a daylight
        // start that coincides with the previous end (daylight time all year) wins the tie.
        var latest: (at: Int64, toDaylight: Bool)?
        for y in (year - 2)...(year + 1) {
            for event in switches(in: y, daylight) where event.at <= unix {
                if let l = latest, l.at > event.at || (l.at == event.at && l.toDaylight) { continue }
                latest = event
            }
        }
        return latest?.toDaylight == true ? daylight.type : standard
    }

    /// The first switch between standard and daylight time strictly after `unix`, if any.
    func nextSwitch(after unix: Int64) -> Int64? {
        guard let daylight else { return nil }
        let year = yearAround(unix)
        var best: Int64?
        for y in (year - 1)...(year + 2) {
            for event in switches(in: y, daylight) where event.at > unix {
                if best == nil || event.at < best! { best = event.at }
            }
        }
        return best
    }

    /// The standard-time year of `unix`, clamped to ±35 million years so that no arithmetic
    /// here can overflow whatever instant a caller passes.
    private func yearAround(_ unix: Int64) -> Int {
        let bound: Int64 = 1 << 50
        return LocalDateTime(asIfUTC: min(max(unix, -bound), bound) + Int64(standard.utoff)).year
    }

    private func switches(in year: Int, _ daylight: Daylight) -> [(at: Int64, toDaylight: Bool)] {
        let start = daylight.start.dayNumber(in: year) * 86_400 + Int64(daylight.startTime - standard.utoff)
        let end = daylight.end.dayNumber(in: year) * 86_400 + Int64(daylight.endTime - daylight.type.utoff)
        return [(start, true), (end, false)]
    }
}

// MARK: - Parsing

extension PosixTZRule {
    /// What is wrong with a TZ string, in words for the user.
    struct SyntaxError: Error, Equatable {
        let problem: String
    }

    /// The rule glibc assumes when a TZ string names a daylight time but no dates (the US rule
    /// since 2007); POSIX leaves it to the implementation.
    static let defaultDaylightDates = (start: Day.monthWeekDay(month: 3, week: 2, weekday: 0),
                                       end: Day.monthWeekDay(month: 11, week: 1, weekday: 0))

    init(parsing text: String) throws(SyntaxError) {
        var p = Cursor(bytes: Array(text.utf8))
        guard !p.atEnd else { throw SyntaxError(problem: "the TZ string is empty") }
        let stdName = try p.name("standard time name")
        guard !p.atEnd else {
            throw SyntaxError(problem: "the standard time \"\(stdName)\" has no UTC offset (e.g. \(stdName)0)")
        }
        let stdOffset = -(try p.time("standard time offset", maxHours: 24))
        let standard = LocalTimeType(utoff: stdOffset, isDST: false, abbreviation: stdName)
        if p.atEnd {
            self.init(standard: standard, daylight: nil)
            return
        }
        let dstName = try p.name("daylight time name")
        var dstOffset = stdOffset + 3600
        if let c = p.peek, c != UInt8(ascii: ",") {
            guard Cursor.isDigit(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") else {
                throw SyntaxError(problem: "expected an offset or a ',' after the daylight time name, found \"\(p.rest)\"")
            }
            dstOffset = -(try p.time("daylight time offset", maxHours: 24))
        }
        let type = LocalTimeType(utoff: dstOffset, isDST: true, abbreviation: dstName)
        var dates = (start: Self.defaultDaylightDates.start, startTime: 7200,
                     end: Self.defaultDaylightDates.end, endTime: 7200)
        if !p.atEnd {
            try p.expect(UInt8(ascii: ","), "a ',' before the daylight time start rule")
            dates.start = try p.day("start")
            if p.peek == UInt8(ascii: "/") { p.index += 1; dates.startTime = try p.time("start time", maxHours: 167) }
            try p.expect(UInt8(ascii: ","), "a ',' and the daylight time end rule after the start rule")
            dates.end = try p.day("end")
            if p.peek == UInt8(ascii: "/") { p.index += 1; dates.endTime = try p.time("end time", maxHours: 167) }
            guard p.atEnd else {
                throw SyntaxError(problem: "unexpected text \"\(p.rest)\" after the end rule")
            }
        }
        self.init(standard: standard, daylight: Daylight(type: type, start: dates.start, startTime: dates.startTime,
                                                         end: dates.end, endTime: dates.endTime))
    }

    private struct Cursor {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        var peek: UInt8? { atEnd ? nil : bytes[index] }
        var rest: String { String(decoding: bytes[min(index, bytes.count)...], as: UTF8.self) }

        mutating func expect(_ byte: UInt8, _ what: String) throws(SyntaxError) {
            guard peek == byte else {
                throw SyntaxError(problem: atEnd ? "expected \(what), found the end" : "expected \(what), found \"\(rest)\"")
            }
            index += 1
        }

        /// `std`/`dst`: three or more letters, or `<...>` holding letters, digits, '+' and '-'.
        mutating func name(_ what: String) throws(SyntaxError) -> String {
            let start = index
            if peek == UInt8(ascii: "<") {
                index += 1
                while let c = peek, c != UInt8(ascii: ">") {
                    guard Self.isAlpha(c) || Self.isDigit(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") else {
                        throw SyntaxError(problem: "the \(what) contains an invalid character in \"\(rest)\"")
                    }
                    index += 1
                }
                guard peek == UInt8(ascii: ">") else {
                    throw SyntaxError(problem: "the \(what) \"\(String(decoding: bytes[start...], as: UTF8.self))\" lacks its closing '>'")
                }
                let inner = String(decoding: bytes[(start + 1)..<index], as: UTF8.self)
                index += 1
                guard inner.utf8.count >= 3 else {
                    throw SyntaxError(problem: "the \(what) \"<\(inner)>\" is shorter than three characters")
                }
                return inner
            }
            while let c = peek, Self.isAlpha(c) { index += 1 }
            let name = String(decoding: bytes[start..<index], as: UTF8.self)
            guard name.utf8.count >= 3 else {
                let found = name.isEmpty ? (atEnd ? "nothing" : "\"\(rest)\"") : "\"\(name)\""
                throw SyntaxError(problem: "expected a \(what) of three or more letters or <...>, found \(found)")
            }
            return name
        }

        /// `[+-]h[h...][:mm[:ss]]` in seconds, with the sign as written.
        mutating func time(_ what: String, maxHours: Int) throws(SyntaxError) -> Int {
            var sign = 1
            if peek == UInt8(ascii: "+") { index += 1 } else if peek == UInt8(ascii: "-") { sign = -1; index += 1 }
            let hours = try number(what, maxDigits: 3)
            guard hours <= maxHours else {
                throw SyntaxError(problem: "the \(what) has \(hours) hours; at most \(maxHours) are allowed")
            }
            var seconds = hours * 3600
            for (unit, scale) in [("minutes", 60), ("seconds", 1)] {
                guard peek == UInt8(ascii: ":") else { break }
                index += 1
                let v = try number(what, maxDigits: 2)
                guard v <= 59 else { throw SyntaxError(problem: "the \(what) has \(v) \(unit); at most 59 are allowed") }
                seconds += v * scale
            }
            return sign * seconds
        }

        /// `Jn`, `n` or `Mm.w.d`.
        mutating func day(_ which: String) throws(SyntaxError) -> Day {
            let what = "daylight time \(which) rule"
            if peek == UInt8(ascii: "J") {
                index += 1
                let n = try number(what, maxDigits: 3)
                guard (1...365).contains(n) else { throw SyntaxError(problem: "the \(what) J\(n) is out of range J1-J365") }
                return .julianNoLeap(n)
            }
            if peek == UInt8(ascii: "M") {
                index += 1
                let m = try number(what, maxDigits: 2)
                try expect(UInt8(ascii: "."), "'.' after the month in the \(what)")
                let w = try number(what, maxDigits: 1)
                try expect(UInt8(ascii: "."), "'.' after the week in the \(what)")
                let d = try number(what, maxDigits: 1)
                guard (1...12).contains(m), (1...5).contains(w), (0...6).contains(d) else {
                    throw SyntaxError(problem: "the \(what) M\(m).\(w).\(d) is out of range (month 1-12, week 1-5, weekday 0-6)")
                }
                return .monthWeekDay(month: m, week: w, weekday: d)
            }
            let n = try number(what, maxDigits: 3)
            guard n <= 365 else { throw SyntaxError(problem: "the \(what) \(n) is out of range 0-365") }
            return .zeroBased(n)
        }

        mutating func number(_ what: String, maxDigits: Int) throws(SyntaxError) -> Int {
            let start = index
            var value = 0
            while let c = peek, Self.isDigit(c), index - start < maxDigits {
                value = value * 10 + Int(c - UInt8(ascii: "0"))
                index += 1
            }
            guard index > start else {
                throw SyntaxError(problem: atEnd ? "the \(what) is missing" : "expected a number in the \(what), found \"\(rest)\"")
            }
            return value
        }

        static func isAlpha(_ c: UInt8) -> Bool { (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
        static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
    }
}
