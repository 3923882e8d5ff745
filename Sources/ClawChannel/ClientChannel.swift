import ClawCrypto
import ClawReactor

/// What a client needs to reach its server: its own static key, the server's, and the
/// pre-shared key (the pairing secret while pairing, the device's own key afterwards).
public struct ClientCredentials {
    public enum Mode: Equatable, Sendable {
        /// First contact, with the pairing secret of a security file.
        case pairing
        /// A paired device with its own pre-shared key.
        case paired(deviceID: UInt64)
    }
    public var staticKey: X25519KeyPair
    public var serverPublicKey: [UInt8]
    public var psk: SecureBytes
    public var mode: Mode
    public var cipher: AEADCipher
    public var deviceName: String

    public init(staticKey: X25519KeyPair, serverPublicKey: [UInt8], psk: SecureBytes, mode: Mode,
                cipher: AEADCipher, deviceName: String) {
        self.staticKey = staticKey
        self.serverPublicKey = serverPublicKey
        self.psk = psk
        self.mode = mode
        self.cipher = cipher
        self.deviceName = deviceName
    }
}

/// The client side of the channel as a pure state machine. The client always initiates: it
/// handshakes at start, rekeys every `rekeyInterval`, sends keepalives, and re-handshakes by itself
/// when the server stops answering (network change, sleep, daemon restart).
public final class ClientChannel {
    public enum Action {
        /// Send these bytes to the server.
        case send([UInt8])
        /// Application data from the server.
        case deliver([UInt8])
        /// A handshake completed and its keys are confirmed by an answer from the server.
        case established
        /// Pairing completed: store this identity; the security file is spent.
        case paired(deviceID: UInt64, psk: SecureBytes)
        /// The server confirmed the compromised command; all keys are already zeroed.
        case compromisedConfirmed
        /// The server never confirmed the compromised command; the local keys are destroyed anyway.
        case compromisedUnconfirmed
        /// The server stopped answering; the machine is trying to reconnect.
        case connectionLost(reason: String)
    }

    public enum State: Equatable, Sendable {
        case idle
        case connecting
        case connected
        /// After `/compromised`: nothing more is sent, every key is gone.
        case destroyed
    }

    public private(set) var credentials: ClientCredentials
    public var timers: ChannelTimers
    public private(set) var state: State = .idle
    /// Round-trip time of the last keepalive or handshake, for the status line.
    public private(set) var rtt: Duration?
    public private(set) var handshakesCompleted = 0

    private let protocolName: NoiseProtocol
    private var handshake: (state: NoiseHandshakeState, index: UInt32, sentAt: Instant)?
    private var handshakeDeadline: Instant?
    private var firstAttempt: Instant?
    private var current: Keypair?
    private var previous: Keypair?
    private var previousExpires: Instant?
    /// Keys not yet confirmed by an answer under them (a new handshake's, until the server answers).
    private var unconfirmed = false
    private var pendingPairing: (id: UInt64, psk: SecureBytes)?
    private var lastTimestamp: UInt64 = 0
    private var lastSent: Instant?
    private var awaitingReplySince: Instant?
    private var keepaliveSentAt: Instant?
    private var silentRounds = 0
    private var compromisedDeadline: Instant?
    private var compromisedResend: Instant?
    private var queue: [[UInt8]] = []
    static let maxQueued = 1024
    private var indices = IndexAllocator()
    private var jitter: () -> Duration

    public init(credentials: ClientCredentials, timers: ChannelTimers = ChannelTimers(),
                jitter: (() -> Duration)? = nil) throws {
        self.credentials = credentials
        self.timers = timers
        self.protocolName = try NoiseProtocol(name: channelProtocolName(credentials.cipher))
        let bound = timers.handshakeJitter.nanoseconds
        self.jitter = jitter ?? { .nanoseconds(Int64(Random.uniform(UInt32(clamping: max(bound, 1))))) }
    }

    // MARK: Inputs

    /// Starts the first handshake. `unixNanos` feeds the initiation timestamp.
    public func start(now: Instant, unixNanos: UInt64) -> [Action] {
        guard state == .idle else { return [] }
        state = .connecting
        firstAttempt = now
        return initiate(now: now, unixNanos: unixNanos)
    }

    /// Queues or sends application data. Data sent before the channel is up waits (bounded).
    /// `expectReply: false` for data the server will not answer (transport acknowledgements), so
    /// that its silence is not taken for a dead path.
    public func send(_ data: [UInt8], now: Instant, expectReply: Bool = true) -> [Action] {
        guard state != .destroyed else { return [] }
        // Unconfirmed keys may carry data: the server takes their first use as confirmation.
        guard let kp = current else {
            if queue.count < Self.maxQueued { queue.append(data) }
            return []
        }
        return sealAndSend([InnerKind.data.rawValue] + data, with: kp, now: now, expectReply: expectReply)
    }

