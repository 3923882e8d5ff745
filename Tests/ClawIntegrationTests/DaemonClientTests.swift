import ClawChannel
import ClawClient
import ClawCrypto
import ClawDaemon
import ClawReactor
import ClawTransport
import Glibc
import Testing

/// A daemon and clients in one process, on loopback, on one real event loop.
final class Fixture {
    let dir: String
    let loop: EventLoop
    let bootstrap = BootstrapKey.raw(SecureBytes.random(count: 32))
    var daemon: Daemon!
    var port: UInt16 = 0

    init() throws {
        dir = "/tmp/clawchat-it-\(getpid())-\(Random.uniform(1 << 30))"
        loop = try EventLoop()
        try startDaemon()
    }

    deinit { _ = system("rm -rf '\(dir)'") }

    func config(port: UInt16) -> DaemonConfig {
        DaemonConfig(stateDirectory: "\(dir)/state", securityDirectory: "\(dir)/state/security",
                     listen: .loopback(port: port), bootstrapKey: bootstrap)
    }

    func startDaemon() throws {
        daemon = try Daemon(loop: loop, config: config(port: port), log: Logger("test-daemon", minimum: .warning))
        port = daemon.socket.localAddress.port
        try daemon.start()
    }

    /// Simulates a daemon restart: a new daemon object on the same state directory and port.
    func restartDaemon() throws {
        daemon.stop(reason: "test restart")
        daemon = nil
        try startDaemon()
    }

    var identityPath: String { "\(dir)/client/identity" }

    func secFile() throws -> [UInt8] {
        try #require(try AtomicFile.read("\(dir)/state/security/\(SecurityFile.fileName)"))
    }

    func pair(name: String = "it", identityPath: String? = nil) throws -> ClientIdentity {
        try Pairing.run(fileBytes: try secFile(), bootstrapKey: bootstrap, deviceName: name,
                        identityPath: identityPath ?? self.identityPath, loop: loop, timeout: .seconds(5))
    }

    func connect(_ id: ClientIdentity) throws -> (ClientSession, () -> [[UInt8]]) {
        let session = try ClientSession(loop: loop, credentials: id.credentials, servers: id.servers)
        let received: [[UInt8]] = []
        var up = false
        session.onEvent = { if case .established = $0 { up = true } }
        session.start()
        #expect(loop.run(until: .seconds(5)) { up }, "the client connects")
        return (session, { received })
    }

    /// Sends a chat request through the message layer; the reply's text, or nil.
    func ask(_ session: ClientSession, _ text: String, replies: () -> [[UInt8]] = { [] }) -> String? {
        var outcome: Result<Message, RequestFailure>?
        session.request("chat", body: Array(text.utf8)).onDone = { outcome = $0 }
        guard loop.run(until: .seconds(5), condition: { outcome != nil }), case .success(let m)? = outcome else { return nil }
        return m.text
    }
}

@Suite(.serialized) struct DaemonClientTests {
    @Test func pairDisconnectRestartAndReconnectWithoutTheFile() throws {
        let f = try Fixture()
        let id = try f.pair()
        #expect(AtomicFile.mode(of: f.identityPath) == 0o600)
        #expect(AtomicFile.mode(of: "\(f.dir)/client") == 0o700)
        // The spent file is gone from the server.
        #expect(try AtomicFile.read("\(f.dir)/state/security/\(SecurityFile.fileName)") == nil)
        do {
            let (s, replies) = try f.connect(id)
            #expect(f.ask(s, "one", replies: replies) == "echo: one")
        }
        try f.restartDaemon()
        // Reconnect from the stored identity alone.
        let stored = try #require(try ClientIdentity.load(from: f.identityPath))
        let (s2, replies2) = try f.connect(stored)
        #expect(f.ask(s2, "two", replies: replies2) == "echo: two")
        #expect(f.daemon.server.pairedDevices.count == 1)
    }

