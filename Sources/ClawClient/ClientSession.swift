import ClawChannel
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// The client's reactor glue: one UDP socket towards the server, the `ClientChannel` machine, one
/// wake-up timer. When the server stops answering, the session moves to a fresh socket (a new
/// source port escapes a dead NAT mapping, as mosh does) and tries the next server address.
public final class ClientSession {
    public let loop: EventLoop
    public private(set) var socket: UDPSocket
    public let channel: ClientChannel
    public private(set) var servers: [SocketAddress]
    private var serverIndex = 0
    /// The server's port rotation, if it has one: the port to use is computed from the clock, and
    /// the server's `port-rotated` pushes move the session at once.
    public private(set) var rotation: PortRotation?
    private var candidateIndex = 0
    /// The server told us its rotation settings (save them with the identity).
    public var onRotation: (PortRotation) -> Void = { _ in }
    /// Pushes for the application (the session keeps the rotation ones for itself).
    public var onPush: (Message) -> Void = { _ in }
    private var wakeup: Timer!
    private let log: Logger
    /// Requests and pushes: the message layer over the reliable transport (PROTOCOL.md 10).
    public private(set) var requests: RequestClient!
    /// Channel events: established, paired, connection lost, compromised.
    public var onEvent: (ClientChannel.Action) -> Void = { _ in }

    public var server: SocketAddress { servers[serverIndex] }

    public init(loop: EventLoop, credentials: ClientCredentials, servers: [SocketAddress],
                timers: ChannelTimers = ChannelTimers(), rotation: PortRotation? = nil,
                log: Logger = Logger("clawchat", minimum: .warning)) throws {
        precondition(!servers.isEmpty, "a client needs at least one server address")
        self.loop = loop
        self.rotation = rotation
        let port = rotation?.port(at: loop.clock.unixTime)
        self.servers = port.map { p in servers.map { $0.withPort(p) } } ?? servers
        self.log = log
        channel = try ClientChannel(credentials: credentials, timers: timers)
        socket = try Self.openSocket(loop: loop, towards: self.servers[0])
        wakeup = Timer(loop: loop) { [unowned self] in
            self.perform(self.channel.tick(now: loop.clock.now, unixNanos: self.unixNanos))
        }
        attach(socket)
        requests = RequestClient(loop: loop) { [unowned self] packets in
            let now = self.loop.clock.now
            for p in packets { self.perform(self.channel.send(p, now: now, expectReply: !MessageConnection.isAckOnly(p))) }
            // Out now rather than at the end of the loop pass: a cancel just before the
            // application stops the loop must still leave.
            self.socket.flush()
        }
        requests.onPush = { [unowned self] m in self.pushed(m) }
    }

    private static func openSocket(loop: EventLoop, towards server: SocketAddress) throws(ReactorError) -> UDPSocket {
        let s = try UDPSocket(loop: loop, bindTo: .any(server.family))
        s.setBufferSizes(receive: 4 << 20, send: 4 << 20)
        return s
    }

    private func attach(_ s: UDPSocket) {
        s.onDatagram = { [unowned self] bytes, from in
            guard self.accepts(from) else { return }   // only the server speaks to us
            self.perform(self.channel.receive(bytes, now: self.loop.clock.now))
        }
    }

    private var unixNanos: UInt64 { loop.clock.unixNanos }

    /// The server's address, or with port rotation any port of its range on the same host (the
    /// channel authenticates every datagram; this only keeps junk out cheaply).
    private func accepts(_ from: SocketAddress) -> Bool {
        if from == server { return true }
        guard let r = rotation else { return false }
        return r.range.contains(from.port) && from.withPort(server.port) == server
    }

    private func pushed(_ m: Message) {
        switch m.method {
        case "rotation":
            let p = m.params
            guard let secret = p["secret"].flatMap({ Base64.decode($0) }), let low = p["low"].flatMap({ UInt16($0) }),
                  let high = p["high"].flatMap({ UInt16($0) }), low <= high,
                  let period = p["period"].flatMap({ Int64($0) }), let grace = p["grace"].flatMap({ Int64($0) }),
                  let r = try? PortRotation(secret: secret, range: low...high, period: period, grace: grace) else {
                log.warning("ignored a malformed port rotation announcement")
                return
            }
            let changed = rotation != r
            rotation = r
            if changed { onRotation(r) }
            if let port = p["port"].flatMap({ UInt16($0) }), port != server.port { move(to: port) }
        case "port-rotated":
            if let port = m.params["port"].flatMap({ UInt16($0) }), rotation?.range.contains(port) == true { move(to: port) }
        default:
            onPush(m)
        }
    }

    /// Sends to `port` from now on (same host, same socket, same session): the server answers
    /// from there too, and the old port closes after its grace period.
    public func move(to port: UInt16) {
        guard port != server.port else { return }
        log.info("server moved to port \(port)")
        servers = servers.map { $0.withPort(port) }
    }

