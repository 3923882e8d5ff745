import ClawCrypto
import ClawReactor

/// The server side of the channel as a pure state machine: datagrams and time in, datagrams to
/// send and events out. It never replies to anything that does not authenticate.
///
/// Handshakes are Noise IKpsk2 (the server is the responder). An initiation is looked at only if
/// its mac1 verifies: under the server's public key for paired devices, or under a key derived
/// from a pairing secret for a new device. A device found by pairing is registered only when its
/// first transport packet authenticates under the new keys (key confirmation).
public final class ServerChannel {
    public enum Action {
        /// Send these bytes to this address.
        case send([UInt8], to: SocketAddress)
        /// Application data arrived from a device.
        case deliver(device: UInt64, data: [UInt8])
        /// A new device completed pairing: persist it (setting `pairedAt`); the pairing secrets
        /// are now spent.
        case devicePaired(DeviceRecord)
        /// A session became usable (after a handshake) or moved to a new address.
        case sessionEstablished(device: UInt64, address: SocketAddress)
        case sessionRoamed(device: UInt64, from: SocketAddress, to: SocketAddress)
        case sessionClosed(device: UInt64, reason: String)
        /// A paired device sent the authenticated "compromised" command. The machine has already
        /// zeroed every key and revoked every device; the daemon must persist the empty device
        /// list and write a new security file.
        case compromised(by: UInt64)
    }

    /// Why datagrams were dropped; counted for `clawchatd status`.
    public struct DropCounters: Sendable {
        public var malformed = 0
        public var badMac1 = 0
        public var rateLimited = 0
        public var handshakeFailed = 0
        public var unknownDevice = 0
        public var replayedInitiation = 0
        public var unknownIndex = 0
        public var authenticationFailed = 0
        public var replayedPacket = 0
    }

    final class Session {
        let deviceID: UInt64
        var publicKey: [UInt8]
        var endpoint: SocketAddress
        var lastReceived: Instant
        var current: Keypair?
        var previous: Keypair?
        var previousExpires: Instant?
        /// Keys from a handshake whose initiator has not yet used them.
        var next: Keypair?
        /// Set while this session is a pairing that awaits key confirmation: the device to
        /// register, and the pairing secret it used (which must still be unspent then).
        var pendingPairing: (device: DeviceRecord, secret: SecureBytes)?
        /// When the first keys were confirmed, and how many handshakes replaced them since.
        var establishedAt: Instant?
        var rekeys = 0
        init(deviceID: UInt64, publicKey: [UInt8], endpoint: SocketAddress, now: Instant) {
            self.deviceID = deviceID
            self.publicKey = publicKey
            self.endpoint = endpoint
            self.lastReceived = now
        }
        var keypairs: [Keypair] { [current, previous, next].compactMap { $0 } }
    }

    public let staticKey: X25519KeyPair
    public let cipher: AEADCipher
    public var timers: ChannelTimers
    private let protocolName: NoiseProtocol
    private let mac1Key: [UInt8]
    private var devices: [[UInt8]: DeviceRecord] = [:]
    private var pairingSecrets: [(secret: SecureBytes, mac1Key: [UInt8])] = []
    private var sessions: [UInt64: Session] = [:]
    private var byIndex: [UInt32: (session: Session, keypair: Keypair)] = [:]
    private var indices = IndexAllocator()
    private var lastInitiation: [[UInt8]: UInt64] = [:]
    private var limiter: HandshakeRateLimiter
    public private(set) var drops = DropCounters()
    public private(set) var handshakesCompleted = 0

    public init(staticKey: X25519KeyPair, cipher: AEADCipher, devices: [DeviceRecord],
                timers: ChannelTimers = ChannelTimers(), limits: HandshakeLimits = HandshakeLimits()) throws {
        self.staticKey = staticKey
        self.cipher = cipher
        self.timers = timers
        self.protocolName = try NoiseProtocol(name: channelProtocolName(cipher))
        self.mac1Key = Wire.mac1Key(publicKey: staticKey.publicKey)
        self.limiter = HandshakeRateLimiter(limits: limits)
        for d in devices { self.devices[d.publicKey] = d }
    }

