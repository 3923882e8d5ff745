import ClawReactor

/// NewReno congestion control as specified in RFC 9002 section 7 (slow start, congestion
/// avoidance, one reduction per round trip, persistent congestion).
public struct NewReno: Sendable {
    public let maxDatagramSize: Int
    public private(set) var window: Int
    public private(set) var slowStartThreshold = Int.max
    public private(set) var bytesInFlight = 0
    /// Packets sent before this instant do not reduce the window again (one reduction per RTT).
    public private(set) var recoveryStart: Instant?
    static let lossReductionFactor = 0.5

    public init(maxDatagramSize: Int) {
        self.maxDatagramSize = maxDatagramSize
        window = Self.initialWindow(maxDatagramSize)
    }

    /// RFC 9002: min(10 × max_datagram_size, max(14720, 2 × max_datagram_size)).
    public static func initialWindow(_ mds: Int) -> Int { min(10 * mds, max(14_720, 2 * mds)) }
    public var minimumWindow: Int { 2 * maxDatagramSize }
    public var inSlowStart: Bool { window < slowStartThreshold }
    public var available: Int { max(0, window - bytesInFlight) }

    public mutating func onPacketSent(bytes: Int) { bytesInFlight += bytes }

    /// A packet is no longer in flight without being acknowledged or lost (e.g. discarded).
    public mutating func onPacketDiscarded(bytes: Int) { bytesInFlight = max(0, bytesInFlight - bytes) }

    public mutating func onPacketAcked(bytes: Int, sentAt: Instant) {
        bytesInFlight = max(0, bytesInFlight - bytes)
        if let r = recoveryStart, sentAt <= r { return }   // acks of packets from before recovery
        if inSlowStart {
            window += bytes
        } else {
            window += maxDatagramSize * bytes / window
        }
    }

    /// The packets whose loss reduced the window all arrived after all: restore the window and
    /// threshold from before that reduction (as Linux's undo of a spurious recovery does).
    public mutating func undoReduction(window previous: Int, threshold: Int) {
        window = max(window, previous)
        slowStartThreshold = max(slowStartThreshold, threshold)
    }

    /// Lost packets: the newest one's send time decides whether this is a new congestion event.
    public mutating func onPacketsLost(bytes: Int, newestSentAt: Instant, now: Instant, persistentCongestion: Bool) {
        bytesInFlight = max(0, bytesInFlight - bytes)
        if recoveryStart == nil || newestSentAt > recoveryStart! {
            recoveryStart = now
            slowStartThreshold = max(Int(Double(window) * Self.lossReductionFactor), minimumWindow)
            window = slowStartThreshold
        }
        if persistentCongestion {
            window = minimumWindow
            recoveryStart = nil
        }
    }
}
