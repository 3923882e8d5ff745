import Glibc

/// A calendar day in the process's local time zone (`TZ`), which names the daily memory logs.
///
/// "Yesterday" is computed on the calendar, never as `now - 86_400`: on the day after a daylight
/// saving change a day is 23 or 25 hours long, and subtracting a fixed 24 hours lands two days
/// back or on the same day.
public struct LocalDate: Equatable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let year: Int
    /// 1 to 12.
    public let month: Int
    /// 1 to the length of the month.
    public let day: Int

    /// The caller keeps the fields valid (a real calendar day); ``previous`` relies on it.
    public init(year: Int, month: Int, day: Int) {
        self.year = year
        self.month = month
        self.day = day
    }

    /// The local calendar day containing `unixTime` (seconds since the epoch).
    public init(unixTime: Int64) {
        let t = LocalDate.brokenDown(unixTime)
        self.init(year: Int(t.tm_year) + 1900, month: Int(t.tm_mon) + 1, day: Int(t.tm_mday))
    }

    /// The calendar day before this one, across month and year ends (proleptic Gregorian).
    public var previous: LocalDate {
        if day > 1 { return LocalDate(year: year, month: month, day: day - 1) }
        if month > 1 { return LocalDate(year: year, month: month - 1, day: LocalDate.daysIn(month: month - 1, year: year)) }
        return LocalDate(year: year - 1, month: 12, day: 31)
    }

    /// "YYYY-MM-DD", as in the daily log's file name.
    public var description: String {
        "\(LocalDate.pad(year, 4))-\(LocalDate.pad(month, 2))-\(LocalDate.pad(day, 2))"
    }

    /// "HH:MM" of `unixTime` in local time, for the headings of daily log entries.
    public static func clockTime(unixTime: Int64) -> String {
        let t = brokenDown(unixTime)
        return "\(pad(Int(t.tm_hour), 2)):\(pad(Int(t.tm_min), 2))"
    }

    public static func < (a: LocalDate, b: LocalDate) -> Bool {
        (a.year, a.month, a.day) < (b.year, b.month, b.day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// `localtime_r` does not re-read `TZ` by itself on glibc; `tzset` makes a changed zone count.
    private static func brokenDown(_ unixTime: Int64) -> tm {
        var seconds = time_t(unixTime)
        var t = tm()
        tzset()
        _ = localtime_r(&seconds, &t)
        return t
    }

    private static func pad(_ n: Int, _ width: Int) -> String {
        let digits = String(n)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}
