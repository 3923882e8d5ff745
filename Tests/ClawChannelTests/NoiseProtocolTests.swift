import ClawChannel
import ClawCrypto
import Testing

/// Protocol-name parsing and the pattern table's modifiers.
struct NoiseProtocolTests {
    @Test func ikpsk2NameParsesIntoPatternCipherAndHash() throws {
        let parsed = try NoiseProtocol(name: "Noise_IKpsk2_25519_AESGCM_SHA256")
        #expect(parsed.cipher == .aes256gcm)
        #expect(parsed.cipherName == "AESGCM")
        #expect(parsed.hash == .sha256)
        #expect(parsed.pattern.baseName == "IK")
        #expect(parsed.pattern.modifiers == ["psk2"])
        #expect(parsed.pattern.responderPreMessage == [.s])
        #expect(parsed.pattern.messages == [[.e, .es, .s, .ss], [.e, .ee, .se, .psk]])
        #expect(!parsed.pattern.isOneWay)
        #expect(try NoiseProtocol(name: "Noise_IK_25519_ChaChaPoly_SHA256").cipher == .chacha20poly1305)
    }

    @Test func psk0LeadsTheFirstMessageAndModifiersCombine() throws {
        #expect(try NoiseHandshakePattern(name: "NNpsk0").messages == [[.psk, .e], [.e, .ee]])
        #expect(try NoiseHandshakePattern(name: "XXpsk0+psk3").messages
            == [[.psk, .e], [.e, .ee, .s, .es], [.s, .se, .psk]])
        #expect(try NoiseHandshakePattern(name: "Npsk0").isOneWay)
    }

    @Test func unsupportedOrMalformedNamesAreTypedErrors() {
        #expect(throws: NoiseError.unsupportedDH("448")) { try NoiseProtocol(name: "Noise_IK_448_AESGCM_SHA256") }
        #expect(throws: NoiseError.unsupportedCipher("AES")) { try NoiseProtocol(name: "Noise_IK_25519_AES_SHA256") }
        #expect(throws: NoiseError.unsupportedHash("BLAKE2b")) { try NoiseProtocol(name: "Noise_IK_25519_AESGCM_BLAKE2b") }
        #expect(throws: NoiseError.unsupportedPattern("QQ")) { try NoiseProtocol(name: "Noise_QQ_25519_AESGCM_SHA256") }
        #expect(throws: NoiseError.unsupportedModifier("psk3")) { try NoiseHandshakePattern(name: "NNpsk3") }
        #expect(throws: NoiseError.unsupportedModifier("fallback")) { try NoiseHandshakePattern(name: "XXfallback") }
        #expect(throws: NoiseError.unsupportedModifier("psk")) { try NoiseHandshakePattern(name: "NNpsk") }
        #expect(throws: NoiseError.invalidProtocolName("Noise_IK_25519_AESGCM")) { try NoiseProtocol(name: "Noise_IK_25519_AESGCM") }
        #expect(throws: NoiseError.invalidProtocolName("Fizz_IK_25519_AESGCM_SHA256")) {
            try NoiseProtocol(name: "Fizz_IK_25519_AESGCM_SHA256")
        }
    }
}