    // MARK: Configuration from the daemon

    /// The pairing secrets of the security files currently valid (newest first).
    public func setPairingSecrets(_ secrets: [SecureBytes]) {
        pairingSecrets = secrets.map { ($0, Wire.pairingMac1Key(serverPublicKey: staticKey.publicKey, pairingSecret: $0)) }
    }

    public var pairedDevices: [DeviceRecord] { devices.values.sorted { $0.pairedAt < $1.pairedAt } }

    /// Forgets a device and zeroes its session.
    public func revoke(deviceID: UInt64) -> [Action] {
        guard let key = devices.first(where: { $0.value.id == deviceID })?.key else { return [] }
        devices[key] = nil
        lastInitiation[key] = nil
        return closeSession(deviceID, reason: "device revoked")
    }

    /// Replaces the device list (after `clawchatd devices revoke` changed the file).
    public func reloadDevices(_ list: [DeviceRecord]) -> [Action] {
        let keep = Set(list.map(\.id))
        var actions: [Action] = []
        for id in sessions.keys where !keep.contains(id) && sessions[id]?.pendingPairing == nil {
            actions += closeSession(id, reason: "device revoked")
        }
        devices = [:]
        for d in list { devices[d.publicKey] = d }
        return actions
    }

    // MARK: Inputs

    /// Handles one datagram from `source`. `unixNanos` is not needed; time is `now`.
    public func receive(_ datagram: UnsafeRawBufferPointer, from source: SocketAddress, now: Instant) -> [Action] {
        guard let type = datagram.first else { drops.malformed += 1; return [] }
        switch PacketType(rawValue: type) {
        case .transport: return receiveTransport(datagram, from: source, now: now)
        case .initiation: return receiveInitiation(Array(datagram), from: source, now: now)
        default:
            drops.malformed += 1
            return []
        }
    }

    /// Sends application data to a device's current session; nothing if it has none.
    public func send(_ data: [UInt8], toDevice id: UInt64) -> [Action] {
        guard let s = sessions[id], let kp = s.current,
              let packet = kp.seal([InnerKind.data.rawValue] + data) else { return [] }
        return [.send(packet, to: s.endpoint)]
    }

    /// Runs the timers that are due: zeroes superseded keys, expires idle sessions.
    public func tick(now: Instant) -> [Action] {
        var actions: [Action] = []
        for s in Array(sessions.values) {
            if let exp = s.previousExpires, now >= exp {
                drop(s.previous)
                s.previous = nil
                s.previousExpires = nil
            }
            if let next = s.next, now - next.created >= timers.rekeyTimeout * 3 {
                drop(next)
                s.next = nil
                s.pendingPairing = nil   // the pairing belonged to those keys
            }
            if let cur = s.current, now - cur.created >= timers.rejectAfter {
                drop(cur)
                s.current = nil
            }
            if now - s.lastReceived >= timers.sessionTimeout || s.keypairs.isEmpty {
                actions += closeSession(s.deviceID, reason: "no valid packet for \(Int((now - s.lastReceived).seconds)) s")
            }
        }
        return actions
    }

    /// When `tick` next has something to do.
    public var nextWakeup: Instant? {
        var t: Instant?
        func consider(_ x: Instant?) { if let x, t == nil || x < t! { t = x } }
        for s in sessions.values {
            consider(s.previousExpires)
            consider(s.next.map { $0.created + timers.rekeyTimeout * 3 })
            consider(s.current.map { $0.created + timers.rejectAfter })
            consider(s.lastReceived + timers.sessionTimeout)
        }
        return t
    }

    // MARK: Status

    public struct SessionInfo: Sendable {
        public var deviceID: UInt64
        public var address: SocketAddress
        public var keysCreated: Instant?
        public var lastReceived: Instant
        public var pairing: Bool
        /// When the session's first keys were confirmed (nil while a handshake is pending).
        public var establishedAt: Instant?
        /// Handshakes that replaced the keys since (`keysCreated` is the newest one's time).
        public var rekeys: Int
    }

