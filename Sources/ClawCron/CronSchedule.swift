/// A cron expression that cannot be used, with the field and the text at fault.
public enum CronSyntaxError: Error, Equatable, CustomStringConvertible {
    case empty
    case unknownSpecial(String)
    case textAfterSpecial(String, text: String)
    case fieldCount(found: Int, text: String)
    case emptyItem(Field, fieldText: String)
    case invalidItem(Field, item: String)
    case notANumber(Field, text: String)
    case outOfRange(Field, value: String)
    case reversedRange(Field, from: String, to: String)
    case stepOutOfRange(Field, step: String)
    case namesNotAllowed(Field, name: String)
    case unknownName(Field, name: String)

    public typealias Field = CronSchedule.Field

    public var description: String {
        switch self {
        case .empty:
            return "the schedule is empty; expected five fields such as \"0 9 * * 1-5\", or @daily"
        case .unknownSpecial(let s):
            return "unknown schedule \"\(s)\"; the @ forms are \(CronSchedule.specials.map(\.name).joined(separator: ", "))"
        case .textAfterSpecial(let s, let text):
            return "\(s) stands alone, but \"\(text)\" follows it"
        case .fieldCount(let found, let text):
            return "expected 5 fields (minute hour day-of-month month day-of-week), found \(found) in \"\(text)\""
        case .emptyItem(let f, let text):
            return "\(f.rawValue): empty item in \"\(text)\""
        case .invalidItem(let f, let item):
            return "\(f.rawValue): \"\(item)\" is not a valid item (expected *, N, A-B, */S, A-B/S or N/S)"
        case .notANumber(let f, let text):
            return "\(f.rawValue): \"\(text)\" is not a number"
        case .outOfRange(let f, let value):
            return "\(f.rawValue): \(value) is out of range \(f.range.lowerBound)-\(f.range.upperBound)"
        case .reversedRange(let f, let from, let to):
            return "\(f.rawValue): range \(from)-\(to) goes backwards; ranges do not wrap around, "
                + "so write it as \(from)-\(f.range.upperBound),\(f.range.lowerBound)-\(to)"
        case .stepOutOfRange(let f, let step):
            return "\(f.rawValue): step \(step) is out of range 1-\(f.range.upperBound)"
        case .namesNotAllowed(let f, let name):
            return "\(f.rawValue): \"\(name)\" is a name, but names are only allowed in the month and day of week fields"
        case .unknownName(let f, let name):
            return "\(f.rawValue): unknown name \"\(name)\" (expected \(f.names.first!)-\(f.names.last!) or a number)"
        }
    }
}

