import ClawChannel
import ClawCrypto
import Testing

/// The handshake's behaviour on bad input, missing keys and misuse, shown with IKpsk2 (the
/// pattern ClawChat uses) between freshly generated identities.
struct NoiseHandshakeTests {
    let initiatorStatic = X25519KeyPair.generate()
    let responderStatic = X25519KeyPair.generate()
    let psk = SecureBytes.random(count: 32)
    let prologue = Array("ClawChat test".utf8)

    func initiator(psks: [SecureBytes]? = nil, cipher: String = "ChaChaPoly") throws -> NoiseHandshakeState {
        try NoiseHandshakeState(
            protocol: NoiseProtocol(name: "Noise_IKpsk2_25519_\(cipher)_SHA256"), initiator: true, prologue: prologue,
            localStatic: initiatorStatic, remoteStatic: responderStatic.publicKey, psks: psks ?? [psk])
    }

    func responder(psks: [SecureBytes] = [], cipher: String = "ChaChaPoly") throws -> NoiseHandshakeState {
        try NoiseHandshakeState(
            protocol: NoiseProtocol(name: "Noise_IKpsk2_25519_\(cipher)_SHA256"), initiator: false, prologue: prologue,
            localStatic: responderStatic, psks: psks)
    }

    @Test(arguments: ["AESGCM", "ChaChaPoly"])
    func responderPicksThePSKAfterLearningTheInitiatorFromMessage1(cipher: String) throws {
        var client = try initiator(cipher: cipher)
        var server = try responder(cipher: cipher)
        let message1 = try client.writeMessage(payload: Array("hello".utf8))
        #expect(try server.readMessage(message1) == Array("hello".utf8))
        #expect(server.remoteStaticPublicKey == initiatorStatic.publicKey)

        #expect(throws: NoiseError.missingPSK) { try server.writeMessage(payload: []) }
        server.setPSKs([psk])
        let message2 = try server.writeMessage(payload: Array("welcome".utf8))
        #expect(try client.readMessage(message2) == Array("welcome".utf8))
        #expect(client.isComplete && server.isComplete)
        #expect(client.handshakeHash == server.handshakeHash)

        var (clientSend, clientReceive) = try client.split()
        var (serverReceive, serverSend) = try server.split()
        let up = try clientSend.encryptWithAd([], plaintext: [1, 2, 3])
        #expect(try serverReceive.decryptWithAd([], ciphertext: up) == [1, 2, 3])
        let down = try serverSend.encryptWithAd([], plaintext: [4, 5])
        #expect(try clientReceive.decryptWithAd([], ciphertext: down) == [4, 5])
    }

    @Test func everyCorruptedByteOfMessage1IsRejectedAndTheStateStaysUsable() throws {
        var client = try initiator()
        var server = try responder()
        let message1 = try client.writeMessage(payload: Array("hello".utf8))
        for position in message1.indices {
            var corrupted = message1
            corrupted[position] ^= 0x04
            #expect(throws: NoiseError.decryptionFailed, "byte \(position)") { try server.readMessage(corrupted) }
        }
        // A failed read changed nothing: the genuine message is still accepted.
        #expect(try server.readMessage(message1) == Array("hello".utf8))
    }

    @Test func truncatedMessage1IsRejected() throws {
        var client = try initiator()
        var server = try responder()
        let message1 = try client.writeMessage(payload: Array("hello".utf8))
        let minimum = 32 + 48 + 16  // e, encrypted s, payload tag
        for length in 0..<minimum {
            #expect(throws: NoiseError.messageTruncated(length)) { try server.readMessage(Array(message1.prefix(length))) }
        }
        for length in minimum..<message1.count {
            #expect(throws: NoiseError.decryptionFailed) { try server.readMessage(Array(message1.prefix(length))) }
        }
    }

    @Test func arbitraryBytesAreRejectedWithoutTrapping() throws {
        var server = try responder()
        for _ in 0..<300 {
            let garbage = Random.bytes(count: Int(Random.uniform(400)))
            #expect(throws: NoiseError.self) { try server.readMessage(garbage) }
        }
        var client = try initiator()
        var allZeroEphemeral = try client.writeMessage(payload: [])
        allZeroEphemeral.replaceSubrange(0..<32, with: [UInt8](repeating: 0, count: 32))
        #expect(throws: NoiseError.invalidPublicKey) { try server.readMessage(allZeroEphemeral) }
    }

