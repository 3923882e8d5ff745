import ClawCrypto
import Testing

// RFC 7748, section 6.1.
private let alicePrivate = [UInt8](hex: "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
private let alicePublic = [UInt8](hex: "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
private let bobPrivate = [UInt8](hex: "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
private let bobPublic = [UInt8](hex: "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
private let sharedSecret = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"

@Test func x25519PublicKeysMatchRFC7748() throws {
    #expect(try X25519KeyPair(privateKey: SecureBytes(copying: alicePrivate)).publicKey == alicePublic)
    #expect(try X25519KeyPair(privateKey: SecureBytes(copying: bobPrivate)).publicKey == bobPublic)
}

@Test func x25519SharedSecretMatchesRFC7748FromBothSides() throws {
    let fromAlice = try X25519.sharedSecret(privateKey: SecureBytes(copying: alicePrivate), publicKey: bobPublic)
    let fromBob = try X25519.sharedSecret(privateKey: SecureBytes(copying: bobPrivate), publicKey: alicePublic)
    #expect(fromAlice.copyToArray().hex == sharedSecret)
    #expect(fromBob.copyToArray().hex == sharedSecret)
}

@Test func x25519GeneratedKeyPairsAgree() throws {
    let alice = X25519KeyPair.generate()
    let bob = X25519KeyPair.generate()
    #expect(alice.publicKey != bob.publicKey)
    let one = try X25519.sharedSecret(privateKey: alice.privateKey, publicKey: bob.publicKey)
    let two = try X25519.sharedSecret(privateKey: bob.privateKey, publicKey: alice.publicKey)
    #expect(constantTimeEqual(one, two))
}

@Test func x25519RejectsSmallOrderPublicKeys() {
    let alice = X25519KeyPair.generate()
    // The identity (all zeros) and the point of order 2 (u = 1) give an all-zero secret.
    for point in [[UInt8](repeating: 0, count: 32), [1] + [UInt8](repeating: 0, count: 31)] {
        #expect(throws: CryptoError.weakPublicKey) {
            try X25519.sharedSecret(privateKey: alice.privateKey, publicKey: point)
        }
    }
    #expect(throws: CryptoError.invalidPublicKeyLength(31)) {
        try X25519.sharedSecret(privateKey: alice.privateKey, publicKey: [UInt8](repeating: 9, count: 31))
    }
}