/// A parsed cron expression and the search for its next run time in a time zone.
///
/// Syntax is Vixie cron's: five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
/// JAN-DEC, day of week 0-7 or SUN-SAT with 0 and 7 both Sunday), each a comma list of `*`, `N`,
/// `A-B`, `*/S`, `A-B/S` or `N/S` (= `N-max/S`); or one of `@reboot`, `@yearly`, `@annually`,
/// `@monthly`, `@weekly`, `@daily`, `@midnight`, `@hourly`. When both day fields are restricted
/// (neither starts with `*`) a day matches if either does, so `0 0 13 * 5` runs on every 13th and
/// every Friday; when one starts with `*` both must match, which means only the other counts.
///
/// Daylight saving time follows Vixie cron and cronie, so jobs behave as users of those expect.
/// The rule turns on the hour field:
/// - A job whose hour field is restricted (does not start with `*`) is a job "at a time of day":
///   if that time falls in a spring-forward gap it runs once, at the first instant after the gap
///   (`30 2 * * *` on 2026-03-08 in New York runs at 03:00 EDT); if the time occurs twice when
///   clocks fall back, it runs only at the first occurrence.
/// - A job whose hour field starts with `*` follows elapsed time: it has no runs in the skipped
///   hour and runs in both passes of a repeated hour (`*/15 * * * *` runs eight times between
///   01:00 EDT and 02:00 EST).
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    /// The expression with single spaces and upper-case names, or the @ form as given.
    public let description: String
    /// nil for @reboot, which has no times.
    private let fields: Fields?

    /// True for @reboot: the job runs when the daemon starts and `next` is always nil.
    public var isReboot: Bool { fields == nil }

    static let specials: [(name: String, expansion: String?)] = [
        ("@reboot", nil), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"), ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@hourly", "0 * * * *"),
    ]

    /// How far `next` looks before deciding a schedule never fires: eight years of days covers
    /// the longest wait for a real date, February 29 across a skipped leap year (2096 to 2104).
    static let searchDays: Int64 = 8 * 366

    /// Instants `next` accepts: the years 1 to 9999.
    static let supportedInstants: ClosedRange<Int64> = -62_135_596_800...253_402_300_799

    public static func parse(_ text: String) throws(CronSyntaxError) -> CronSchedule {
        let tokens = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = tokens.first else { throw .empty }
        if first.hasPrefix("@") {
            let name = first.lowercased()
            guard let special = specials.first(where: { $0.name == name }) else { throw .unknownSpecial(first) }
            guard tokens.count == 1 else { throw .textAfterSpecial(first, text: tokens[1...].joined(separator: " ")) }
            guard let expansion = special.expansion else { return CronSchedule(description: name, fields: nil) }
            let parts = expansion.split(separator: " ").map(String.init)
            return CronSchedule(description: name, fields: try Fields(parts))
        }
        guard tokens.count == 5 else { throw .fieldCount(found: tokens.count, text: text) }
        return CronSchedule(description: tokens.map { $0.uppercased() }.joined(separator: " "), fields: try Fields(tokens))
    }

    /// The first run strictly after `unix`, at a whole minute of local time in `zone`; nil for
    /// @reboot, for schedules that never fire (`0 0 30 2 *`), and outside the years 1 to 9999.
    ///
    /// The search walks the stretches of constant UTC offset between the zone's transitions; in
    /// each, local time runs straight, so the first matching local minute found by skipping whole
    /// months, days and hours is the answer, subject to the daylight saving rules in the type's
    /// documentation, which are applied where one stretch meets the next.
    public func next(after unix: Int64, in zone: TimeZoneRules) -> Int64? {
        guard let f = fields, Self.supportedInstants.contains(unix) else { return nil }
        var t = unix + 1
        var offset = Int64(zone.offset(at: t))
        let limit = t + offset + Self.searchDays * 86_400
        while true {
            let change = zone.nextTransition(after: t)
            let stretchEnd = min(change.map { $0 + offset } ?? limit, limit)
            var from = t + offset
            while let local = f.firstMatch(from: from, before: stretchEnd) {
                let instant = local - offset
                // A time-of-day job runs at the first occurrence of a repeated local time only.
                if f.hourIsStar || zone.instants(asIfUTC: local).first == instant { return instant }
                from = local + 60
            }
            guard let change, change + offset < limit else { return nil }
            let newOffset = Int64(zone.offset(at: change))
            if !f.hourIsStar && newOffset > offset {
                // Clocks jump from change + offset to change + newOffset: a time-of-day job whose
                // time was skipped runs as the clocks land.
                var from = change + offset
                while let local = f.firstMatch(from: from, before: change + newOffset) {
                    if zone.instants(asIfUTC: local).isEmpty { return change }
                    from = local + 60
                }
            }
            t = change
            offset = newOffset
        }
    }

    /// Whether the wall-clock minute of `local` is one the expression names (seconds ignored).
    func matches(_ local: LocalDateTime) -> Bool {
        guard let f = fields else { return false }
        return f.months.has(local.month) && f.dayMatches(local) && f.hours.has(local.hour) && f.minutes.has(local.minute)
    }
}

extension CronSchedule {
    /// One of the five fields of a cron expression, named the way error messages name it.
    public enum Field: String, Sendable, Equatable, CaseIterable {
        case minute
        case hour
        case dayOfMonth = "day of month"
        case month
        case dayOfWeek = "day of week"

        /// The values a field may hold; day of week allows 7 as a second spelling of Sunday.
        public var range: ClosedRange<Int> {
            switch self {
            case .minute: return 0...59
            case .hour: return 0...23
            case .dayOfMonth: return 1...31
            case .month: return 1...12
            case .dayOfWeek: return 0...7
            }
        }

        /// The three-letter names a field accepts (case-insensitively), first name = first value.
        var names: [String] {
            switch self {
            case .month: return ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
            case .dayOfWeek: return ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
            default: return []
            }
        }
    }

    /// The five fields as bit sets (bit n set = value n matches), plus the "starts with *" flags
    /// that Vixie cron's day and daylight saving rules depend on.
    struct Fields: Sendable, Equatable {
        var minutes: BitSet, hours: BitSet, days: BitSet, months: BitSet, weekdays: BitSet
        var dayOfMonthIsStar: Bool, dayOfWeekIsStar: Bool, hourIsStar: Bool

        init(_ texts: [String]) throws(CronSyntaxError) {
            minutes = try Self.parse(texts[0], .minute)
            hours = try Self.parse(texts[1], .hour)
            days = try Self.parse(texts[2], .dayOfMonth)
            months = try Self.parse(texts[3], .month)
            var weekdays = try Self.parse(texts[4], .dayOfWeek)
            if weekdays.has(7) { weekdays.insert(0) }
            self.weekdays = weekdays
            hourIsStar = texts[1].hasPrefix("*")
            dayOfMonthIsStar = texts[2].hasPrefix("*")
            dayOfWeekIsStar = texts[4].hasPrefix("*")
        }