    @Test func spentFileCannotPairASecondDevice() throws {
        let f = try Fixture()
        let bytes = try f.secFile()
        _ = try f.pair()
        #expect(throws: Pairing.Failure.self) {
            try Pairing.run(fileBytes: bytes, bootstrapKey: f.bootstrap, deviceName: "second",
                            identityPath: "\(f.dir)/second/identity", loop: f.loop, timeout: .seconds(2))
        }
        #expect(f.daemon.server.pairedDevices.count == 1)
    }

    @Test func clientSourcePortChangesMidSessionAndTheSessionContinues() throws {
        let f = try Fixture()
        let (s, replies) = try f.connect(try f.pair())
        #expect(f.ask(s, "before", replies: replies) == "echo: before")
        let oldPort = s.socket.localAddress.port
        let handshakes = f.daemon.server.handshakesCompleted
        try s.rebind()
        #expect(s.socket.localAddress.port != oldPort)
        #expect(f.ask(s, "after", replies: replies) == "echo: after")
        #expect(f.daemon.server.sessionInfos.first?.address.port == s.socket.localAddress.port)
        #expect(f.daemon.server.handshakesCompleted == handshakes, "no new handshake was needed")
    }

    @Test func compromisedEndToEnd() throws {
        let f = try Fixture()
        let (s, replies) = try f.connect(try f.pair())
        #expect(f.ask(s, "x", replies: replies) == "echo: x")
        let filesBefore = f.daemon.securityFilesWritten
        var confirmed = false
        s.onEvent = { if case .compromisedConfirmed = $0 { confirmed = true } }
        s.sendCompromised()
        #expect(f.loop.run(until: .seconds(5)) { confirmed })
        #expect(s.channel.state == .destroyed)
        #expect(s.channel.liveKeypairs.isEmpty)
        #expect(f.daemon.server.pairedDevices.isEmpty)
        #expect(f.daemon.server.liveKeypairs.isEmpty)
        #expect(try DeviceStore.load("\(f.dir)/state/devices").isEmpty, "revocation is persisted")
        #expect(f.daemon.securityFilesWritten == filesBefore + 1, "a new security file exists")
        // The daemon still runs and accepts a new pairing with the new file.
        let again = try f.pair(name: "fresh", identityPath: "\(f.dir)/fresh/identity")
        let (s2, replies2) = try f.connect(again)
        #expect(f.ask(s2, "alive", replies: replies2) == "echo: alive")
    }

    @Test func daemonIsSilentToGarbageWhileAClientChats() throws {
        let f = try Fixture()
        let (s, replies) = try f.connect(try f.pair())
        let prober = try UDPSocket(loop: f.loop, bindTo: .loopback())
        var heard = 0
        prober.onDatagram = { _, _ in heard += 1 }
        var g: UInt64 = 42
        for i in 0..<2_000 {
            g = g &* 6364136223846793005 &+ 1442695040888963407
            var junk = (0..<(Int(g >> 56) + 1)).map { UInt8(truncatingIfNeeded: g >> UInt64($0 % 56)) }
            junk[0] = UInt8(i % 5)   // every packet type, including the real ones
            prober.send(junk, to: f.daemon.socket.localAddress)
        }
        #expect(f.ask(s, "still here", replies: replies) == "echo: still here")
        f.loop.run(until: .milliseconds(200)) { false }
        #expect(heard == 0, "not one byte back to an unauthenticated sender")
    }
}

extension DaemonClientTests {
    @Test func revokedDeviceIsCutOffAndCannotReconnect() throws {
        let f = try Fixture()
        let id = try f.pair()
        let (s, replies) = try f.connect(id)
        #expect(f.ask(s, "a", replies: replies) == "echo: a")
        // What `clawchatd devices revoke` does: rewrite the file, then SIGHUP (reloadDevices).
        var devices = try DeviceStore.load("\(f.dir)/state/devices")
        #expect(devices.count == 1)
        devices.removeAll()
        try DeviceStore.save(devices, to: "\(f.dir)/state/devices")
        f.daemon.reloadDevices()
        #expect(f.daemon.server.sessionInfos.isEmpty, "its session is closed at once")
        #expect(f.ask(s, "b", replies: replies) == nil, "nothing is answered any more")
        let fresh = try ClientSession(loop: f.loop, credentials: id.credentials, servers: id.servers)
        var up = false
        fresh.onEvent = { if case .established = $0 { up = true } }
        fresh.start()
        #expect(!f.loop.run(until: .seconds(2)) { up }, "a new handshake gets silence")
    }
}

@Suite(.serialized) struct StunDiscoveryTests {
    /// A STUN responder on loopback that reports a fixed mapping, optionally with a wrong
    /// transaction id first.
    func discover(family: SocketAddress.Family, mapped: SocketAddress, wrongFirst: Bool) throws -> SocketAddress? {
        let loop = try EventLoop()
        let responder = try UDPSocket(loop: loop, bindTo: .loopback(family))
        responder.onDatagram = { [unowned responder] bytes, from in
            let txid = Array(bytes[8..<20])
            if wrongFirst {
                responder.send(STUN.bindingResponse(transactionID: txid.map { $0 ^ 0xFF },
                                                    mapped: try! SocketAddress(parsing: family == .v4 ? "6.6.6.6" : "::6", port: 6)), to: from)
            }
            responder.send(STUN.bindingResponse(transactionID: txid, mapped: mapped), to: from)
        }
        let socket = try UDPSocket(loop: loop, bindTo: .loopback(family))
        var result: SocketAddress??
        let d = StunDiscovery(loop: loop, socket: socket, servers: [responder.localAddress]) { result = $0 }
        socket.onDatagram = { [unowned d] b, from in _ = d.offer(b, from: from) }
        d.start()
        loop.run(until: .seconds(5)) { result != nil }
        return result ?? nil
    }

    @Test func ipv4MappedAddressIsDiscovered() throws {
        let m = try SocketAddress(parsing: "198.51.100.20:61000")
        #expect(try discover(family: .v4, mapped: m, wrongFirst: false) == m)
    }

    @Test func ipv6MappedAddressIsDiscovered() throws {
        let m = try SocketAddress(parsing: "[2001:db8:1::20]:61001")
        #expect(try discover(family: .v6, mapped: m, wrongFirst: false) == m)
    }

    @Test func responseWithAWrongTransactionIdIsIgnored() throws {
        let m = try SocketAddress(parsing: "198.51.100.21:61002")
        #expect(try discover(family: .v4, mapped: m, wrongFirst: true) == m)
    }
}