    @Test func initiatorWithoutPSKCannotReadMessage2UntilOneIsSet() throws {
        var client = try initiator(psks: [])
        var server = try responder(psks: [psk])
        _ = try server.readMessage(try client.writeMessage(payload: []))
        let message2 = try server.writeMessage(payload: [])
        #expect(throws: NoiseError.missingPSK) { try client.readMessage(message2) }
        client.setPSKs([psk])
        #expect(try client.readMessage(message2) == [])
        #expect(client.isComplete)
    }

    @Test func mismatchedPSKFailsAuthentication() throws {
        var client = try initiator(psks: [SecureBytes.random(count: 32)])
        var server = try responder(psks: [psk])
        _ = try server.readMessage(try client.writeMessage(payload: []))
        #expect(throws: NoiseError.decryptionFailed) { try client.readMessage(try server.writeMessage(payload: [])) }
    }

    @Test func pskOfTheWrongLengthIsATypedError() throws {
        #expect(throws: NoiseError.invalidPSKLength(16)) { try initiator(psks: [SecureBytes(count: 16)]) }
        var client = try initiator()
        var server = try responder()
        _ = try server.readMessage(try client.writeMessage(payload: []))
        server.setPSKs([SecureBytes(count: 31)])
        #expect(throws: NoiseError.invalidPSKLength(31)) { try server.writeMessage(payload: []) }
    }

    @Test func turnsAndCompletionAreEnforced() throws {
        var client = try initiator()
        var server = try responder(psks: [psk])
        #expect(throws: NoiseError.wrongTurn) { try server.writeMessage(payload: []) }
        #expect(throws: NoiseError.wrongTurn) { try client.readMessage([UInt8](repeating: 1, count: 64)) }
        #expect(throws: NoiseError.handshakeNotComplete) { try client.split() }
        _ = try server.readMessage(try client.writeMessage(payload: []))
        _ = try client.readMessage(try server.writeMessage(payload: []))
        #expect(throws: NoiseError.handshakeAlreadyComplete) { try client.writeMessage(payload: []) }
        #expect(throws: NoiseError.handshakeAlreadyComplete) { try server.readMessage([UInt8](repeating: 1, count: 64)) }
    }

    @Test func messagesOverTheNoiseLimitAreRejected() throws {
        var client = try initiator()
        var server = try responder()
        #expect(throws: NoiseError.messageTooLong(65536)) { try server.readMessage([UInt8](repeating: 0, count: 65536)) }
        let payload = [UInt8](repeating: 7, count: 65535 - 96 + 1)
        #expect(throws: NoiseError.messageTooLong(65536)) { try client.writeMessage(payload: payload) }
        // The largest payload that fits still goes through, from the unchanged state.
        let message1 = try client.writeMessage(payload: Array(payload.dropLast()))
        #expect(message1.count == 65535)
        #expect(try server.readMessage(message1).count == 65535 - 96)
    }

    @Test func missingStaticKeysAreReportedAtInit() throws {
        let ik = try NoiseProtocol(name: "Noise_IK_25519_ChaChaPoly_SHA256")
        #expect(throws: NoiseError.missingRemoteStaticKey) {
            try NoiseHandshakeState(protocol: ik, initiator: true, localStatic: initiatorStatic)
        }
        #expect(throws: NoiseError.missingLocalStaticKey) {
            try NoiseHandshakeState(protocol: ik, initiator: true, remoteStatic: responderStatic.publicKey)
        }
        #expect(throws: NoiseError.missingLocalStaticKey) { try NoiseHandshakeState(protocol: ik, initiator: false) }
        #expect(throws: NoiseError.invalidPublicKeyLength(31)) {
            try NoiseHandshakeState(protocol: ik, initiator: true, localStatic: initiatorStatic,
                                    remoteStatic: [UInt8](repeating: 9, count: 31))
        }
    }
}
