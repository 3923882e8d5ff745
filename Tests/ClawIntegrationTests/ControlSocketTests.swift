import ClawAssistant
import ClawChannel
import ClawClient
import ClawDaemon
import ClawReactor
import Glibc
import Testing

/// A client of the daemon's control socket on the test's loop (the daemon runs on the same loop,
/// so the client must not block): connects, sends its bytes, collects the answer until EOF.
final class ControlClient {
    let fd: Int32
    private var event: IOEvent!
    private(set) var received: [UInt8] = []
    private(set) var closed = false
    private(set) var connectError: Int32 = 0

    init(loop: EventLoop, path: String, send request: String?) {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 { connectError = errno }
        if let request { write(request) }
        event = IOEvent(loop: loop, fd: fd) { [unowned self] _ in self.drain() }
        event.watch(.readable)
    }

    deinit {
        event.watch([])
        close(fd)
    }

    func write(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    var text: String { String(decoding: received, as: UTF8.self) }

    private func drain() {
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 { received += buf[0..<n]; continue }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { return }
            closed = true   // EOF (or a reset): the daemon is done with us
            event.watch([])
            return
        }
    }
}

extension Fixture {
    var controlPath: String { "\(dir)/state/control.sock" }

    /// Asks the control socket, running the loop until the daemon closes the connection.
    func control(_ request: String) -> String? {
        let c = ControlClient(loop: loop, path: controlPath, send: request + "\n")
        guard loop.run(until: .seconds(5), condition: { c.closed }) else { return nil }
        return c.text
    }

    func statusJSON() throws -> JSONValue {
        let text = try #require(control("status json"))
        return try JSONValue.parse(text)
    }
}

@Suite(.serialized) struct ControlSocketTests {
    @Test func statusShowsTheSessionItsRTTAndCounters() throws {
        let f = try Fixture()
        #expect(AtomicFile.mode(of: f.controlPath) == 0o600, "the socket file is 0600")

        // Before pairing: a security file and its next regeneration.
        let fresh = try f.statusJSON()
        let now = try #require(fresh["now"]?.doubleValue)
        #expect(fresh["sessions"]?.arrayValue?.isEmpty == true)
        #expect(fresh["pairing"]?["present"] == .bool(true))
        let next = try #require(fresh["pairing"]?["nextRegeneration"]?.doubleValue)
        #expect(next > now && next <= now + Double(SecurityFileSchedule.regenerateEvery))
        #expect(try #require(fresh["pairing"]?["validUntil"]?.doubleValue) > next)
        #expect(fresh["listen"]?.stringValue == f.daemon.socket.localAddress.description)
        #expect(fresh["publicAddresses"]?.arrayValue?.count == 1)

        let (s, replies) = try f.connect(try f.pair(name: "laptop"))
        #expect(f.ask(s, "hello", replies: replies) == "echo: hello")
        let first = try f.statusJSON()
        #expect(f.ask(s, "again", replies: replies) == "echo: again")
        let st = try f.statusJSON()

        let sessions = try #require(st["sessions"]?.arrayValue)
        #expect(sessions.count == 1)
        let x = try #require(sessions.first)
        #expect(x["address"]?.stringValue == "127.0.0.1:\(s.socket.localAddress.port)", "the client's address")
        #expect(x["name"]?.stringValue == "laptop")
        #expect(x["device"]?.stringValue == f.daemon.server.pairedDevices.first?.idString)
        #expect(x["connection"] == .bool(true))
        #expect(x["rtt"]?["sampled"] == .bool(true))
        let rtt = try #require(x["rtt"]?["smoothedMs"]?.doubleValue)
        #expect(rtt > 0 && rtt < 1000, "an RTT measured on loopback: \(rtt) ms")
        let established = try #require(x["establishedAt"]?.doubleValue)
        #expect(abs(established - now) < 30)
        #expect(x["lastRekey"]?.doubleValue != nil)
        #expect(try #require(x["packetsIn"]?.doubleValue) > first["sessions"]?[0]?["packetsIn"]?.doubleValue ?? .infinity,
                "the session's packets moved")

        // Pairing spent the file: no regeneration until someone asks.
        #expect(st["pairing"]?["present"] == .bool(false))
        #expect(st["pairing"]?["nextRegeneration"] == .null)

        let c = try #require(st["counters"])
        let received = try #require(c["packets"]?["received"]?.doubleValue)
        #expect(received > first["counters"]?["packets"]?["received"]?.doubleValue ?? .infinity, "packet counters moved")
        #expect(try #require(c["packets"]?["sent"]?.doubleValue) > 0)
        #expect(c["handshakes"]?.doubleValue ?? 0 >= 2, "pairing and the session's handshake")
        #expect(c["drops"]?["total"]?.doubleValue != nil && c["drops"]?["badMac1"]?.doubleValue != nil)

        // Garbage is counted as a drop by reason.
        let prober = try UDPSocket(loop: f.loop, bindTo: .loopback())
        for _ in 0..<5 { prober.send([0x09, 1, 2, 3], to: f.daemon.socket.localAddress) }
        f.loop.run(until: .milliseconds(100)) { false }
        let after = try f.statusJSON()
        #expect(after["counters"]?["drops"]?["malformed"]?.doubleValue == (c["drops"]?["malformed"]?.doubleValue ?? 0) + 5)