    /// Sends the authenticated "compromised" command and destroys the local keys once the
    /// server confirms (or after `replyTimeout` × 3 without an answer, since the user wants them gone).
    public func sendCompromised(now: Instant) -> [Action] {
        guard let kp = current else { return destroy() + [.compromisedUnconfirmed] }
        compromisedDeadline = now + timers.replyTimeout * 3
        compromisedResend = now + timers.replyTimeout / 5
        return sealAndSend([InnerKind.compromised.rawValue], with: kp, now: now, expectReply: true)
    }

    public func receive(_ datagram: UnsafeRawBufferPointer, now: Instant) -> [Action] {
        guard state != .destroyed, let type = datagram.first else { return [] }
        switch PacketType(rawValue: type) {
        case .response: return receiveResponse(Array(datagram), now: now)
        case .transport: return receiveTransport(datagram, now: now)
        default: return []
        }
    }

    /// Runs what is due: handshake retries, keepalives, rekeys, dead-path detection.
    public func tick(now: Instant, unixNanos: UInt64) -> [Action] {
        var actions: [Action] = []
        if state == .destroyed { return [] }
        if let d = compromisedDeadline, now >= d {
            // No confirmation: the server may already have acted and lost its answer. The user
            // asked for the keys to be destroyed, so destroy them anyway.
            return destroy() + [.compromisedUnconfirmed]
        }
        if let r = compromisedResend, now >= r, let kp = current {
            // The command must not be lost with one datagram: repeat it until the ack. A repeat
            // after the server acted decrypts under nothing there and is ignored.
            compromisedResend = now + timers.replyTimeout / 5
            actions += sealAndSend([InnerKind.compromised.rawValue], with: kp, now: now, expectReply: true)
        }
        if let exp = previousExpires, now >= exp {
            previous?.zeroize()
            previous = nil
            previousExpires = nil
        }
        if let d = handshakeDeadline, now >= d {
            actions += initiate(now: now, unixNanos: unixNanos)
        }
        if let since = awaitingReplySince, now - since >= timers.replyTimeout, handshake == nil {
            silentRounds += 1
            awaitingReplySince = nil
            if silentRounds >= 2 || unconfirmed {
                // Two probes went unanswered: the path, the NAT mapping or the server is gone.
                if state == .connected { actions.append(.connectionLost(reason: "no answer from the server for \(Int((timers.replyTimeout * 2).seconds)) s")) }
                state = .connecting
                firstAttempt = now
                actions += initiate(now: now, unixNanos: unixNanos)
            } else if let kp = current {
                actions += sealAndSend([], with: kp, now: now, expectReply: true)
            }
        }
        if let kp = current, handshake == nil, now - kp.created >= timers.rekeyInterval {
            firstAttempt = now
            actions += initiate(now: now, unixNanos: unixNanos)
        }
        if let kp = current, let last = lastSent, now - last >= timers.keepaliveInterval, awaitingReplySince == nil {
            actions += sealAndSend([], with: kp, now: now, expectReply: true)
        }
        if let kp = current, now - kp.created >= timers.rejectAfter {
            kp.zeroize()
            current = nil
        }
        return actions
    }

    public var nextWakeup: Instant? {
        guard state != .destroyed else { return nil }
        var t: Instant?
        func consider(_ x: Instant?) { if let x, t == nil || x < t! { t = x } }
        consider(compromisedDeadline)
        consider(compromisedResend)
        consider(previousExpires)
        consider(handshakeDeadline)
        if handshake == nil { consider(awaitingReplySince.map { $0 + timers.replyTimeout }) }
        if let kp = current {
            if handshake == nil { consider(kp.created + timers.rekeyInterval) }
            if awaitingReplySince == nil { consider(lastSent.map { $0 + timers.keepaliveInterval }) }
            consider(kp.created + timers.rejectAfter)
        }
        return t
    }

    /// Every keypair still held (tests check zeroing).
    public var liveKeypairs: [Keypair] { [current, previous].compactMap { $0 } }

    // MARK: Handshake

