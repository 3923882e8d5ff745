// A netem-like model of a bad network path, one direction at a time. It is pure: it takes the
// time a datagram arrived and its size, and says when (if ever) each copy of it should leave. The
// relay does the I/O; tests feed it a million datagrams in a second without a socket.
import ClawReactor

/// How one direction of a path misbehaves. Percentages are of datagrams offered (0 to 100).
public struct ImpairmentConfig: Sendable, Equatable {
    /// Chance that a datagram vanishes.
    public var lossPercent: Double
    /// Base one-way delay added to every datagram.
    public var delay: Duration
    /// Uniform jitter: each copy's delay is `delay` plus a draw in [-jitter, +jitter], never
    /// below zero.
    public var jitter: Duration
    /// Chance that a delivered datagram arrives twice (the copy gets its own jitter).
    public var duplicatePercent: Double
    /// Chance that a delivered datagram is held back by `effectiveReorderExtra`, so that the
    /// datagrams behind it overtake it.
    public var reorderPercent: Double
    /// The hold-back of a reordered datagram; nil picks `effectiveReorderExtra`'s default.
    public var reorderExtra: Duration?
    /// Bottleneck rate in bytes per second (nil: unlimited). Datagrams queue behind each other
    /// for their serialisation time, like a slow link.
    public var bytesPerSecond: Int?
    /// The bottleneck's buffer, as time: a datagram that would wait longer than this to start
    /// serialising is dropped (tail drop).
    public var maxBacklog: Duration

    public init(lossPercent: Double = 0, delay: Duration = .zero, jitter: Duration = .zero,
                duplicatePercent: Double = 0, reorderPercent: Double = 0, reorderExtra: Duration? = nil,
                bytesPerSecond: Int? = nil, maxBacklog: Duration = .seconds(1)) {
        self.lossPercent = lossPercent
        self.delay = delay
        self.jitter = jitter
        self.duplicatePercent = duplicatePercent
        self.reorderPercent = reorderPercent
        self.reorderExtra = reorderExtra
        self.bytesPerSecond = bytesPerSecond
        self.maxBacklog = maxBacklog
    }

    /// A path that delivers everything at once.
    public static let none = ImpairmentConfig()

    /// The hold-back of a reordered datagram. The default is at least twice the jitter, so that
    /// the very next datagram overtakes it even when jitter pulls the two apart, and at least
    /// 10 ms, so that reordering shows with zero delay too.
    public var effectiveReorderExtra: Duration {
        reorderExtra ?? max(delay, jitter * 2, .milliseconds(10))
    }
}

/// What one direction's model has decided so far.
public struct ImpairmentStats: Sendable, Equatable {
    /// Datagrams passed to `decide`.
    public var offered = 0
    /// Dropped by `lossPercent`.
    public var lost = 0
    /// Dropped because the bandwidth queue was full.
    public var overBacklog = 0
    /// Datagrams sent twice.
    public var duplicated = 0
    /// Datagrams held back to be overtaken.
    public var reordered = 0

    public init() {}
}

/// A seeded, reproducible impairment model for one direction. The same seed and the same
/// sequence of `decide` calls give the same answers. Every call consumes the same number of
/// random draws whatever the outcome, so changing one knob (say, loss) does not reshuffle the
/// others' decisions for the datagrams that survive.
public struct Impairment: Sendable {
    public var config: ImpairmentConfig
    public private(set) var stats = ImpairmentStats()
    private var random: SplitMix64
    /// When the bottleneck finishes serialising what it has already accepted.
    private var busyUntil = Instant(nanoseconds: .min)

    public init(_ config: ImpairmentConfig, seed: UInt64) {
        self.config = config
        random = SplitMix64(seed: seed)
    }

    /// Decides the fate of a datagram of `size` bytes that arrived at `now`: the instants at which
    /// its copies should be delivered, in ascending order. Empty means dropped; two means
    /// duplicated.
    public mutating func decide(now: Instant, size: Int) -> [Instant] {
        stats.offered += 1
        let lossDraw = random.nextPercent()
        let duplicateDraw = random.nextPercent()
        let reorderDraw = random.nextPercent()
        let jitter = config.jitter.nanoseconds
        let firstJitter = random.nextSymmetric(jitter)
        let secondJitter = random.nextSymmetric(jitter)

        if lossDraw < config.lossPercent {
            stats.lost += 1
            return []
        }
        let duplicate = duplicateDraw < config.duplicatePercent
        let copies = duplicate ? 2 : 1

        // Serialisation through the bottleneck, if there is one: each copy leaves the link when
        // the one ahead of it has finished.
        var departures = [now]
        if let rate = config.bytesPerSecond, rate > 0 {
            let start = max(now, busyUntil)
            if start - now > config.maxBacklog {
                stats.overBacklog += 1
                return []
            }
            let perCopy = Duration.nanoseconds(Int64(size) * 1_000_000_000 / Int64(rate))
            departures = (1...copies).map { start + perCopy * $0 }
            busyUntil = departures[copies - 1]
        } else if duplicate {
            departures.append(now)
        }

        var first = departures[0] + config.delay + .nanoseconds(firstJitter)
        if reorderDraw < config.reorderPercent {
            stats.reordered += 1
            first += config.effectiveReorderExtra
        }
        var result = [max(first, departures[0])]
        if duplicate {
            stats.duplicated += 1
            let second = departures[1] + config.delay + .nanoseconds(secondJitter)
            result.append(max(second, departures[1]))
            result.sort()
        }
        return result
    }
}
