import CSodium

/// SHA-256 (libsodium `crypto_hash_sha256`).
public enum SHA256 {
    /// Digest length in bytes.
    public static let digestLength = 32
    /// Internal block length in bytes (Noise's BLOCKLEN).
    public static let blockLength = 64

    /// The digest of `data`.
    public static func hash(_ data: [UInt8]) -> [UInt8] {
        var hasher = Hasher()
        hasher.update(data)
        return hasher.finalize()
    }

    /// Incremental hashing: feed pieces with `update`, then `finalize` once.
    public struct Hasher {
        private var state = crypto_hash_sha256_state()

        /// A hasher with nothing fed yet.
        public init() {
            Sodium.ensureInitialized()
            crypto_hash_sha256_init(&state)
        }

        /// Feeds more input.
        public mutating func update(_ data: UnsafeRawBufferPointer) {
            crypto_hash_sha256_update(&state, sodiumPointer(data), UInt64(data.count))
        }

        /// Feeds more input.
        public mutating func update(_ data: [UInt8]) {
            data.withUnsafeBytes { update($0) }
        }

        /// The digest of everything fed. libsodium wipes the state afterwards, so the hasher
        /// is consumed.
        public consuming func finalize() -> [UInt8] {
            var digest = [UInt8](repeating: 0, count: SHA256.digestLength)
            digest.withUnsafeMutableBytes { out in
                _ = crypto_hash_sha256_final(&state, sodiumMutablePointer(out))
            }
            return digest
        }
    }
}
