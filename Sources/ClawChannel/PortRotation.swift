import ClawCrypto

/// Port rotation (off by default): time is cut into epochs of `period` seconds of UNIX time, and
/// each epoch has its own UDP port, drawn from `range` by a keyed hash of the epoch number under a
/// secret the server shares with its paired devices. The server opens the new port at each epoch
/// start, tells connected devices in band, and keeps the previous port for `grace` seconds; a
/// device that was offline computes the current port from the clock and the secret.
///
/// Pure: UNIX seconds in, ports and instants out; tests run days of rotations on a fake clock.
public struct PortRotation: Sendable, Equatable {
    public static let secretLength = 32

    public let secret: [UInt8]
    public let range: ClosedRange<UInt16>
    public let period: Int64
    public let grace: Int64

    public enum Problem: Error, Equatable, CustomStringConvertible {
        case badSecret, badRange, badTimes
        public var description: String {
            switch self {
            case .badSecret: return "the rotation secret must be 32 bytes"
            case .badRange: return "the port range must hold at least 2 ports, from 1024 up"
            case .badTimes: return "the rotation period must be at least 2 s and the grace shorter than the period"
            }
        }
    }

    public init(secret: [UInt8], range: ClosedRange<UInt16>, period: Int64 = 3600, grace: Int64 = 900) throws(Problem) {
        guard secret.count == Self.secretLength else { throw .badSecret }
        guard range.lowerBound >= 1024, range.count >= 2 else { throw .badRange }
        guard period >= 2, grace >= 0, grace < period else { throw .badTimes }
        self.secret = secret
        self.range = range
        self.period = period
        self.grace = grace
    }

    public func epoch(at unix: Int64) -> Int64 {
        unix >= 0 ? unix / period : (unix - period + 1) / period
    }

    /// The port of an epoch: HMAC-SHA256(secret, "clawchat-port" ‖ epoch as 8 bytes big endian),
    /// its first 4 bytes as a number, modulo the range size. (Two consecutive epochs share a port
    /// once in `range.count` rotations; then nothing moves that hour.)
    public func port(forEpoch e: Int64) -> UInt16 {
        var msg = Array("clawchat-port".utf8)
        withUnsafeBytes(of: e.bigEndian) { msg += $0 }
        let mac = HMACSHA256.authenticate(key: secret, data: msg)
        let n = UInt32(mac[0]) << 24 | UInt32(mac[1]) << 16 | UInt32(mac[2]) << 8 | UInt32(mac[3])
        return range.lowerBound + UInt16(n % UInt32(range.count))
    }

    public func port(at unix: Int64) -> UInt16 { port(forEpoch: epoch(at: unix)) }

    /// The ports the server keeps open at `unix`: the current one, and the previous one during the
    /// grace period after an epoch begins.
    public func openPorts(at unix: Int64) -> [UInt16] {
        let e = epoch(at: unix)
        var ports = [port(forEpoch: e)]
        if unix - e * period < grace { ports.append(port(forEpoch: e - 1)) }
        return ports
    }

    /// When `openPorts` next changes: the end of the grace, or the next epoch.
    public func nextChange(after unix: Int64) -> Int64 {
        let start = epoch(at: unix) * period
        return unix < start + grace ? start + grace : start + period
    }

    /// The ports a reconnecting device tries, in order: the current epoch's, the previous one's
    /// (still open during the grace; also covers a device clock that runs a little ahead), the
    /// next one's (a device clock a little behind).
    public func candidates(at unix: Int64) -> [UInt16] {
        let e = epoch(at: unix)
        var out: [UInt16] = []
        for p in [port(forEpoch: e), port(forEpoch: e - 1), port(forEpoch: e + 1)] where !out.contains(p) { out.append(p) }
        return out
    }
}
