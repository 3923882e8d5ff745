import ClawCrypto

/// The hash function of a Noise protocol. Only SHA-256 is implemented.
public enum NoiseHash: String, Sendable, Equatable {
    case sha256 = "SHA256"

    /// HASHLEN: output length in bytes.
    public var hashLength: Int { SHA256.digestLength }
    /// BLOCKLEN: internal block length in bytes.
    public var blockLength: Int { SHA256.blockLength }
}

/// A parsed Noise protocol name such as `Noise_IKpsk2_25519_ChaChaPoly_SHA256`.
///
/// The DH function is always 25519 (the only one implemented). `AESGCM` maps onto
/// `AEADCipher.aes256gcm`, `ChaChaPoly` onto `AEADCipher.chacha20poly1305`.
public struct NoiseProtocol: Sendable, Equatable, CustomStringConvertible {
    /// The largest Noise message, handshake or transport, in bytes (section 3).
    public static let maxMessageLength = 65535

    /// The full protocol name; it is hashed into the handshake, so it must match exactly.
    public let name: String
    /// The handshake pattern with modifiers applied.
    public let pattern: NoiseHandshakePattern
    /// The AEAD cipher.
    public let cipher: AEADCipher
    /// The hash function.
    public let hash: NoiseHash

    /// Parses `name`; throws for malformed names and for anything not implemented.
    public init(name: String) throws(NoiseError) {
        let parts = name.split(separator: "_", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 5, parts[0] == "Noise", !parts[1].isEmpty else {
            throw .invalidProtocolName(name)
        }
        guard parts[2] == "25519" else { throw .unsupportedDH(parts[2]) }
        switch parts[3] {
        case "AESGCM": cipher = .aes256gcm
        case "ChaChaPoly": cipher = .chacha20poly1305
        default: throw .unsupportedCipher(parts[3])
        }
        guard let hash = NoiseHash(rawValue: parts[4]) else { throw .unsupportedHash(parts[4]) }
        self.hash = hash
        self.pattern = try NoiseHandshakePattern(name: parts[1])
        self.name = name
    }

    /// The Noise name of the cipher (`AESGCM` or `ChaChaPoly`).
    public var cipherName: String {
        switch cipher {
        case .aes256gcm: return "AESGCM"
        case .chacha20poly1305: return "ChaChaPoly"
        }
    }

    public var description: String { name }
}
