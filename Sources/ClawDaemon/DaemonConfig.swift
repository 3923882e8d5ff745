import ClawChannel
import ClawCrypto
import ClawReactor

/// Everything the daemon needs to run. Built from flags and environment by `clawchatd`.
public struct DaemonConfig {
    /// Holds `server.key`, `devices` and the pid file (0700).
    public var stateDirectory: String
    /// Where `clawchat-current.sec` is written (0700; the file is 0600).
    public var securityDirectory: String
    public var listen: SocketAddress
    /// Addresses written into security files (their ports are ignored: the listening port is
    /// used). Empty means: discover with STUN, else use `listen` if it is a concrete address.
    public var publicAddresses: [SocketAddress]
    public var stunServers: [SocketAddress]
    public var bootstrapKey: BootstrapKey
    public var cipher: AEADCipher
    public var timers: ChannelTimers
    public var limits: HandshakeLimits
    /// Argon2id cost when the bootstrap key is a passphrase.
    public var argon2OpsLimit: UInt64 = PasswordKDF.opsLimitInteractive
    public var argon2MemLimit: Int = PasswordKDF.memLimitInteractive
    /// Port rotation (off when nil): the listening port moves every `period` seconds within
    /// `range`; the secret lives in `STATE/rotation.key` and reaches paired devices in band.
    public var rotation: RotationSettings?

    public init(stateDirectory: String, securityDirectory: String, listen: SocketAddress,
                publicAddresses: [SocketAddress] = [], stunServers: [SocketAddress] = [],
                bootstrapKey: BootstrapKey, cipher: AEADCipher = .preferred,
                timers: ChannelTimers = ChannelTimers(), limits: HandshakeLimits = HandshakeLimits()) {
        self.stateDirectory = stateDirectory
        self.securityDirectory = securityDirectory
        self.listen = listen
        self.publicAddresses = publicAddresses
        self.stunServers = stunServers
        self.bootstrapKey = bootstrapKey
        self.cipher = cipher
        self.timers = timers
        self.limits = limits
    }

    public var serverKeyPath: String { "\(stateDirectory)/server.key" }
    public var devicesPath: String { "\(stateDirectory)/devices" }
    public var pidPath: String { "\(stateDirectory)/clawchatd.pid" }
    /// The local control socket of `clawchatd status` (0600).
    public var controlSocketPath: String { "\(stateDirectory)/control.sock" }
    public var securityFilePath: String { "\(securityDirectory)/\(SecurityFile.fileName)" }
    public var rotationKeyPath: String { "\(stateDirectory)/rotation.key" }
}

/// The settings of port rotation; the secret is the daemon's own.
public struct RotationSettings: Sendable {
    public var range: ClosedRange<UInt16>
    public var period: Int64
    public var grace: Int64
    public init(range: ClosedRange<UInt16>, period: Int64 = 3600, grace: Int64 = 900) {
        self.range = range
        self.period = period
        self.grace = grace
    }
}

/// Why the daemon could not start, said so that the operator can fix it.
public enum DaemonError: Error, CustomStringConvertible {
    case storage(String)
    case network(ReactorError)
    case noPublicAddress
    /// A setting that cannot work (a provider without a key, a bad URL); the text says which.
    case configuration(String)

    public var description: String {
        switch self {
        case .configuration(let why): return why
        case .storage(let why): return why
        case .network(let e): return e.description
        case .noPublicAddress:
            return "no public address for security files: set --public-address, or --stun-server for discovery (never 0.0.0.0)"
        }
    }
}
