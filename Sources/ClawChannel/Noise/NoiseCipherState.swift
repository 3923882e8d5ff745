import ClawCrypto

/// A Noise CipherState (rev 34, section 5.1): an AEAD key plus a 64-bit nonce counter.
///
/// The counter forms (`encryptWithAd`, `decryptWithAd`) are for the handshake and for ordered
/// transports. A UDP transport, where packets are lost and reordered, sends the counter in the
/// clear and uses the explicit-nonce forms (section 11.4), which leave `nonce` untouched; the
/// replay check is then the caller's job.
///
/// Messages, like handshake messages, are limited to 65535 bytes including the tag.
///
/// The key lives in `SecureBytes`. Copies of a cipher state share that key storage, so
/// `zeroize()` on any copy destroys the key for all of them.
public struct NoiseCipherState {
    /// The AEAD cipher in use.
    public let cipher: AEADCipher
    private var key: SecureBytes?
    private var destroyed = false
    /// The next nonce `encryptWithAd`/`decryptWithAd` will use.
    public private(set) var nonce: UInt64 = 0

    /// The 2^64-1 nonce is reserved for `rekey()` and never used for messages.
    static let reservedNonce = UInt64.max

    /// A cipher state with `key` (32 bytes) or, without one, the empty state that passes
    /// handshake payloads through in clear until a key is mixed in.
    public init(cipher: AEADCipher, key: SecureBytes? = nil) {
        precondition(key.map { $0.count == AEADCipher.keyLength } ?? true, "Noise cipher keys are 32 bytes")
        self.cipher = cipher
        self.key = key
    }

    /// Whether a key is set (and not yet zeroized).
    public var hasKey: Bool { key != nil && !destroyed }

    /// True when no key bytes remain in memory: never keyed, or zeroized. For tests.
    public var keyIsZero: Bool { key?.isAllZero ?? true }

    /// Sets the counter, e.g. when resuming a stream at a known position.
    public mutating func setNonce(_ nonce: UInt64) { self.nonce = nonce }

    /// Encrypts with the next counter nonce; with no key, returns `plaintext` unchanged
    /// (only possible early in a handshake).
    public mutating func encryptWithAd(_ ad: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard key != nil || destroyed else { return plaintext }
        guard nonce != Self.reservedNonce else { throw .nonceExhausted }
        let ciphertext = try encrypt(nonce: nonce, ad: ad, plaintext: plaintext)
        nonce += 1
        return ciphertext
    }

    /// Decrypts with the next counter nonce; with no key, returns `ciphertext` unchanged.
    /// The counter advances only when authentication succeeds.
    public mutating func decryptWithAd(_ ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard key != nil || destroyed else { return ciphertext }
        guard nonce != Self.reservedNonce else { throw .nonceExhausted }
        let plaintext = try decrypt(nonce: nonce, ad: ad, ciphertext: ciphertext)
        nonce += 1
        return plaintext
    }

