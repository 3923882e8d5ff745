import ClawChannel
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// The devices of the `footprint` scenario, made without pairing: the server's key and the
/// device list are written the way the daemon stores them (`ServerKeyStore`, `DeviceStore`),
/// and each device's credentials are kept here, as its identity file would hold them.
struct BenchDevices {
    let serverKeyFile: [UInt8]
    let records: [DeviceRecord]
    let credentials: [ClientCredentials]

    /// `count` devices for a new server key; `scratch` is a directory to create the key in.
    init(count: Int, cipher: AEADCipher, scratch: String) throws(BenchError) {
        let keyPath = "\(scratch)/server.key"
        let server: X25519KeyPair
        do {
            server = try ServerKeyStore.loadOrCreate(keyPath)
            guard let bytes = try AtomicFile.read(keyPath) else { throw BenchError("\(keyPath) vanished") }
            serverKeyFile = bytes
        } catch { throw BenchError("cannot make the server key: \(error)") }
        var ids = Set<UInt64>()
        var records: [DeviceRecord] = []
        var credentials: [ClientCredentials] = []
        let now = MonotonicClock().unixTime
        for i in 0..<count {
            var id = UInt64.random(in: 1...UInt64.max)
            while !ids.insert(id).inserted { id = UInt64.random(in: 1...UInt64.max) }
            let key = X25519KeyPair.generate()
            let psk = SecureBytes.random(count: 32)
            let name = "bench-\(i + 1)"
            records.append(DeviceRecord(id: id, name: name, publicKey: key.publicKey, psk: psk, pairedAt: now))
            credentials.append(ClientCredentials(staticKey: key, serverPublicKey: server.publicKey, psk: psk,
                                                 mode: .paired(deviceID: id), cipher: cipher, deviceName: name))
        }
        self.records = records
        self.credentials = credentials
    }

    /// A state directory for a daemon with these devices paired.
    func writeState(_ dir: String) throws(BenchError) {
        do {
            try AtomicFile.ensureDirectory(dir, mode: 0o700)
            try AtomicFile.write(serverKeyFile, to: "\(dir)/server.key", mode: 0o600)
            try DeviceStore.save(records, to: "\(dir)/devices")
        } catch { throw BenchError("cannot write the daemon's state in \(dir): \(error)") }
    }
}

/// One paired device holding an established session, as an idle `clawchat` does: the real
/// `ClientChannel` with its timers (keepalive every 15 s), on its own UDP socket bound to its own
/// loopback address. `ClientSession` binds the wildcard address, so every session would come
/// from 127.0.0.1, and the daemon's handshake limit per source address (20 a second) would then
/// take 50 s to let 1,000 in; real devices come from many addresses.
final class HeldSession {
    let channel: ClientChannel
    let socket: UDPSocket
    let server: SocketAddress
    private let loop: EventLoop
    private var wakeup: Timer!
    /// The message connection, once `openConnection` made one.
    private var requests: RequestClient?
    private(set) var established = false
    /// Times the channel declared the server gone (it then handshakes again by itself).
    private(set) var lost = 0
    /// Keepalives the server answered: each moves the channel's round-trip time.
    private(set) var keepaliveAnswers = 0

    /// The `index`-th source address: 127.10.x.y, y in 1...250.
    static func sourceAddress(_ index: Int) -> SocketAddress {
        SocketAddress(ipv4: [127, 10, UInt8(index / 250), UInt8(index % 250 + 1)], port: 0)
    }

    init(loop: EventLoop, credentials: ClientCredentials, server: SocketAddress, index: Int) throws(BenchError) {
        self.loop = loop
        self.server = server
        do {
            channel = try ClientChannel(credentials: credentials)
            socket = try UDPSocket(loop: loop, bindTo: Self.sourceAddress(index))
        } catch { throw BenchError("cannot open client session \(index + 1): \(error)") }
        wakeup = Timer(loop: loop) { [unowned self] in
            self.perform(self.channel.tick(now: loop.clock.now, unixNanos: loop.clock.unixNanos))
        }
        socket.onDatagram = { [unowned self] bytes, from in
            guard from == self.server else { return }
            let rtt = self.channel.rtt
            self.perform(self.channel.receive(bytes, now: self.loop.clock.now))
            if self.established, self.channel.rtt != rtt { self.keepaliveAnswers += 1 }
        }
    }

    func start() {
        perform(channel.start(now: loop.clock.now, unixNanos: loop.clock.unixNanos))
    }

    func resetCounters() {
        lost = 0
        keepaliveAnswers = 0
    }

    /// Opens a message connection with one `echo` request, as a first chat would; `done` gets
    /// whether the daemon answered it.
    func openConnection(done: @escaping (Bool) -> Void) {
        let client = RequestClient(loop: loop) { [unowned self] packets in
            let now = self.loop.clock.now
            for p in packets { self.perform(self.channel.send(p, now: now, expectReply: !MessageConnection.isAckOnly(p))) }
        }
        requests = client
        client.request("echo", body: Array("footprint".utf8)).onDone = { outcome in
            if case .success = outcome { done(true) } else { done(false) }
        }
    }

    private func perform(_ actions: [ClientChannel.Action]) {
        for action in actions {
            switch action {
            case .send(let bytes): socket.send(bytes, to: server)
            case .deliver(let data): requests?.receive(data)
            case .established: established = true
            case .connectionLost: lost += 1
            default: break
            }
        }
        if let t = channel.nextWakeup {
            wakeup.schedule(after: max(t - loop.clock.now, .milliseconds(1)))
        } else {
            wakeup.cancel()
        }
    }
}

/// Raises this process's soft limit on open files to at least `needed` (up to the hard limit).
func ensureOpenFiles(_ needed: Int) throws(BenchError) {
    var limit = rlimit()
    guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        throw BenchError("getrlimit(RLIMIT_NOFILE): \(errorText())")
    }
    guard limit.rlim_cur < rlim_t(needed) else { return }
    guard limit.rlim_max >= rlim_t(needed) else {
        throw BenchError("\(needed) open files are needed, the hard limit is \(limit.rlim_max); raise it (ulimit -Hn) or pass a smaller --sessions")
    }
    limit.rlim_cur = rlim_t(needed)
    guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
        throw BenchError("setrlimit(RLIMIT_NOFILE, \(needed)): \(errorText())")
    }
}
