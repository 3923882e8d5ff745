import ClawReactor

/// Round-trip time estimation as in RFC 9002 section 5.
public struct RTTEstimator: Sendable {
    /// Before the first sample (RFC 9002 kInitialRtt).
    public static let initialRTT: Duration = .milliseconds(333)
    public private(set) var latest: Duration = .zero
    public private(set) var smoothed: Duration = initialRTT
    public private(set) var variance: Duration = initialRTT / 2
    public private(set) var minimum: Duration = .zero
    public private(set) var hasSample = false

    public init() {}

    /// Takes a sample. `ackDelay` (already capped at max_ack_delay by the caller) is subtracted
    /// only when that would not take the sample below the minimum RTT.
    public mutating func update(sample: Duration, ackDelay: Duration) {
        latest = sample
        guard hasSample else {
            hasSample = true
            minimum = sample
            smoothed = sample
            variance = sample / 2
            return
        }
        minimum = min(minimum, sample)
        var adjusted = sample
        if sample >= minimum + ackDelay { adjusted = sample - ackDelay }
        let deviation = smoothed > adjusted ? smoothed - adjusted : adjusted - smoothed
        variance = (variance * 3 + deviation) / 4
        smoothed = (smoothed * 7 + adjusted) / 8
    }

    /// The probe timeout before backoff: smoothed + max(4 × variance, granularity) + max_ack_delay.
    public func pto(maxAckDelay: Duration, granularity: Duration) -> Duration {
        smoothed + max(variance * 4, granularity) + maxAckDelay
    }
}