    public var sessionInfos: [SessionInfo] {
        sessions.values.map {
            SessionInfo(deviceID: $0.deviceID, address: $0.endpoint, keysCreated: $0.current?.created,
                        lastReceived: $0.lastReceived, pairing: $0.pendingPairing != nil,
                        establishedAt: $0.establishedAt, rekeys: $0.rekeys)
        }
    }

    /// Every keypair the machine still holds (tests check they are zeroed when dropped).
    public var liveKeypairs: [Keypair] { sessions.values.flatMap(\.keypairs) }

    // MARK: Handshake

    private func receiveInitiation(_ d: [UInt8], from source: SocketAddress, now: Instant) -> [Action] {
        guard let msg = Wire.Initiation(d) else { drops.malformed += 1; return [] }
        // mac1 first: it costs one hash, and tells a paired device from a pairing attempt.
        var pairingPSK: SecureBytes?
        if !Wire.verifyMac1(d, key: mac1Key) {
            guard let match = pairingSecrets.first(where: { Wire.verifyMac1(d, key: $0.mac1Key) }) else {
                drops.badMac1 += 1
                return []
            }
            pairingPSK = match.secret
        }
        guard limiter.allow(source: source, now: now) else { drops.rateLimited += 1; return [] }

        guard var hs = try? NoiseHandshakeState(protocol: protocolName, initiator: false, prologue: Wire.prologue,
                                                localStatic: staticKey, remoteStatic: nil, psks: []),
              let payloadBytes = try? hs.readMessage(msg.noise),
              let payload = InitiationPayload(decoding: payloadBytes),
              let remoteKey = hs.remoteStaticPublicKey else {
            drops.handshakeFailed += 1
            return []
        }
        let known = devices[remoteKey]
        if pairingPSK == nil && known == nil { drops.unknownDevice += 1; return [] }
        // A registered key never pairs again: a pairing must bring a fresh device key.
        if pairingPSK != nil && known != nil { drops.handshakeFailed += 1; return [] }
        if let last = lastInitiation[remoteKey], payload.timestamp <= last {
            drops.replayedInitiation += 1
            return []
        }

        let rekeySeconds = UInt32(clamping: timers.rekeyInterval.components.seconds)
        var responsePayload = ResponsePayload(rekeyAfterSeconds: rekeySeconds)
        var pending: (device: DeviceRecord, secret: SecureBytes)?
        let psk: SecureBytes
        if let pairingPSK {
            let newPSK = SecureBytes.random(count: 32)
            let id = UInt64(Random.uniform(UInt32.max)) << 32 | UInt64(Random.uniform(UInt32.max))
            let name = payload.deviceName.isEmpty ? "device" : sanitizedName(payload.deviceName)
            pending = (DeviceRecord(id: id, name: name, publicKey: remoteKey, psk: newPSK, pairedAt: 0), pairingPSK)
            responsePayload = ResponsePayload(rekeyAfterSeconds: rekeySeconds, deviceID: id, devicePSK: newPSK.copyToArray())
            psk = pairingPSK
        } else {
            psk = known!.psk
        }
        hs.setPSKs([psk])
        let localIndex = indices.allocate()
        guard let noise2 = try? hs.writeMessage(payload: responsePayload.encoded()),
              let (i2r, r2i) = try? hs.split() else {
            indices.release(localIndex)
            drops.handshakeFailed += 1
            return []
        }
        lastInitiation[remoteKey] = payload.timestamp
        let deviceID = pending?.device.id ?? known!.id
        let keypair = Keypair(localIndex: localIndex, remoteIndex: msg.senderIndex, send: r2i, receive: i2r, created: now)

        let session: Session
        if let existing = sessions[deviceID], existing.publicKey == remoteKey {
            session = existing
        } else {
            _ = closeSession(deviceID, reason: "replaced by a new handshake")
            session = Session(deviceID: deviceID, publicKey: remoteKey, endpoint: source, now: now)
            sessions[deviceID] = session
        }
        // The initiation authenticated the device (ss with its known key), so its address is
        // trusted; for a pairing, nothing is trusted until key confirmation.
        session.endpoint = source
        session.pendingPairing = pending
        drop(session.next)
        session.next = keypair
        byIndex[localIndex] = (session, keypair)
        let response = Wire.response(senderIndex: localIndex, receiverIndex: msg.senderIndex, noise: noise2,
                                     mac1Key: Wire.mac1Key(publicKey: remoteKey))
        return [.send(response, to: source)]
    }

