import CSodium

/// Process-wide libsodium initialisation.
///
/// Every public entry point of `ClawCrypto` calls `ensureInitialized()` first, so callers never
/// need to; it is public for code that calls libsodium directly.
public enum Sodium {
    // A `static let` is initialised exactly once, thread-safely, on first use: that is the
    // "once" for sodium_init without any global mutable state. sodium_init returns 1 when
    // libsodium was already initialised, which is fine.
    private static let initialized: Bool = sodium_init() >= 0

    /// Initialises libsodium on first call; later calls are cheap no-ops.
    ///
    /// Traps if libsodium cannot initialise (in practice: no usable source of randomness),
    /// because no cryptographic operation could then be trusted.
    public static func ensureInitialized() {
        guard initialized else {
            fatalError("ClawCrypto: sodium_init() failed; libsodium cannot be used (is a random source such as getrandom or /dev/urandom available?)")
        }
    }
}