    private func initiate(now: Instant, unixNanos: UInt64) -> [Action] {
        if let old = handshake { indices.release(old.index) }
        lastTimestamp = max(unixNanos, lastTimestamp + 1)
        let payload = InitiationPayload(timestamp: lastTimestamp, deviceName: credentials.deviceName)
        let index = indices.allocate()
        guard var hs = try? NoiseHandshakeState(protocol: protocolName, initiator: true, prologue: Wire.prologue,
                                                localStatic: credentials.staticKey,
                                                remoteStatic: credentials.serverPublicKey,
                                                psks: [credentials.psk]),
              let noise = try? hs.writeMessage(payload: payload.encoded()) else {
            handshake = nil
            handshakeDeadline = nil
            return []
        }
        handshake = (hs, index, now)
        // Retry every rekeyTimeout during the attempt time, then back off to every 30 s.
        let persistent = firstAttempt.map { now - $0 >= timers.rekeyAttemptTime } ?? false
        handshakeDeadline = now + (persistent ? .seconds(30) : timers.rekeyTimeout) + jitter()
        let mac1Key = credentials.mode == .pairing
            ? Wire.pairingMac1Key(serverPublicKey: credentials.serverPublicKey, pairingSecret: credentials.psk)
            : Wire.mac1Key(publicKey: credentials.serverPublicKey)
        return [.send(Wire.initiation(senderIndex: index, noise: noise, mac1Key: mac1Key))]
    }

    private func receiveResponse(_ d: [UInt8], now: Instant) -> [Action] {
        guard let msg = Wire.Response(d),
              Wire.verifyMac1(d, key: Wire.mac1Key(publicKey: credentials.staticKey.publicKey)),
              let pending = handshake, msg.receiverIndex == pending.index else { return [] }
        var hs = pending.state
        let (index, sentAt) = (pending.index, pending.sentAt)
        guard let payloadBytes = try? hs.readMessage(msg.noise),
              let payload = ResponsePayload(decoding: payloadBytes),
              let (i2r, r2i) = try? hs.split() else { return [] }
        if credentials.mode == .pairing {
            guard let id = payload.deviceID, let psk = payload.devicePSK else { return [] }
            pendingPairing = (id, SecureBytes(copying: psk))
        }
        handshake = nil
        handshakeDeadline = nil
        firstAttempt = nil
        rtt = now - sentAt
        // The server decides how often keys rotate; a client may only rotate more often.
        if payload.rekeyAfterSeconds >= 10 {
            timers.rekeyInterval = min(timers.rekeyInterval, .seconds(Int64(payload.rekeyAfterSeconds)))
        }
        let kp = Keypair(localIndex: index, remoteIndex: msg.senderIndex, send: i2r, receive: r2i, created: now)
        if let old = current {
            previous?.zeroize()
            previous = old
            previousExpires = now + timers.previousKeyGrace
        }
        current = kp
        unconfirmed = true
        silentRounds = 0
        awaitingReplySince = nil
        // Use the keys at once: this keepalive confirms them to the server, whose answer confirms
        // them to us. Then anything queued while connecting goes out.
        var actions = sealAndSend([], with: kp, now: now, expectReply: true)
        for data in queue { actions += sealAndSend([InnerKind.data.rawValue] + data, with: kp, now: now, expectReply: true) }
        queue = []
        return actions
    }

    // MARK: Transport

    private func receiveTransport(_ d: UnsafeRawBufferPointer, now: Instant) -> [Action] {
        guard let (receiver, counter) = Wire.transportHeader(d) else { return [] }
        let kp: Keypair
        if let c = current, c.localIndex == receiver { kp = c }
        else if let p = previous, p.localIndex == receiver { kp = p }
        else { return [] }
        guard let (plaintext, _) = kp.open(d, counter: counter) else { return [] }
        var actions: [Action] = []
        if let sent = keepaliveSentAt, plaintext.isEmpty { rtt = now - sent; keepaliveSentAt = nil }
        awaitingReplySince = nil
        silentRounds = 0
        if kp === current && unconfirmed {
            unconfirmed = false
            handshakesCompleted += 1
            state = .connected
            if let p = pendingPairing {
                credentials.mode = .paired(deviceID: p.id)
                credentials.psk = p.psk
                pendingPairing = nil
                actions.append(.paired(deviceID: p.id, psk: p.psk))
            }
            actions.append(.established)
        }
        guard let kind = plaintext.first else { return actions }
        switch InnerKind(rawValue: kind) {
        case .data:
            actions.append(.deliver(Array(plaintext.dropFirst())))
        case .compromisedAck:
            actions += destroy()
            actions.append(.compromisedConfirmed)
        default:
            break
        }
        return actions
    }

    private func sealAndSend(_ plaintext: [UInt8], with kp: Keypair, now: Instant, expectReply: Bool) -> [Action] {
        guard let packet = kp.seal(plaintext) else { return [] }
        lastSent = now
        if plaintext.isEmpty { keepaliveSentAt = now }
        if expectReply && awaitingReplySince == nil { awaitingReplySince = now }
        return [.send(packet)]
    }

    private func destroy() -> [Action] {
        current?.zeroize()
        previous?.zeroize()
        current = nil
        previous = nil
        handshake = nil
        handshakeDeadline = nil
        compromisedDeadline = nil
        compromisedResend = nil
        credentials.psk.zeroize()
        credentials.staticKey.privateKey.zeroize()
        queue = []
        state = .destroyed
        return []
    }
}
