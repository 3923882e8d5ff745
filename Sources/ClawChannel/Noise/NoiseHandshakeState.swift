import ClawCrypto

/// A Noise HandshakeState (rev 34, section 5.3), driven token by token from the pattern table.
///
/// Pure and I/O-free: `writeMessage` returns bytes to send, `readMessage` takes bytes received.
/// Both are transactional: when they throw, the state is exactly as before the call, so a bad
/// or forged datagram can be dropped while the handshake waits for the genuine one.
///
/// PSKs may be given at init or later with `setPSKs(_:)`, any time before their `psk` token
/// is processed. An IKpsk2 responder relies on this: its `psk` token ends message 2, so it
/// reads message 1 without a PSK, learns the initiator's static key from it
/// (`remoteStaticPublicKey`), picks that device's PSK, sets it, then writes message 2.
/// Reaching a `psk` token with no PSK left is `NoiseError.missingPSK`.
public struct NoiseHandshakeState {
    /// The protocol being run.
    public let noiseProtocol: NoiseProtocol
    /// Whether we started the handshake.
    public let isInitiator: Bool
    private var symmetric: NoiseSymmetricState
    private var localStatic: X25519KeyPair?
    private var localEphemeral: X25519KeyPair?
    private var remoteStatic: [UInt8]?
    private var remoteEphemeral: [UInt8]?
    private var pendingPSKs: [SecureBytes]
    private var messageIndex = 0

    /// Initialize (section 5.3): mixes the prologue and the pre-message keys.
    /// - Parameters:
    ///   - localEphemeral: normally nil (a fresh key is generated at the `e` token); test
    ///     vectors inject a fixed one.
    ///   - remoteStatic: the peer's static public key when the pattern has it as a pre-message.
    ///   - psks: PSKs in the order their `psk` tokens occur; more may be supplied later.
    public init(
        protocol noiseProtocol: NoiseProtocol,
        initiator: Bool,
        prologue: [UInt8] = [],
        localStatic: X25519KeyPair? = nil,
        localEphemeral: X25519KeyPair? = nil,
        remoteStatic: [UInt8]? = nil,
        psks: [SecureBytes] = []
    ) throws(NoiseError) {
        guard noiseProtocol.cipher.isAvailable else { throw .cipherUnavailable(noiseProtocol.cipherName) }
        if let remoteStatic, remoteStatic.count != X25519.keyLength {
            throw .invalidPublicKeyLength(remoteStatic.count)
        }
        try Self.validate(psks)
        self.noiseProtocol = noiseProtocol
        self.isInitiator = initiator
        self.localStatic = localStatic
        self.localEphemeral = localEphemeral
        self.remoteStatic = remoteStatic
        self.pendingPSKs = psks
        symmetric = NoiseSymmetricState(protocolName: noiseProtocol.name, cipher: noiseProtocol.cipher,
                                        hash: noiseProtocol.hash)
        symmetric.mixHash(prologue)

        let pattern = noiseProtocol.pattern
        let ourMessages = pattern.messages.enumerated().filter { ($0.offset % 2 == 0) == initiator }
        let ourPreMessage = initiator ? pattern.initiatorPreMessage : pattern.responderPreMessage
        if localStatic == nil, ourPreMessage.contains(.s) || ourMessages.contains(where: { $0.element.contains(.s) }) {
            throw .missingLocalStaticKey
        }
        // The initiator's pre-message keys are hashed first, then the responder's.
        for (preMessage, isOurs) in [(pattern.initiatorPreMessage, initiator), (pattern.responderPreMessage, !initiator)] {
            for token in preMessage {
                guard token == .s else { throw .unsupportedPattern(pattern.name) }
                guard let key = isOurs ? localStatic?.publicKey : remoteStatic else { throw .missingRemoteStaticKey }
                symmetric.mixHash(key)
            }
        }
    }

    /// Whether all handshake messages have been written or read.
    public var isComplete: Bool { messageIndex == noiseProtocol.pattern.messages.count }

    /// Whether the next handshake message is ours to write (false once complete).
    public var isMyTurnToWrite: Bool { !isComplete && (messageIndex % 2 == 0) == isInitiator }

    /// `h`: after completion, a unique identifier for this handshake (channel binding).
    public var handshakeHash: [UInt8] { symmetric.handshakeHash }

    /// The peer's static public key: given at init, or learned from a handshake message.
    public var remoteStaticPublicKey: [UInt8]? { remoteStatic }

    /// Replaces the queue of PSKs not yet consumed (in `psk` token order). Their length is
    /// checked when they are used: a PSK that is not 32 bytes fails that message with
    /// `invalidPSKLength`.
    public mutating func setPSKs(_ psks: [SecureBytes]) {
        pendingPSKs = psks
    }