    public func start() {
        perform(channel.start(now: loop.clock.now, unixNanos: unixNanos))
    }

    /// Sends a request; its callbacks report the answer.
    @discardableResult
    public func request(_ method: String, params: [String: String] = [:], body: [UInt8] = [],
                        finish: Bool = true) -> OutgoingRequest {
        requests.request(method, params: params, body: body, finish: finish)
    }

    /// Sends raw channel payload (the diagnostic echo of `clawchat-bench`).
    public func sendRaw(_ payload: [UInt8]) {
        perform(channel.send(payload, now: loop.clock.now))
    }

    /// Raw payloads that are not for the message connection (diagnostic echo replies).
    public var onRawPayload: ([UInt8]) -> Void = { _ in }

    /// Sends the compromised command; `onEvent` reports the outcome.
    public func sendCompromised() {
        perform(channel.sendCompromised(now: loop.clock.now))
    }

    /// Moves to a new socket (new source port). The session continues: the server follows the
    /// first authenticated packet from the new address.
    public func rebind() throws(ReactorError) {
        let fresh = try Self.openSocket(loop: loop, towards: server)
        attach(fresh)
        socket = fresh
    }

    private func perform(_ actions: [ClientChannel.Action]) {
        for action in actions {
            switch action {
            case .send(let bytes):
                socket.enqueue(bytes, to: server)
            case .deliver(let data):
                if let (_, flags) = MessageConnection.header(of: data), flags & MessageConnection.flagEcho != 0 {
                    onRawPayload(data)
                } else {
                    requests.receive(data)
                }
            case .connectionLost(let reason):
                log.info("connection lost (\(reason)); reconnecting")
                if let r = rotation {
                    // Try the ports the clock says are open, the current epoch's first.
                    let candidates = r.candidates(at: loop.clock.unixTime)
                    let port = candidates[candidateIndex % candidates.count]
                    candidateIndex += 1
                    servers = servers.map { $0.withPort(port) }
                }
                serverIndex = (serverIndex + 1) % servers.count
                do { try rebind() } catch { log.warning("cannot open a new socket: \(error)") }
                onEvent(action)
            default:
                onEvent(action)
            }
        }
        if let t = channel.nextWakeup {
            wakeup.schedule(after: max(t - loop.clock.now, .milliseconds(1)))
        } else {
            wakeup.cancel()
        }
    }
}

/// Where the client keeps its identity: `$CLAWCHAT_CONFIG_DIR`, else `~/.config/clawchat`.
public func defaultIdentityPath() -> String {
    if let dir = getenv("CLAWCHAT_CONFIG_DIR").map({ String(cString: $0) }), !dir.isEmpty { return "\(dir)/identity" }
    let home = getenv("HOME").map { String(cString: $0) } ?? "."
    return "\(ClientIdentity.defaultDirectory(home: home))/identity"
}

/// Pairs this device using a security file: handshake with the pairing secret, key confirmation,
/// then the identity is written. Runs the loop until done or `timeout`.
public enum Pairing {
    public enum Failure: Error, CustomStringConvertible {
        case file(SecurityFileError)
        case noAnswer(SocketAddress, Duration)
        case storage(StoreError)
        case network(String)
        public var description: String {
            switch self {
            case .file(let e): return e.description
            case .noAnswer(let a, let t):
                return "no answer from \(a) within \(Int(t.seconds)) s: is clawchatd running and the port open? (the file may also be spent already)"
            case .storage(let e): return "cannot save the identity: \(e)"
            case .network(let e): return e
            }
        }
    }

    public static func run(fileBytes: [UInt8], bootstrapKey: BootstrapKey, deviceName: String, identityPath: String,
                           loop: EventLoop, timeout: Duration = .seconds(20)) throws(Failure) -> ClientIdentity {
        let file: SecurityFile
        do { file = try SecurityFile.open(fileBytes, with: bootstrapKey, now: loop.clock.unixTime) } catch { throw .file(error) }
        let key = X25519KeyPair.generate()
        let creds = ClientCredentials(staticKey: key, serverPublicKey: file.serverPublicKey, psk: file.pairingSecret,
                                      mode: .pairing, cipher: file.cipher, deviceName: deviceName)
        let session: ClientSession
        do { session = try ClientSession(loop: loop, credentials: creds, servers: file.endpoints) } catch {
            throw .network("\(error)")
        }
        var result: (UInt64, SecureBytes)?
        session.onEvent = { if case .paired(let id, let psk) = $0 { result = (id, psk) } }
        session.start()
        loop.run(until: timeout) { result != nil }
        guard let (id, psk) = result else { throw .noAnswer(session.server, timeout) }
        let identity = ClientIdentity(deviceID: id, deviceName: deviceName, staticKey: key,
                                      serverPublicKey: file.serverPublicKey, psk: psk, cipher: file.cipher,
                                      servers: file.endpoints)
        do { try identity.save(to: identityPath) } catch { throw .storage(error) }
        return identity
    }
}
