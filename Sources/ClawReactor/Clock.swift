import Glibc

/// A point on a monotonic time line, in nanoseconds. Protocol state machines take `Instant`s as
/// input, so tests can drive them with a `FakeClock`.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)
    public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    public static func + (a: Instant, d: Duration) -> Instant { Instant(nanoseconds: a.nanoseconds + d.nanoseconds) }
    public static func - (a: Instant, d: Duration) -> Instant { Instant(nanoseconds: a.nanoseconds - d.nanoseconds) }
    public static func - (a: Instant, b: Instant) -> Duration { .nanoseconds(a.nanoseconds - b.nanoseconds) }
    public static func += (a: inout Instant, d: Duration) { a = a + d }
    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds, saturating at the limits of `Int64`.
    public var nanoseconds: Int64 {
        let (s, atto) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return s < 0 ? .min : .max }
        return ns &+ atto / 1_000_000_000
    }
    /// Seconds as a floating-point number, for reports.
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}

/// Where time comes from: a monotonic instant for timers and a wall-clock UNIX time for things
/// that outlive the process (security-file validity, cron).
public protocol Clock: AnyObject {
    var now: Instant { get }
    /// Seconds since the UNIX epoch.
    var unixTime: Int64 { get }
}

/// The real clocks: `CLOCK_MONOTONIC` and `CLOCK_REALTIME`.
public final class MonotonicClock: Clock {
    public init() {}
    public var now: Instant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Instant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
    public var unixTime: Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec)
    }
    /// Nanoseconds since the UNIX epoch.
    public var unixNanos: UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

/// A clock that moves only when told to; tests use it to run an hour of protocol in microseconds.
public final class FakeClock: Clock {
    public var now: Instant
    public var unixTime: Int64
    public init(now: Instant = Instant(nanoseconds: 1_000_000_000), unixTime: Int64 = 1_790_000_000) {
        self.now = now
        self.unixTime = unixTime
    }
    /// Moves both clocks forward by `d`.
    public func advance(by d: Duration) {
        now += d
        unixTime += d.components.seconds
    }
}
