import CSodium

/// HMAC-SHA256 (RFC 2104) with a key of any length, via libsodium's incremental
/// `crypto_auth_hmacsha256_init/update/final` (the one-shot form only takes 32-byte keys).
public enum HMACSHA256 {
    /// Tag length in bytes.
    public static let tagLength = 32

    /// The HMAC of `data` under `key`.
    public static func authenticate(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: tagLength)
        key.withUnsafeBytes { keyBytes in
            data.withUnsafeBytes { dataBytes in
                tag.withUnsafeMutableBytes { out in
                    authenticate(key: keyBytes, parts: [dataBytes], into: out)
                }
            }
        }
        return tag
    }

    /// The HMAC of `data` under a secret key that stays in secure memory.
    public static func authenticate(key: SecureBytes, data: [UInt8]) -> [UInt8] {
        var tag = [UInt8](repeating: 0, count: tagLength)
        key.withUnsafeBytes { keyBytes in
            data.withUnsafeBytes { dataBytes in
                tag.withUnsafeMutableBytes { out in
                    authenticate(key: keyBytes, parts: [dataBytes], into: out)
                }
            }
        }
        return tag
    }

    /// The HMAC of the concatenation of `parts` under `key`, written to the first 32 bytes of
    /// `output` (which may be secure memory).
    public static func authenticate(
        key: UnsafeRawBufferPointer,
        parts: [UnsafeRawBufferPointer],
        into output: UnsafeMutableRawBufferPointer
    ) {
        precondition(output.count >= tagLength, "HMAC-SHA256 output buffer must hold 32 bytes")
        Sodium.ensureInitialized()
        var state = crypto_auth_hmacsha256_state()
        crypto_auth_hmacsha256_init(&state, sodiumPointer(key), key.count)
        for part in parts {
            crypto_auth_hmacsha256_update(&state, sodiumPointer(part), UInt64(part.count))
        }
        // final wipes the state, which holds key-derived material.
        crypto_auth_hmacsha256_final(&state, sodiumMutablePointer(output))
    }
}
