/// An X25519 private key (in secure memory) with its public key.
public struct X25519KeyPair {
    /// The 32-byte private scalar.
    public let privateKey: SecureBytes
    /// The 32-byte public key, `privateKey · basepoint`.
    public let publicKey: [UInt8]

    /// A fresh key pair from the system's CSPRNG.
    public static func generate() -> X25519KeyPair {
        // A random 32-byte scalar is a valid private key (X25519 clamps it), and its public
        // key can never be degenerate, so this cannot fail.
        do {
            return try X25519KeyPair(privateKey: SecureBytes.random(count: X25519.keyLength))
        } catch {
            fatalError("ClawCrypto: X25519 public key derivation failed for a random scalar: \(error)")
        }
    }

    /// The key pair for a known private key (stored identities and test vectors).
    /// The pair keeps a reference to `privateKey`, it does not copy it.
    public init(privateKey: SecureBytes) throws(CryptoError) {
        self.publicKey = try X25519.publicKey(for: privateKey)
        self.privateKey = privateKey
    }
}
