import ClawChannel
import ClawClient
import ClawCrypto
import ClawDaemon
import ClawReactor
import ClawTransport
import Glibc
import Testing

/// Port rotation on real sockets with a short period (4 s, grace 2 s); the schedule itself is
/// tested on a fake clock in ClawChannelTests.PortRotationTests.
final class RotatingFixture {
    let dir = "/tmp/clawchat-rot-\(getpid())-\(Random.uniform(1 << 30))"
    let loop: EventLoop
    let bootstrap = BootstrapKey.raw(SecureBytes.random(count: 32))
    let daemon: Daemon
    let identity: ClientIdentity
    static let settings = RotationSettings(range: 23000...23999, period: 4, grace: 2)

    init() throws {
        loop = try EventLoop()
        var config = DaemonConfig(stateDirectory: "\(dir)/state", securityDirectory: "\(dir)/state/security",
                                  listen: .loopback(port: 0), bootstrapKey: bootstrap)
        config.rotation = Self.settings
        daemon = try Daemon(loop: loop, config: config, log: Logger("test-rotation", minimum: .warning))
        try daemon.start()
        let file = try #require(try AtomicFile.read("\(dir)/state/security/\(SecurityFile.fileName)"))
        identity = try Pairing.run(fileBytes: file, bootstrapKey: bootstrap, deviceName: "rot",
                                   identityPath: "\(dir)/client/identity", loop: loop, timeout: .seconds(5))
    }

    deinit { _ = system("rm -rf '\(dir)'") }

    func session(rotation: PortRotation? = nil, onRotation: @escaping (PortRotation) -> Void = { _ in }) throws -> (ClientSession, Bool) {
        let s = try ClientSession(loop: loop, credentials: identity.credentials, servers: identity.servers, rotation: rotation)
        s.onRotation = onRotation
        var up = false
        s.onEvent = { if case .established = $0 { up = true } }
        s.start()
        return (s, loop.run(until: .seconds(4)) { up })
    }

    func echo(_ s: ClientSession, _ text: String, timeout: Duration = .seconds(5)) -> String? {
        var answer: String?
        var done = false
        s.request("echo", body: Array(text.utf8)).onDone = { r in
            done = true
            if case .success(let m) = r { answer = m.text }
        }
        _ = loop.run(until: timeout) { done }
        return answer
    }

    func idle(_ d: Duration) { _ = loop.run(until: d) { false } }
}

@Suite(.serialized) struct PortRotationIntegrationTests {
    @Test func aConnectedClientMovesToTheNewPortWithoutLosingAMessage() throws {
        let f = try RotatingFixture()
        var learned: PortRotation?
        let (s, up) = try f.session { learned = $0 }
        #expect(up)
        var ports: [UInt16] = [s.server.port]
        var sent = 0, answered = 0
        var wrong: [String] = []
        let end = f.loop.clock.now + .seconds(11)   // at least two rotations
        while f.loop.clock.now < end {
            sent += 1
            let text = "message \(sent)"
            if let a = f.echo(s, text) { if a == text { answered += 1 } else { wrong.append(a) } }
            if ports.last != s.server.port { ports.append(s.server.port) }
            f.idle(.milliseconds(20))
        }
        print("rotation: \(answered)/\(sent) echoes answered while the daemon moved through ports \(ports)")
        #expect(learned != nil, "the daemon told the device its rotation settings")
        #expect(answered == sent && wrong.isEmpty, "every message was answered, exactly")
        #expect(ports.count >= 3, "the session followed at least two rotations: \(ports)")
        #expect(Set(f.daemon.openPorts).isSubset(of: Set(learned?.openPorts(at: f.loop.clock.unixTime) ?? [])),
                "the daemon keeps only the ports the schedule says")
        #expect(learned?.openPorts(at: f.loop.clock.unixTime).first == s.server.port)
    }

    @Test func theOldPortStopsAnsweringAfterTheGracePeriod() throws {
        let f = try RotatingFixture()
        let (s, up) = try f.session()
        #expect(up && f.echo(s, "hi") == "hi")
        let first = f.daemon.socket.localAddress.port
        _ = f.loop.run(until: .seconds(6)) { f.daemon.socket.localAddress.port != first }
        #expect(f.daemon.socket.localAddress.port != first, "the daemon rotated")
        #expect(f.daemon.openPorts.contains(first), "the old port is kept during the grace")
        f.idle(.milliseconds(2300))
        #expect(!f.daemon.openPorts.contains(first) || f.daemon.socket.localAddress.port == first, "then closed")
        // A device that insists on the old port (no rotation known) gets no session there.
        let stale = try ClientSession(loop: f.loop, credentials: f.identity.credentials,
                                      servers: [f.identity.servers[0].withPort(first)])
        var established = false
        stale.onEvent = { if case .established = $0 { established = true } }
        stale.start()
        #expect(!f.loop.run(until: .seconds(2)) { established }, "nothing answers on the old port")
    }

    @Test func aClientOfflineAcrossTwoRotationsReconnectsToTheRightPort() throws {
        let f = try RotatingFixture()
        var learned: PortRotation?
        do {
            let (s, up) = try f.session { learned = $0 }
            #expect(up && f.echo(s, "before") == "before")
        }   // the device goes away
        let rotation = try #require(learned)
        let lastPort = f.daemon.socket.localAddress.port
        f.idle(.seconds(9))   // two rotations and their grace
        #expect(f.daemon.socket.localAddress.port != lastPort || rotation.port(at: f.loop.clock.unixTime) == lastPort)
        let (back, up) = try f.session(rotation: rotation)
        #expect(up, "the device computed the current port and connected")
        #expect(back.server.port == f.daemon.socket.localAddress.port)
        #expect(f.echo(back, "after") == "after")
    }
}
