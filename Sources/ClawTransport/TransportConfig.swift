import ClawReactor

/// Limits and timers of the reliable transport. Defaults suit a chat-and-files channel of
/// 1200-byte datagrams.
public struct TransportConfig: Sendable {
    /// Largest transport packet (the channel adds its own header, tag and kind byte).
    public var maxPacketSize = 1167
    /// Receive credit per stream, and for the whole connection.
    public var streamWindow: UInt64 = 1 << 20
    public var connectionWindow: UInt64 = 16 << 20
    /// Bytes an application may have written to a stream and not yet had acknowledged.
    public var sendBufferLimit = 1 << 20
    /// Streams the peer may have open at once.
    public var maxPeerStreams = 256
    /// We acknowledge at the latest this long after an ack-eliciting packet (RFC 9000 default).
    public var maxAckDelay: Duration = .milliseconds(25)
    public var timerGranularity: Duration = .milliseconds(1)
    /// Data in flight with no acknowledgement for this long means the peer is gone.
    public var deadPeerTimeout: Duration = .seconds(10)
    /// With streams open and nothing in flight, a PING goes out after this much silence, so
    /// that a peer which vanished while we wait for its answer is detected too.
    public var idleProbeInterval: Duration = .milliseconds(1500)
    /// Ranges of received packet numbers remembered for ACK frames.
    public var maxAckRanges = 64
    public init() {}
}
