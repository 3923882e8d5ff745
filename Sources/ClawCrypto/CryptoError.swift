/// Why a `ClawCrypto` operation failed.
///
/// Lengths carried by a case are the lengths the caller actually passed, so the message says
/// what to fix.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The AEAD tag did not verify: wrong key, wrong nonce, altered ciphertext or altered
    /// associated data. Deliberately says nothing about which.
    case authenticationFailed
    /// A ciphertext shorter than the 16-byte tag.
    case ciphertextTooShort(Int)
    /// A caller-provided output buffer cannot hold the result.
    case outputBufferTooSmall(needed: Int, available: Int)
    /// A key of the wrong length for the operation.
    case invalidKeyLength(Int)
    /// An AEAD nonce that is not 12 bytes.
    case invalidNonceLength(Int)
    /// An X25519 public key that is not 32 bytes.
    case invalidPublicKeyLength(Int)
    /// An X25519 public key of small order: the shared secret would be all zeros.
    case weakPublicKey
    /// A password-hashing salt that is not `PasswordKDF.saltLength` bytes.
    case invalidSaltLength(Int)
    /// A requested output length outside what the primitive supports.
    case invalidOutputLength(Int)
    /// The cipher is not supported by this CPU (AES-GCM needs AES-NI and PCLMUL).
    case cipherUnavailable(AEADCipher)
    /// Argon2id failed, almost always because the memory limit could not be allocated.
    case passwordHashFailed

    public var description: String {
        switch self {
        case .authenticationFailed:
            return "authentication failed: the ciphertext, tag, associated data, key or nonce is wrong"
        case .ciphertextTooShort(let count):
            return "ciphertext of \(count) bytes is shorter than the \(AEADCipher.tagLength)-byte tag"
        case .outputBufferTooSmall(let needed, let available):
            return "output buffer holds \(available) bytes but \(needed) are needed"
        case .invalidKeyLength(let count):
            return "key of \(count) bytes has the wrong length for this operation"
        case .invalidNonceLength(let count):
            return "nonce of \(count) bytes; AEAD nonces are \(AEADCipher.nonceLength) bytes"
        case .invalidPublicKeyLength(let count):
            return "X25519 public key of \(count) bytes; it must be \(X25519.keyLength) bytes"
        case .weakPublicKey:
            return "X25519 public key has small order (the shared secret would be all zeros)"
        case .invalidSaltLength(let count):
            return "salt of \(count) bytes; Argon2id salts are \(PasswordKDF.saltLength) bytes"
        case .invalidOutputLength(let count):
            return "output length \(count) is outside the range this primitive supports"
        case .cipherUnavailable(let cipher):
            return "\(cipher) is not available on this CPU"
        case .passwordHashFailed:
            return "Argon2id failed (most likely the memory limit could not be allocated)"
        }
    }
}
