import ClawCrypto

/// Why a Noise handshake or cipher-state operation failed.
///
/// Every malformed or forged input surfaces as one of these, never as a crash. A failed
/// `readMessage` leaves the handshake state exactly as it was, so a caller on an unreliable
/// transport may drop the bad packet and wait for a genuine one.
public enum NoiseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The protocol name is not of the form `Noise_<pattern>_<dh>_<cipher>_<hash>`.
    case invalidProtocolName(String)
    /// The handshake pattern (without modifiers) is not in the pattern table.
    case unsupportedPattern(String)
    /// A pattern modifier other than `psk0`...`psk9`, or one that names a missing message.
    case unsupportedModifier(String)
    /// A DH function other than 25519.
    case unsupportedDH(String)
    /// A cipher other than AESGCM or ChaChaPoly.
    case unsupportedCipher(String)
    /// A hash other than SHA256.
    case unsupportedHash(String)
    /// The cipher is known but this machine cannot run it (AESGCM without AES-NI).
    case cipherUnavailable(String)
    /// The pattern needs our static key pair and none was given.
    case missingLocalStaticKey
    /// The pattern needs the peer's static public key before it is known.
    case missingRemoteStaticKey
    /// A `psk` token was reached with no pre-shared key left to use.
    case missingPSK
    /// Transport encryption or decryption on a cipher state that has no key (never keyed, or
    /// zeroized).
    case missingCipherKey
    /// A pre-shared key that is not 32 bytes.
    case invalidPSKLength(Int)
    /// A public key given to the handshake that is not 32 bytes.
    case invalidPublicKeyLength(Int)
    /// The peer's public key has small order; the DH result would be all zeros.
    case invalidPublicKey
    /// `writeMessage` when it is the peer's turn, or `readMessage` when it is ours.
    case wrongTurn
    /// The handshake has already finished; no more handshake messages are accepted.
    case handshakeAlreadyComplete
    /// `split()` before the last handshake message.
    case handshakeNotComplete
    /// A message over the Noise limit of 65535 bytes (the value is the offending length).
    case messageTooLong(Int)
    /// A message too short to hold the keys and tag its pattern requires.
    case messageTruncated(Int)
    /// Authenticated decryption failed: forged, corrupted, replayed under the wrong nonce, or
    /// encrypted under different keys (for example a different PSK or prologue).
    case decryptionFailed
    /// The 64-bit nonce counter is exhausted; the key must not be used any more.
    case nonceExhausted
    /// A lower-level crypto failure that is not one of the cases above.
    case crypto(CryptoError)

    public var description: String {
        switch self {
        case .invalidProtocolName(let name):
            return "invalid Noise protocol name \"\(name)\" (expected Noise_<pattern>_<dh>_<cipher>_<hash>)"
        case .unsupportedPattern(let pattern):
            return "unsupported Noise handshake pattern \"\(pattern)\""
        case .unsupportedModifier(let modifier):
            return "unsupported or inapplicable Noise pattern modifier \"\(modifier)\""
        case .unsupportedDH(let name):
            return "unsupported Noise DH function \"\(name)\" (only 25519 is implemented)"
        case .unsupportedCipher(let name):
            return "unsupported Noise cipher \"\(name)\" (AESGCM and ChaChaPoly are implemented)"
        case .unsupportedHash(let name):
            return "unsupported Noise hash \"\(name)\" (only SHA256 is implemented)"
        case .cipherUnavailable(let name):
            return "Noise cipher \(name) is not available on this CPU"
        case .missingLocalStaticKey:
            return "the handshake pattern needs a local static key pair, but none was given"
        case .missingRemoteStaticKey:
            return "the handshake pattern needs the peer's static public key, but it is not known"
        case .missingPSK:
            return "the handshake reached a psk token but no pre-shared key was supplied"
        case .missingCipherKey:
            return "the cipher state has no key (it was never keyed, or has been zeroized)"
        case .invalidPSKLength(let count):
            return "pre-shared key of \(count) bytes; Noise PSKs are 32 bytes"
        case .invalidPublicKeyLength(let count):
            return "public key of \(count) bytes; X25519 public keys are 32 bytes"
        case .invalidPublicKey:
            return "the peer's public key has small order (DH result would be all zeros)"
        case .wrongTurn:
            return "it is the other party's turn in the handshake"
        case .handshakeAlreadyComplete:
            return "the handshake is already complete"
        case .handshakeNotComplete:
            return "the handshake is not complete yet, so there are no transport keys"
        case .messageTooLong(let count):
            return "Noise message of \(count) bytes exceeds the 65535-byte limit"
        case .messageTruncated(let count):
            return "Noise message of \(count) bytes is too short for its handshake pattern"
        case .decryptionFailed:
            return "Noise decryption failed (forged or corrupted message, or mismatched keys, PSK or prologue)"
        case .nonceExhausted:
            return "the Noise nonce counter is exhausted; rekey or start a new handshake"
        case .crypto(let error):
            return "crypto failure: \(error)"
        }
    }

    /// Maps a crypto-layer error onto the Noise error a caller should see.
    init(_ error: CryptoError) {
        switch error {
        case .authenticationFailed, .ciphertextTooShort: self = .decryptionFailed
        case .weakPublicKey: self = .invalidPublicKey
        case .invalidPublicKeyLength(let count): self = .invalidPublicKeyLength(count)
        default: self = .crypto(error)
        }
    }
}

/// Runs a `ClawCrypto` operation, translating its error into a `NoiseError`.
@inline(__always)
func noiseCrypto<Result>(_ body: () throws(CryptoError) -> Result) throws(NoiseError) -> Result {
    do {
        return try body()
    } catch {
        throw NoiseError(error)
    }
}