        // The same for people.
        let text = try #require(f.control("status"))
        print(text)
        #expect(text.contains("sessions"))
        #expect(text.contains("127.0.0.1:\(s.socket.localAddress.port)"))
        #expect(text.contains("laptop"))
        #expect(text.contains(" ms"))
        #expect(text.contains("malformed 5"))
        #expect(text.contains("next regeneration"))
        #expect(f.control("nonsense") == "error: unknown request (ask `status` or `status json`)\n")
    }

    @Test func silentAndGarbageClientsAreDroppedAfterTheTimeout() throws {
        let f = try Fixture()
        let control = try #require(f.daemon.control)
        let started = f.loop.clock.now
        let silent = ControlClient(loop: f.loop, path: f.controlPath, send: nil)
        let garbage = ControlClient(loop: f.loop, path: f.controlPath, send: "\u{1}\u{2}garbage without an end")
        let long = ControlClient(loop: f.loop, path: f.controlPath, send: String(repeating: "x", count: 2000))
        let unknown = ControlClient(loop: f.loop, path: f.controlPath, send: "hello\n")
        #expect(f.loop.run(until: .seconds(1)) { long.closed && unknown.closed })
        #expect(long.text.hasPrefix("error: request longer than 1024 bytes"))
        #expect(unknown.text.hasPrefix("error: unknown request"))
        // Meanwhile the daemon answers others.
        #expect(f.control("status")?.contains("sessions") == true)
        #expect(!silent.closed && !garbage.closed)
        #expect(f.loop.run(until: .seconds(4)) { silent.closed && garbage.closed })
        let waited = f.loop.clock.now - started
        #expect(waited >= .milliseconds(1900) && waited < .seconds(4), "dropped after the 2 s timeout: \(waited)")
        #expect(silent.received.isEmpty && garbage.received.isEmpty)
        #expect(control.timedOut == 2)
        #expect(control.activeConnections == 0)
        // And it keeps serving, chat included.
        #expect(f.control("status json").flatMap { try? JSONValue.parse($0) }?["v"] == 1)
        let (s, replies) = try f.connect(try f.pair())
        #expect(f.ask(s, "still", replies: replies) == "echo: still")
    }

    @Test func twentyConnectionsAtOnceAreBounded() throws {
        let f = try Fixture()
        let control = try #require(f.daemon.control)
        control.timeout = .milliseconds(400)
        // Twenty status requests at once: all answered, never more than eight open.
        let asking = (0..<20).map { _ in ControlClient(loop: f.loop, path: f.controlPath, send: "status json\n") }
        #expect(asking.allSatisfy { $0.connectError == 0 })
        #expect(f.loop.run(until: .seconds(5)) { asking.allSatisfy(\.closed) })
        #expect(asking.allSatisfy { (try? JSONValue.parse($0.text))?["v"] == 1 }, "every one got its answer")
        #expect(control.peakConnections <= ControlSocket.maxConnections)
        // Twenty that say nothing: eight are held, the rest wait in the backlog, nothing is lost.
        let silent = (0..<20).map { _ in ControlClient(loop: f.loop, path: f.controlPath, send: nil) }
        f.loop.run(until: .milliseconds(150)) { false }
        #expect(control.activeConnections == ControlSocket.maxConnections)
        #expect(f.loop.run(until: .seconds(5)) { silent.allSatisfy(\.closed) })
        #expect(control.peakConnections == ControlSocket.maxConnections)
        #expect(control.timedOut == 20)
        #expect(f.control("status")?.contains("counters") == true, "served again once they are gone")
    }

    @Test func othersAreRefusedAndStaleSocketsReplaced() throws {
        let f = try Fixture()
        let control = try #require(f.daemon.control)
        control.allowedUIDs = []   // as if we were another user
        let c = ControlClient(loop: f.loop, path: f.controlPath, send: "status\n")
        #expect(f.loop.run(until: .seconds(2)) { c.closed })
        #expect(c.received.isEmpty)
        #expect(control.refused == 1)

        // A second daemon on the same state directory is refused while the first answers.
        var config = f.config(port: 0)
        config.publicAddresses = [.loopback()]
        let second = try Daemon(loop: f.loop, config: config, log: Logger("second", minimum: .error))
        #expect(throws: DaemonError.self) { try second.start() }
        #expect(AtomicFile.mode(of: f.controlPath) == 0o600, "the first daemon's socket is untouched")

        // A stale socket file (a daemon that died without cleaning up) is replaced.
        f.daemon.stop(reason: "test")
        #expect(AtomicFile.mode(of: f.controlPath) == nil, "stop removes the socket")
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(f.controlPath.utf8)) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        close(s)
        #expect(AtomicFile.mode(of: f.controlPath) != nil, "a stale socket file is left behind")
        f.daemon = nil
        try f.startDaemon()
        #expect(AtomicFile.mode(of: f.controlPath) == 0o600)
        #expect(f.control("status")?.contains("clawchatd") == true)
    }
}