    /// Encrypts under an explicit nonce, returning ciphertext || tag. Requires a key.
    public func encrypt(nonce: UInt64, ad: [UInt8], plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: plaintext.count + AEADCipher.tagLength)
        let written: Result<Int, NoiseError> = ad.withUnsafeBytes { adBytes in
            plaintext.withUnsafeBytes { plainBytes in
                output.withUnsafeMutableBytes { out in
                    Result { () throws(NoiseError) -> Int in
                        try encrypt(nonce: nonce, ad: adBytes, plaintext: plainBytes, into: out)
                    }
                }
            }
        }
        _ = try written.get()
        return output
    }

    /// Decrypts ciphertext || tag under an explicit nonce. Requires a key.
    public func decrypt(nonce: UInt64, ad: [UInt8], ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard ciphertext.count >= AEADCipher.tagLength else { throw .decryptionFailed }
        var output = [UInt8](repeating: 0, count: ciphertext.count - AEADCipher.tagLength)
        let written: Result<Int, NoiseError> = ad.withUnsafeBytes { adBytes in
            ciphertext.withUnsafeBytes { cipherBytes in
                output.withUnsafeMutableBytes { out in
                    Result { () throws(NoiseError) -> Int in
                        try decrypt(nonce: nonce, ad: adBytes, ciphertext: cipherBytes, into: out)
                    }
                }
            }
        }
        _ = try written.get()
        return output
    }

    /// Buffer form of `encrypt(nonce:ad:plaintext:)` for the per-packet path: writes
    /// ciphertext || tag to the start of `output` (in place is allowed) and returns its length.
    public func encrypt(
        nonce: UInt64, ad: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) -> Int {
        let key = try usableKey(nonce: nonce)
        let length = plaintext.count + AEADCipher.tagLength
        guard length <= NoiseProtocol.maxMessageLength else { throw .messageTooLong(length) }
        return try withNonceBytes(nonce) { (nonceBytes) throws(NoiseError) -> Int in
            try key.withUnsafeBytes { (keyBytes) throws(NoiseError) -> Int in
                try noiseCrypto { () throws(CryptoError) -> Int in
                    try cipher.seal(key: keyBytes, nonce: nonceBytes, plaintext: plaintext, ad: ad, into: output)
                }
            }
        }
    }

    /// Buffer form of `decrypt(nonce:ad:ciphertext:)`: writes the plaintext to the start of
    /// `output` (in place is allowed) and returns its length.
    public func decrypt(
        nonce: UInt64, ad: UnsafeRawBufferPointer, ciphertext: UnsafeRawBufferPointer,
        into output: UnsafeMutableRawBufferPointer
    ) throws(NoiseError) -> Int {
        let key = try usableKey(nonce: nonce)
        guard ciphertext.count <= NoiseProtocol.maxMessageLength else { throw .messageTooLong(ciphertext.count) }
        return try withNonceBytes(nonce) { (nonceBytes) throws(NoiseError) -> Int in
            try key.withUnsafeBytes { (keyBytes) throws(NoiseError) -> Int in
                try noiseCrypto { () throws(CryptoError) -> Int in
                    try cipher.open(key: keyBytes, nonce: nonceBytes, ciphertext: ciphertext, ad: ad, into: output)
                }
            }
        }
    }

    /// Replaces the key with the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes)
    /// (section 4.2). The counter is unchanged.
    public mutating func rekey() throws(NoiseError) {
        guard let oldKey = key, !destroyed else { throw .missingCipherKey }
        let block = SecureBytes(count: AEADCipher.keyLength + AEADCipher.tagLength)
        try withNonceBytes(Self.reservedNonce) { (nonceBytes) throws(NoiseError) in
            try oldKey.withUnsafeBytes { (keyBytes) throws(NoiseError) in
                try block.withUnsafeMutableBytes { (out) throws(NoiseError) in
                    let zeros = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(out)[..<AEADCipher.keyLength])
                    _ = try noiseCrypto { () throws(CryptoError) -> Int in
                        try cipher.seal(key: keyBytes, nonce: nonceBytes, plaintext: zeros,
                                        ad: UnsafeRawBufferPointer(start: nil, count: 0), into: out)
                    }
                }
            }
        }
        key = block.withUnsafeBytes { SecureBytes(copying: $0.prefix(AEADCipher.keyLength)) }
    }

    /// Wipes the key now. Afterwards every encrypt or decrypt throws `missingCipherKey`.
    public mutating func zeroize() {
        key?.zeroize()
        destroyed = true
    }

    private func usableKey(nonce: UInt64) throws(NoiseError) -> SecureBytes {
        guard let key, !destroyed else { throw .missingCipherKey }
        guard nonce != Self.reservedNonce else { throw .nonceExhausted }
        return key
    }

    /// The 12-byte AEAD nonce for counter `n`: four zero bytes, then the counter big-endian
    /// for AESGCM or little-endian for ChaChaPoly (section 12). Built on the stack.
    private func withNonceBytes<Result>(
        _ n: UInt64, _ body: (UnsafeRawBufferPointer) throws(NoiseError) -> Result
    ) throws(NoiseError) -> Result {
        let counter = cipher == .aes256gcm ? n.bigEndian : n.littleEndian
        var words: (UInt32, UInt32, UInt32) = (0, 0, 0)
        withUnsafeMutableBytes(of: &words) { raw in
            raw.storeBytes(of: counter, toByteOffset: 4, as: UInt64.self)
        }
        let outcome = withUnsafeBytes(of: &words) { raw in
            Swift.Result { () throws(NoiseError) -> Result in try body(raw) }
        }
        return try outcome.get()
    }
}