    /// WriteMessage: processes our next message pattern and appends the encrypted `payload`.
    public mutating func writeMessage(payload: [UInt8] = []) throws(NoiseError) -> [UInt8] {
        guard !isComplete else { throw .handshakeAlreadyComplete }
        guard isMyTurnToWrite else { throw .wrongTurn }
        var next = self
        var message: [UInt8] = []
        for token in noiseProtocol.pattern.messages[messageIndex] {
            switch token {
            case .e:
                let ephemeral = next.localEphemeral ?? X25519KeyPair.generate()
                next.localEphemeral = ephemeral
                message += ephemeral.publicKey
                next.symmetric.mixHash(ephemeral.publicKey)
                if noiseProtocol.pattern.usesPSK { next.symmetric.mixKey(ephemeral.publicKey) }
            case .s:
                guard let localStatic = next.localStatic else { throw .missingLocalStaticKey }
                message += try next.symmetric.encryptAndHash(localStatic.publicKey)
            case .ee, .es, .se, .ss:
                try next.mixDH(token)
            case .psk:
                next.symmetric.mixKeyAndHash(try next.takePSK())
            }
        }
        message += try next.symmetric.encryptAndHash(payload)
        guard message.count <= NoiseProtocol.maxMessageLength else { throw .messageTooLong(message.count) }
        next.messageIndex += 1
        self = next
        return message
    }

    /// ReadMessage: processes the peer's next message and returns its decrypted payload.
    /// Any malformed, truncated or forged input throws and leaves the state unchanged.
    public mutating func readMessage(_ message: [UInt8]) throws(NoiseError) -> [UInt8] {
        guard message.count <= NoiseProtocol.maxMessageLength else { throw .messageTooLong(message.count) }
        guard !isComplete else { throw .handshakeAlreadyComplete }
        guard !isMyTurnToWrite else { throw .wrongTurn }
        var next = self
        var offset = 0
        func take(_ count: Int) throws(NoiseError) -> [UInt8] {
            guard message.count - offset >= count else { throw .messageTruncated(message.count) }
            defer { offset += count }
            return Array(message[offset..<offset + count])
        }
        for token in noiseProtocol.pattern.messages[messageIndex] {
            switch token {
            case .e:
                let ephemeral = try take(X25519.keyLength)
                next.remoteEphemeral = ephemeral
                next.symmetric.mixHash(ephemeral)
                if noiseProtocol.pattern.usesPSK { next.symmetric.mixKey(ephemeral) }
            case .s:
                let length = X25519.keyLength + (next.symmetric.cipherState.hasKey ? AEADCipher.tagLength : 0)
                next.remoteStatic = try next.symmetric.decryptAndHash(try take(length))
            case .ee, .es, .se, .ss:
                try next.mixDH(token)
            case .psk:
                next.symmetric.mixKeyAndHash(try next.takePSK())
            }
        }
        if next.symmetric.cipherState.hasKey, message.count - offset < AEADCipher.tagLength {
            throw .messageTruncated(message.count)
        }
        let payload = try next.symmetric.decryptAndHash(Array(message[offset...]))
        next.messageIndex += 1
        self = next
        return payload
    }

    /// Split: the transport cipher states, once the handshake is complete. In one-way
    /// patterns only `initiatorToResponder` is used.
    public func split() throws(NoiseError) -> (initiatorToResponder: NoiseCipherState, responderToInitiator: NoiseCipherState) {
        guard isComplete else { throw .handshakeNotComplete }
        return symmetric.split()
    }

    /// Performs the DH a token names, from our side, and mixes the result into the key.
    private mutating func mixDH(_ token: NoiseToken) throws(NoiseError) {
        // es is DH(initiator's e, responder's s); se is DH(initiator's s, responder's e).
        let local: X25519KeyPair?
        let remote: [UInt8]?
        switch token {
        case .ee: (local, remote) = (localEphemeral, remoteEphemeral)
        case .es: (local, remote) = isInitiator ? (localEphemeral, remoteStatic) : (localStatic, remoteEphemeral)
        case .se: (local, remote) = isInitiator ? (localStatic, remoteEphemeral) : (localEphemeral, remoteStatic)
        case .ss: (local, remote) = (localStatic, remoteStatic)
        case .e, .s, .psk: preconditionFailure("\(token) is not a DH token")
        }
        // Ephemerals always precede the DHs that use them in valid patterns, so a missing key
        // here is a static one.
        guard let local else { throw .missingLocalStaticKey }
        guard let remote else { throw .missingRemoteStaticKey }
        let secret = try noiseCrypto { () throws(CryptoError) -> SecureBytes in
            try X25519.sharedSecret(privateKey: local.privateKey, publicKey: remote)
        }
        symmetric.mixKey(secret)
    }

    private mutating func takePSK() throws(NoiseError) -> SecureBytes {
        guard !pendingPSKs.isEmpty else { throw .missingPSK }
        let psk = pendingPSKs.removeFirst()
        try Self.validate([psk])
        return psk
    }

    private static func validate(_ psks: [SecureBytes]) throws(NoiseError) {
        if let bad = psks.first(where: { $0.count != 32 }) { throw .invalidPSKLength(bad.count) }
    }
}
