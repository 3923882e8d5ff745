import ClawCrypto

/// A Noise SymmetricState (rev 34, section 5.2): the chaining key `ck`, the handshake hash `h`
/// and the cipher state that handshake payloads and static keys are encrypted with.
///
/// `ck` and every derived key stay in `SecureBytes`; `h` is a transcript hash, not a secret.
public struct NoiseSymmetricState {
    /// The hash function (SHA-256).
    public let hash: NoiseHash
    /// The cipher state keyed by the latest `mixKey`/`mixKeyAndHash` (empty before the first).
    public private(set) var cipherState: NoiseCipherState
    private var chainingKey: SecureBytes
    /// `h`: the hash of everything sent and mixed so far.
    public private(set) var handshakeHash: [UInt8]

    /// InitializeSymmetric: `h` is the protocol name zero-padded to HASHLEN, or its hash when
    /// longer; `ck` starts equal to `h`.
    public init(protocolName: String, cipher: AEADCipher, hash: NoiseHash = .sha256) {
        let nameBytes = Array(protocolName.utf8)
        if nameBytes.count <= hash.hashLength {
            handshakeHash = nameBytes + [UInt8](repeating: 0, count: hash.hashLength - nameBytes.count)
        } else {
            handshakeHash = SHA256.hash(nameBytes)
        }
        chainingKey = SecureBytes(copying: handshakeHash)
        cipherState = NoiseCipherState(cipher: cipher)
        self.hash = hash
    }

    /// MixKey with secret input (a DH result or a PSK): `ck, k = HKDF(ck, ikm, 2)`.
    public mutating func mixKey(_ inputKeyMaterial: SecureBytes) {
        let outputs = HKDF.derive(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputCount: 2)
        rekeyFrom(chainingKey: outputs[0], cipherKey: outputs[1])
    }

    /// MixKey with public input (an ephemeral public key, in PSK handshakes).
    public mutating func mixKey(_ inputKeyMaterial: [UInt8]) {
        let outputs = HKDF.derive(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputCount: 2)
        rekeyFrom(chainingKey: outputs[0], cipherKey: outputs[1])
    }

    /// MixHash: `h = HASH(h || data)`.
    public mutating func mixHash(_ data: [UInt8]) {
        data.withUnsafeBytes { mixHash($0) }
    }

    /// MixHash over raw bytes (used for the secret `temp_h` of MixKeyAndHash).
    public mutating func mixHash(_ data: UnsafeRawBufferPointer) {
        var hasher = SHA256.Hasher()
        hasher.update(handshakeHash)
        hasher.update(data)
        handshakeHash = hasher.finalize()
    }

    /// MixKeyAndHash, used for PSKs: `ck, temp_h, k = HKDF(ck, ikm, 3)`; `MixHash(temp_h)`.
    public mutating func mixKeyAndHash(_ inputKeyMaterial: SecureBytes) {
        let outputs = HKDF.derive(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputCount: 3)
        outputs[1].withUnsafeBytes { mixHash($0) }
        rekeyFrom(chainingKey: outputs[0], cipherKey: outputs[2])
    }

    /// EncryptAndHash: encrypts with `h` as associated data, then mixes the ciphertext into `h`.
    /// Before any key is mixed in, the plaintext passes through (and is still hashed).
    public mutating func encryptAndHash(_ plaintext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let ciphertext = try cipherState.encryptWithAd(handshakeHash, plaintext: plaintext)
        mixHash(ciphertext)
        return ciphertext
    }

    /// DecryptAndHash: the inverse of `encryptAndHash`; throws `decryptionFailed` on forgery.
    public mutating func decryptAndHash(_ ciphertext: [UInt8]) throws(NoiseError) -> [UInt8] {
        let plaintext = try cipherState.decryptWithAd(handshakeHash, ciphertext: ciphertext)
        mixHash(ciphertext)
        return plaintext
    }

    /// Split: the two transport cipher states, `HKDF(ck, empty, 2)`.
    public func split() -> (initiatorToResponder: NoiseCipherState, responderToInitiator: NoiseCipherState) {
        let outputs = HKDF.derive(chainingKey: chainingKey, inputKeyMaterial: [], outputCount: 2)
        return (NoiseCipherState(cipher: cipherState.cipher, key: outputs[0]),
                NoiseCipherState(cipher: cipherState.cipher, key: outputs[1]))
    }

    private mutating func rekeyFrom(chainingKey newChainingKey: SecureBytes, cipherKey: SecureBytes) {
        // HASHLEN is 32 for SHA-256, so temp_k needs no truncation.
        chainingKey = newChainingKey
        cipherState = NoiseCipherState(cipher: cipherState.cipher, key: cipherKey)
    }
}
