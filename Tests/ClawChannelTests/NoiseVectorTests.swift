import ClawChannel
import ClawCrypto
import Foundation
import Testing

/// One cacophony test vector (field names as in the JSON file).
struct NoiseVector: Decodable, Sendable, CustomTestStringConvertible {
    struct Message: Decodable, Sendable {
        let payload: String
        let ciphertext: String
    }

    let protocol_name: String
    let init_prologue: String
    let init_psks: [String]?
    let init_static: String?
    let init_ephemeral: String
    let init_remote_static: String?
    let resp_prologue: String
    let resp_psks: [String]?
    let resp_static: String?
    let resp_ephemeral: String?
    let resp_remote_static: String?
    let handshake_hash: String?
    let messages: [Message]

    var testDescription: String { protocol_name }

    /// Vectors for the suites we implement: 25519, AESGCM or ChaChaPoly, SHA256.
    static let supported: [NoiseVector] = {
        guard let url = Bundle.module.url(forResource: "noise-cacophony-25519", withExtension: "json",
                                          subdirectory: "Fixtures"),
              let data = try? Data(contentsOf: url),
              let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.vectors.filter { vector in
            let parts = vector.protocol_name.split(separator: "_")
            return parts.count == 5 && parts[2] == "25519" && ["AESGCM", "ChaChaPoly"].contains(parts[3])
                && parts[4] == "SHA256"
        }
    }()

    private struct File: Decodable { let vectors: [NoiseVector] }
}

private func bytes(_ hex: String) -> [UInt8] {
    guard let bytes = bytesFromHex(hex) else { preconditionFailure("bad hex in test vector: \(hex)") }
    return bytes
}

private func keyPair(_ hex: String?) throws -> X25519KeyPair? {
    try hex.map { try X25519KeyPair(privateKey: SecureBytes(copying: bytes($0))) }
}

private func psks(_ hexes: [String]?) -> [SecureBytes] {
    (hexes ?? []).map { SecureBytes(copying: bytes($0)) }
}

/// The cacophony vectors, run through both sides of every supported handshake.
struct NoiseVectorTests {
    @Test func cacophonyVectorsCoverEveryPatternFamilyWeUse() {
        let names = Set(NoiseVector.supported.map(\.protocol_name))
        #expect(NoiseVector.supported.count > 0)
        #expect(names.contains("Noise_IKpsk2_25519_AESGCM_SHA256"))
        #expect(names.contains("Noise_IKpsk2_25519_ChaChaPoly_SHA256"))
        // Every base and deferred pattern of the table appears in the file.
        let patterns = Set(NoiseVector.supported.compactMap { try? NoiseProtocol(name: $0.protocol_name).pattern.baseName })
        #expect(patterns == Set(NoiseHandshakePattern.supportedPatterns))
    }

    @Test(arguments: NoiseVector.supported)
    func cacophonyVectorIsReproducedByteForByte(vector: NoiseVector) throws {
        let noiseProtocol = try NoiseProtocol(name: vector.protocol_name)
        var initiator = try NoiseHandshakeState(
            protocol: noiseProtocol, initiator: true, prologue: bytes(vector.init_prologue),
            localStatic: keyPair(vector.init_static), localEphemeral: keyPair(vector.init_ephemeral),
            remoteStatic: vector.init_remote_static.map(bytes), psks: psks(vector.init_psks))
        var responder = try NoiseHandshakeState(
            protocol: noiseProtocol, initiator: false, prologue: bytes(vector.resp_prologue),
            localStatic: keyPair(vector.resp_static), localEphemeral: keyPair(vector.resp_ephemeral),
            remoteStatic: vector.resp_remote_static.map(bytes), psks: psks(vector.resp_psks))

        // Handshake messages alternate, starting with the initiator.
        var index = 0
        while !initiator.isComplete {
            let message = vector.messages[index]
            let fromInitiator = index % 2 == 0
            let ciphertext = fromInitiator
                ? try initiator.writeMessage(payload: bytes(message.payload))
                : try responder.writeMessage(payload: bytes(message.payload))
            #expect(ciphertext == bytes(message.ciphertext), "handshake message \(index)")
            let payload = fromInitiator ? try responder.readMessage(ciphertext) : try initiator.readMessage(ciphertext)
            #expect(payload == bytes(message.payload), "handshake message \(index)")
            index += 1
        }
        #expect(responder.isComplete)
        if let expected = vector.handshake_hash {
            #expect(initiator.handshakeHash == bytes(expected))
            #expect(responder.handshakeHash == bytes(expected))
        }
        #expect(initiator.remoteStaticPublicKey == (try keyPair(vector.resp_static))?.publicKey)
        if vector.init_static != nil {
            #expect(responder.remoteStaticPublicKey == (try keyPair(vector.init_static))?.publicKey)
        }

        // Transport: one-way patterns send everything initiator -> responder; interactive ones
        // keep alternating where the handshake left off.
        var (initiatorSend, initiatorReceive) = try initiator.split()
        var (responderReceive, responderSend) = try responder.split()
        let oneWay = noiseProtocol.pattern.isOneWay
        for position in index..<vector.messages.count {
            let message = vector.messages[position]
            let fromInitiator = oneWay || position % 2 == 0
            let ciphertext = fromInitiator
                ? try initiatorSend.encryptWithAd([], plaintext: bytes(message.payload))
                : try responderSend.encryptWithAd([], plaintext: bytes(message.payload))
            #expect(ciphertext == bytes(message.ciphertext), "transport message \(position)")
            let payload = fromInitiator
                ? try responderReceive.decryptWithAd([], ciphertext: ciphertext)
                : try initiatorReceive.decryptWithAd([], ciphertext: ciphertext)
            #expect(payload == bytes(message.payload), "transport message \(position)")
        }
    }
}
