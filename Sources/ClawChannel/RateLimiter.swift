import ClawReactor

/// Token buckets per source (IPv4 address, IPv6 /64) plus one global bucket, refilled from `Instant`s given by the
/// caller (no clock inside). Entries idle long enough to be full again are pruned.
public struct HandshakeRateLimiter {
    struct Bucket {
        var tokens: Double
        var updated: Instant
    }

    let limits: HandshakeLimits
    private var perSource: [[UInt8]: Bucket] = [:]
    private var global: Bucket?
    private var lastPrune = Instant.zero
    static let maxTracked = 65_536

    public init(limits: HandshakeLimits) { self.limits = limits }

    /// Takes one token for `source` (its address without port) if both buckets allow it.
    public mutating func allow(source: SocketAddress, now: Instant) -> Bool {
        prune(now: now)
        var g = refill(global, rate: limits.globalPerSecond, burst: limits.globalBurst, now: now)
        // One IPv6 host commonly owns a whole /64: count it as one source.
        let key = source.family == .v6 ? Array(source.addressBytes.prefix(8)) : source.addressBytes
        var s = refill(perSource[key], rate: limits.perSourcePerSecond, burst: limits.perSourceBurst, now: now)
        guard g.tokens >= 1, s.tokens >= 1 else {
            global = g
            if perSource.count < Self.maxTracked { perSource[key] = s }
            return false
        }
        g.tokens -= 1
        s.tokens -= 1
        global = g
        if perSource.count < Self.maxTracked || perSource[key] != nil { perSource[key] = s }
        return true
    }

    private func refill(_ b: Bucket?, rate: Double, burst: Double, now: Instant) -> Bucket {
        guard var b else { return Bucket(tokens: burst, updated: now) }
        let elapsed = max(0, (now - b.updated).seconds)
        b.tokens = min(burst, b.tokens + elapsed * rate)
        b.updated = now
        return b
    }

    private mutating func prune(now: Instant) {
        guard now - lastPrune > .seconds(10) else { return }
        lastPrune = now
        let full = limits.perSourceBurst / limits.perSourcePerSecond
        perSource = perSource.filter { (now - $0.value.updated).seconds < full }
    }
}
