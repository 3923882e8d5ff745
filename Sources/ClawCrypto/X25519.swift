import CSodium

/// Diffie-Hellman over Curve25519 (RFC 7748), via libsodium's `crypto_scalarmult`.
public enum X25519 {
    /// Length of private keys, public keys and shared secrets, in bytes.
    public static let keyLength = 32

    /// The public key for `privateKey` (the scalar is clamped as RFC 7748 requires).
    public static func publicKey(for privateKey: SecureBytes) throws(CryptoError) -> [UInt8] {
        guard privateKey.count == keyLength else { throw .invalidKeyLength(privateKey.count) }
        Sodium.ensureInitialized()
        var publicKey = [UInt8](repeating: 0, count: keyLength)
        let result = privateKey.withUnsafeBytes { scalar in
            publicKey.withUnsafeMutableBytes { out in
                crypto_scalarmult_base(sodiumMutablePointer(out), sodiumPointer(scalar))
            }
        }
        // crypto_scalarmult_base fails only if the result is the identity, which the clamped
        // scalar cannot produce; treat it like any other degenerate key.
        guard result == 0 else { throw .weakPublicKey }
        return publicKey
    }

    /// The shared secret between our `privateKey` and the peer's `publicKey`.
    ///
    /// Throws `weakPublicKey` when the result is all zeros, i.e. the peer sent a point of
    /// small order that would make the "secret" predictable.
    public static func sharedSecret(privateKey: SecureBytes, publicKey: [UInt8]) throws(CryptoError) -> SecureBytes {
        try publicKey.withBytes { (peer) throws(CryptoError) -> SecureBytes in
            try sharedSecret(privateKey: privateKey, publicKey: peer)
        }
    }

    /// Buffer form of `sharedSecret(privateKey:publicKey:)`.
    public static func sharedSecret(
        privateKey: SecureBytes, publicKey: UnsafeRawBufferPointer
    ) throws(CryptoError) -> SecureBytes {
        guard privateKey.count == keyLength else { throw .invalidKeyLength(privateKey.count) }
        guard publicKey.count == keyLength else { throw .invalidPublicKeyLength(publicKey.count) }
        Sodium.ensureInitialized()
        let secret = SecureBytes(count: keyLength)
        let result = privateKey.withUnsafeBytes { scalar in
            secret.withUnsafeMutableBytes { out in
                crypto_scalarmult(sodiumMutablePointer(out), sodiumPointer(scalar), sodiumPointer(publicKey))
            }
        }
        guard result == 0 else {
            secret.zeroize()
            throw .weakPublicKey
        }
        return secret
    }
}
