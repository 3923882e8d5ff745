/// Timers and limits of the channel. Specification constants are what both ends must agree on;
/// implementation constants are local choices. Derived values are written as expressions.
public struct ChannelTimers: Sendable {
    // Implementation constants (configurable per deployment).

    /// The client sends a keepalive when it has sent nothing for this long; below the ~30 s after
    /// which common NATs forget an idle UDP mapping.
    public var keepaliveInterval: Duration = .seconds(15)
    /// The client starts a fresh handshake (new ephemeral DH) this often.
    public var rekeyInterval: Duration = .seconds(3600)
    /// A handshake without answer is retried after this (plus jitter).
    public var rekeyTimeout: Duration = .seconds(5)
    /// After a send that expects an answer (data or a keepalive), silence this long means the path
    /// or the server is gone: the client re-handshakes.
    public var replyTimeout: Duration = .seconds(5)
    /// Keys replaced by a rekey stay usable for receiving this long, for packets in flight.
    public var previousKeyGrace: Duration = .seconds(10)
    /// The server forgets a session (zeroing its keys) after this long without a valid packet.
    public var sessionTimeout: Duration = .seconds(180)
    /// Keys are never used after this age: a client that failed to rekey must handshake again.
    public var rejectAfter: Duration { rekeyInterval + rekeyAttemptTime }
    /// How long the client keeps retrying one rekey before treating the session as lost.
    public var rekeyAttemptTime: Duration = .seconds(90)
    /// Maximum random delay added to handshake retries, so retries of many clients spread out.
    public var handshakeJitter: Duration = .milliseconds(334)

    public init() {}
}

/// Rate limits on handshake work (each initiation costs the server four X25519 operations).
public struct HandshakeLimits: Sendable {
    /// Sustained initiations per second accepted from one source address.
    public var perSourcePerSecond: Double = 20
    /// Burst allowance per source address.
    public var perSourceBurst: Double = 5
    /// Sustained initiations per second across all sources.
    public var globalPerSecond: Double = 500
    public var globalBurst: Double = 100
    public init() {}
}