        func dayMatches(_ d: LocalDateTime) -> Bool {
            let dom = days.has(d.day), dow = weekdays.has(d.weekday)
            return dayOfMonthIsStar || dayOfWeekIsStar ? dom && dow : dom || dow
        }

        /// The first matching local minute (as `LocalDateTime.secondsAsIfUTC`) in [from, end).
        func firstMatch(from: Int64, before end: Int64) -> Int64? {
            var t = from >= 0 ? (from + 59) / 60 * 60 : -((-from) / 60 * 60)
            while t < end {
                let d = LocalDateTime(asIfUTC: t)
                let midnight = d.dayNumber * 86_400
                guard months.has(d.month) else {
                    t = LocalDateTime.dayNumber(year: d.month == 12 ? d.year + 1 : d.year, month: d.month % 12 + 1, day: 1) * 86_400
                    continue
                }
                if dayMatches(d) {
                    var hour = d.hour
                    while let h = hours.first(atLeast: hour) {
                        if let m = minutes.first(atLeast: h == d.hour ? d.minute : 0) {
                            let found = midnight + Int64(h * 3600 + m * 60)
                            return found < end ? found : nil
                        }
                        hour = h + 1
                    }
                }
                t = midnight + 86_400
            }
            return nil
        }

        static func parse(_ text: String, _ field: Field) throws(CronSyntaxError) -> BitSet {
            var set = BitSet()
            for item in text.split(separator: ",", omittingEmptySubsequences: false) {
                guard !item.isEmpty else { throw .emptyItem(field, fieldText: text) }
                let parts = item.split(separator: "/", omittingEmptySubsequences: false)
                guard parts.count <= 2 else { throw .invalidItem(field, item: String(item)) }
                let base = parts[0]
                var bounds: ClosedRange<Int>
                if base == "*" {
                    bounds = field.range
                } else if base.contains("-") {
                    let ends = base.split(separator: "-", omittingEmptySubsequences: false)
                    guard ends.count == 2 else { throw .invalidItem(field, item: String(item)) }
                    let fromText = String(ends[0]), toText = String(ends[1])
                    let a = try value(fromText, field, item: item), b = try value(toText, field, item: item)
                    guard a <= b else { throw .reversedRange(field, from: fromText, to: toText) }
                    bounds = a...b
                } else {
                    let v = try value(String(base), field, item: item)
                    bounds = parts.count == 2 ? v...field.range.upperBound : v...v
                }
                var step = 1
                if parts.count == 2 {
                    let stepText = String(parts[1])
                    guard !stepText.isEmpty, stepText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                        throw stepText.isEmpty ? .invalidItem(field, item: String(item)) : .notANumber(field, text: stepText)
                    }
                    guard stepText.utf8.count <= 3, let s = Int(stepText), (1...field.range.upperBound).contains(s) else {
                        throw .stepOutOfRange(field, step: stepText)
                    }
                    step = s
                }
                for v in stride(from: bounds.lowerBound, through: bounds.upperBound, by: step) { set.insert(v) }
            }
            return set
        }

        /// A number or, in the month and day of week fields, a three-letter name.
        static func value(_ text: String, _ field: Field, item: Substring) throws(CronSyntaxError) -> Int {
            guard !text.isEmpty else { throw .invalidItem(field, item: String(item)) }
            let utf8 = text.utf8
            if utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
                guard utf8.count <= 4, let v = Int(text), field.range.contains(v) else { throw .outOfRange(field, value: text) }
                return v
            }
            if utf8.allSatisfy({ ($0 | 0x20) >= 0x61 && ($0 | 0x20) <= 0x7A }) {
                guard !field.names.isEmpty else { throw .namesNotAllowed(field, name: text) }
                guard let i = field.names.firstIndex(of: text.uppercased()) else { throw .unknownName(field, name: text) }
                return field.range.lowerBound + i
            }
            throw .notANumber(field, text: text)
        }
    }

    /// A set of small integers (0...63) as one word.
    struct BitSet: Sendable, Equatable {
        var bits: UInt64 = 0

        func has(_ v: Int) -> Bool { bits & (1 << UInt64(v)) != 0 }
        mutating func insert(_ v: Int) { bits |= 1 << UInt64(v) }

        /// The smallest member ≥ `v`, if any.
        func first(atLeast v: Int) -> Int? {
            guard v < 64 else { return nil }
            let rest = bits & (~0 << UInt64(v))
            return rest == 0 ? nil : rest.trailingZeroBitCount
        }
    }
}