    private func sanitizedName(_ name: String) -> String {
        String(name.unicodeScalars.filter { $0.properties.isAlphabetic || $0.properties.numericType != nil || "-_. ".unicodeScalars.contains($0) }
            .prefix(64).map(Character.init))
    }

    // MARK: Transport

    private func receiveTransport(_ d: UnsafeRawBufferPointer, from source: SocketAddress, now: Instant) -> [Action] {
        guard let (receiver, counter) = Wire.transportHeader(d) else { drops.malformed += 1; return [] }
        guard let (session, keypair) = byIndex[receiver] else { drops.unknownIndex += 1; return [] }
        guard let (plaintext, isNewest) = keypair.open(d, counter: counter) else {
            drops.authenticationFailed += 1
            return []
        }
        var actions: [Action] = []
        session.lastReceived = now
        if keypair === session.next {
            // First use of the new keys by the initiator: they are confirmed.
            if let old = session.current {
                drop(session.previous)
                session.previous = old
                session.previousExpires = now + timers.previousKeyGrace
            }
            session.current = keypair
            session.next = nil
            handshakesCompleted += 1
            if session.establishedAt == nil { session.establishedAt = now } else { session.rekeys += 1 }
            if let pending = session.pendingPairing {
                session.pendingPairing = nil
                // The secret must still be unspent: two holders of one file cannot both pair.
                guard pairingSecrets.contains(where: { $0.secret === pending.secret }) else {
                    return closeSession(session.deviceID, reason: "pairing secret already spent")
                }
                devices[pending.device.publicKey] = pending.device
                pairingSecrets = []
                actions.append(.devicePaired(pending.device))
                for other in Array(sessions.values) where other !== session && other.pendingPairing != nil {
                    actions += closeSession(other.deviceID, reason: "pairing secret spent by another device")
                }
            }
            actions.append(.sessionEstablished(device: session.deviceID, address: source))
        }
        // Follow the client to a new address only on a packet that authenticated under the
        // current keys and is the newest seen under them: a replayed or delayed packet (also one
        // held back from before a rekey) cannot pull the session to another address.
        if isNewest && keypair === session.current && session.endpoint != source {
            let old = session.endpoint
            session.endpoint = source
            actions.append(.sessionRoamed(device: session.deviceID, from: old, to: source))
        }
        guard let kind = plaintext.first else {
            // A keepalive: answer it, so the client can tell a live path from a dead one.
            if let kp = session.current, let p = kp.seal([]) { actions.append(.send(p, to: session.endpoint)) }
            return actions
        }
        switch InnerKind(rawValue: kind) {
        case .data:
            actions.append(.deliver(device: session.deviceID, data: Array(plaintext.dropFirst())))
        case .compromised:
            guard plaintext.count == 1, keypair === session.current, devices.values.contains(where: { $0.id == session.deviceID }) else { break }
            if let kp = session.current, let ack = kp.seal([InnerKind.compromisedAck.rawValue]) {
                actions.append(.send(ack, to: session.endpoint))
            }
            actions += destroyEverything()
            actions.append(.compromised(by: session.deviceID))
        default:
            break
        }
        return actions
    }

    /// Zeroes every key of every session and forgets every device and pairing secret.
    public func destroyEverything() -> [Action] {
        var actions: [Action] = []
        for id in Array(sessions.keys) { actions += closeSession(id, reason: "compromised: all keys destroyed") }
        devices = [:]
        lastInitiation = [:]
        pairingSecrets = []
        return actions
    }

    private func closeSession(_ id: UInt64, reason: String) -> [Action] {
        guard let s = sessions.removeValue(forKey: id) else { return [] }
        for kp in s.keypairs { drop(kp) }
        s.current = nil; s.previous = nil; s.next = nil
        return [.sessionClosed(device: id, reason: reason)]
    }

    private func drop(_ kp: Keypair?) {
        guard let kp else { return }
        kp.zeroize()
        byIndex[kp.localIndex] = nil
        indices.release(kp.localIndex)
    }
}
