import CSodium

/// BLAKE2b (RFC 7693), plain or keyed, via libsodium's `crypto_generichash`.
///
/// Keyed, it is a MAC: a key of 16 to 64 bytes and an output of 16 to 64 bytes.
public enum Blake2b {
    /// Allowed output lengths in bytes.
    public static let outputLengths = 16...64
    /// Allowed key lengths in bytes for keyed hashing (an empty key means unkeyed).
    public static let keyLengths = 16...64

    /// The BLAKE2b hash of `data`, keyed when `key` is not empty.
    public static func hash(_ data: [UInt8], key: [UInt8] = [], outputLength: Int = 32) throws(CryptoError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: outputLength)
        try data.withBytes { (input) throws(CryptoError) in
            try key.withBytes { (keyBytes) throws(CryptoError) in
                try output.withMutableBytes { (out) throws(CryptoError) in
                    try hash(input, key: keyBytes, into: out)
                }
            }
        }
        return output
    }

    /// The keyed BLAKE2b hash of `data` under a secret key kept in secure memory.
    public static func hash(_ data: [UInt8], key: SecureBytes, outputLength: Int = 32) throws(CryptoError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: outputLength)
        try data.withBytes { (input) throws(CryptoError) in
            try key.withUnsafeBytes { (keyBytes) throws(CryptoError) in
                try output.withMutableBytes { (out) throws(CryptoError) in
                    try hash(input, key: keyBytes, into: out)
                }
            }
        }
        return output
    }

    /// Buffer form: hashes `data` under `key` (may be empty) into all of `output`, whose
    /// length selects the output length.
    public static func hash(
        _ data: UnsafeRawBufferPointer, key: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
    ) throws(CryptoError) {
        guard outputLengths.contains(output.count) else { throw .invalidOutputLength(output.count) }
        guard key.isEmpty || keyLengths.contains(key.count) else { throw .invalidKeyLength(key.count) }
        Sodium.ensureInitialized()
        let result = crypto_generichash(
            sodiumMutablePointer(output), output.count,
            sodiumPointer(data), UInt64(data.count),
            sodiumPointer(key), key.count)
        guard result == 0 else { throw .invalidOutputLength(output.count) }
    }
}
