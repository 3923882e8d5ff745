import CSodium

/// Argon2id (version 1.3) password-based key derivation, via libsodium's `crypto_pwhash`.
///
/// Used to turn a passphrase into a key that protects stored secrets. The cost limits are
/// libsodium's named presets; tests use the minimums to stay fast.
public enum PasswordKDF {
    /// Salt length in bytes (`crypto_pwhash_SALTBYTES`).
    public static var saltLength: Int { crypto_pwhash_saltbytes() }

    /// Operations limit for interactive use (a login prompt).
    public static var opsLimitInteractive: UInt64 { UInt64(crypto_pwhash_opslimit_interactive()) }
    /// Memory limit (bytes) for interactive use.
    public static var memLimitInteractive: Int { crypto_pwhash_memlimit_interactive() }
    /// Operations limit for moderately sensitive data (about a second on a desktop CPU).
    public static var opsLimitModerate: UInt64 { UInt64(crypto_pwhash_opslimit_moderate()) }
    /// Memory limit (bytes) for moderately sensitive data.
    public static var memLimitModerate: Int { crypto_pwhash_memlimit_moderate() }
    /// The smallest operations limit libsodium accepts (for tests only).
    public static var opsLimitMin: UInt64 { UInt64(crypto_pwhash_opslimit_min()) }
    /// The smallest memory limit libsodium accepts (for tests only).
    public static var memLimitMin: Int { crypto_pwhash_memlimit_min() }

    /// Derives `outputLength` bytes from `passphrase` and a random, stored `salt`.
    public static func argon2id(
        passphrase: [UInt8], salt: [UInt8], outputLength: Int, opsLimit: UInt64, memLimit: Int
    ) throws(CryptoError) -> SecureBytes {
        Sodium.ensureInitialized()
        guard salt.count == saltLength else { throw .invalidSaltLength(salt.count) }
        guard outputLength >= crypto_pwhash_bytes_min(), outputLength <= crypto_pwhash_bytes_max() else {
            throw .invalidOutputLength(outputLength)
        }
        let output = SecureBytes(count: outputLength)
        let result = output.withUnsafeMutableBytes { out in
            passphrase.withUnsafeBytes { password in
                salt.withUnsafeBytes { saltBytes in
                    crypto_pwhash(
                        sodiumMutablePointer(out), UInt64(outputLength),
                        UnsafeRawPointer(sodiumPointer(password)).assumingMemoryBound(to: CChar.self), UInt64(password.count),
                        sodiumPointer(saltBytes), opsLimit, memLimit,
                        crypto_pwhash_alg_argon2id13())
                }
            }
        }
        guard result == 0 else { throw .passwordHashFailed }
        return output
    }
}
