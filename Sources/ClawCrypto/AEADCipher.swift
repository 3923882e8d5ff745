import CSodium

/// An authenticated cipher with associated data: 32-byte key, 12-byte nonce, 16-byte tag.
///
/// Output is "combined": the ciphertext followed by the tag. A (key, nonce) pair must never
/// be used twice; callers derive nonces from a counter.
///
/// Two forms are offered. The array form allocates its result and suits setup code and tests.
/// The buffer form writes into memory the caller owns and allocates nothing, for the
/// per-packet path; it may encrypt or decrypt in place (output and input at the same address).
public enum AEADCipher: Sendable, CaseIterable, CustomStringConvertible {
    /// AES-256-GCM (libsodium `crypto_aead_aes256gcm`); needs AES-NI and PCLMUL.
    case aes256gcm
    /// ChaCha20-Poly1305, IETF variant (libsodium `crypto_aead_chacha20poly1305_ietf`).
    case chacha20poly1305

    /// Key length in bytes, for both ciphers.
    public static let keyLength = 32
    /// Nonce length in bytes, for both ciphers.
    public static let nonceLength = 12
    /// Authentication tag length in bytes, for both ciphers.
    public static let tagLength = 16

    /// Whether this machine can run the cipher. ChaCha20-Poly1305 always can.
    public var isAvailable: Bool {
        switch self {
        case .aes256gcm:
            Sodium.ensureInitialized()
            return crypto_aead_aes256gcm_is_available() == 1
        case .chacha20poly1305:
            return true
        }
    }

    /// AES-256-GCM where the CPU accelerates it, otherwise ChaCha20-Poly1305.
    public static var preferred: AEADCipher {
        aes256gcm.isAvailable ? .aes256gcm : .chacha20poly1305
    }

    public var description: String {
        switch self {
        case .aes256gcm: return "AES-256-GCM"
        case .chacha20poly1305: return "ChaCha20-Poly1305"
        }
    }

    // MARK: Buffer form

    /// Encrypts `plaintext` and writes ciphertext || tag to the start of `output`.
    /// - Returns: the number of bytes written, `plaintext.count + tagLength`.
    public func seal(
        key: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer,
        plaintext: UnsafeRawBufferPointer,
        ad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        try validate(key: key, nonce: nonce)
        let needed = plaintext.count + Self.tagLength
        guard output.count >= needed else {
            throw .outputBufferTooSmall(needed: needed, available: output.count)
        }
        var written: UInt64 = 0
        let result: Int32
        switch self {
        case .aes256gcm:
            result = crypto_aead_aes256gcm_encrypt(
                sodiumMutablePointer(output), &written,
                sodiumPointer(plaintext), UInt64(plaintext.count),
                sodiumPointer(ad), UInt64(ad.count),
                nil, sodiumPointer(nonce), sodiumPointer(key))
        case .chacha20poly1305:
            result = crypto_aead_chacha20poly1305_ietf_encrypt(
                sodiumMutablePointer(output), &written,
                sodiumPointer(plaintext), UInt64(plaintext.count),
                sodiumPointer(ad), UInt64(ad.count),
                nil, sodiumPointer(nonce), sodiumPointer(key))
        }
        // Encryption fails only when the cipher is unsupported (validated above) or the
        // message exceeds libsodium's ~64 GiB limit, which no caller can reach.
        guard result == 0 else { throw .cipherUnavailable(self) }
        return Int(written)
    }

    /// Verifies and decrypts ciphertext || tag, writing the plaintext to the start of `output`.
    /// Nothing is written when authentication fails.
    /// - Returns: the plaintext length, `ciphertext.count - tagLength`.
    public func open(
        key: UnsafeRawBufferPointer,
        nonce: UnsafeRawBufferPointer,
        ciphertext: UnsafeRawBufferPointer,
        ad: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) -> Int {
        try validate(key: key, nonce: nonce)
        guard ciphertext.count >= Self.tagLength else { throw .ciphertextTooShort(ciphertext.count) }
        let needed = ciphertext.count - Self.tagLength
        guard output.count >= needed else {
            throw .outputBufferTooSmall(needed: needed, available: output.count)
        }
        var written: UInt64 = 0
        let result: Int32
        switch self {
        case .aes256gcm:
            result = crypto_aead_aes256gcm_decrypt(
                sodiumMutablePointer(output), &written, nil,
                sodiumPointer(ciphertext), UInt64(ciphertext.count),
                sodiumPointer(ad), UInt64(ad.count),
                sodiumPointer(nonce), sodiumPointer(key))
        case .chacha20poly1305:
            result = crypto_aead_chacha20poly1305_ietf_decrypt(
                sodiumMutablePointer(output), &written, nil,
                sodiumPointer(ciphertext), UInt64(ciphertext.count),
                sodiumPointer(ad), UInt64(ad.count),
                sodiumPointer(nonce), sodiumPointer(key))
        }
        guard result == 0 else { throw .authenticationFailed }
        return Int(written)
    }

    // MARK: Array form

    /// Encrypts `plaintext`, returning ciphertext || tag.
    public func seal(
        key: SecureBytes, nonce: [UInt8], plaintext: [UInt8], ad: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + Self.tagLength)
        _ = try key.withUnsafeBytes { (keyBytes) throws(CryptoError) -> Int in
            try nonce.withBytes { (nonceBytes) throws(CryptoError) -> Int in
                try plaintext.withBytes { (plainBytes) throws(CryptoError) -> Int in
                    try ad.withBytes { (adBytes) throws(CryptoError) -> Int in
                        try output.withMutableBytes { (out) throws(CryptoError) -> Int in
                            try seal(key: keyBytes, nonce: nonceBytes, plaintext: plainBytes,
                                     ad: adBytes, into: out)
                        }
                    }
                }
            }
        }
        return output
    }

    /// Verifies and decrypts ciphertext || tag, returning the plaintext.
    public func open(
        key: SecureBytes, nonce: [UInt8], ciphertext: [UInt8], ad: [UInt8] = []
    ) throws(CryptoError) -> [UInt8] {
        guard ciphertext.count >= Self.tagLength else { throw .ciphertextTooShort(ciphertext.count) }
        var output = [UInt8](repeating: 0, count: ciphertext.count - Self.tagLength)
        _ = try key.withUnsafeBytes { (keyBytes) throws(CryptoError) -> Int in
            try nonce.withBytes { (nonceBytes) throws(CryptoError) -> Int in
                try ciphertext.withBytes { (cipherBytes) throws(CryptoError) -> Int in
                    try ad.withBytes { (adBytes) throws(CryptoError) -> Int in
                        try output.withMutableBytes { (out) throws(CryptoError) -> Int in
                            try open(key: keyBytes, nonce: nonceBytes, ciphertext: cipherBytes,
                                     ad: adBytes, into: out)
                        }
                    }
                }
            }
        }
        return output
    }

    private func validate(key: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer) throws(CryptoError) {
        guard key.count == Self.keyLength else { throw .invalidKeyLength(key.count) }
        guard nonce.count == Self.nonceLength else { throw .invalidNonceLength(nonce.count) }
        guard isAvailable else { throw .cipherUnavailable(self) }
    }
}
