import ClawChannel
import ClawCrypto
import ClawDaemon
import ClawReactor
import Glibc
import Testing

/// The sd_notify(3) protocol without libsystemd: formatting, the environment, and a daemon
/// talking to a real AF_UNIX datagram socket standing in for systemd. The environment is passed
/// in, so these tests never touch the process's own (NOTIFY_SOCKET is process-wide).
@Suite struct SystemdNotifyFormatTests {
    @Test func messages() {
        #expect(SystemdNotify.readyMessage(status: "listening on 0.0.0.0:47400, 2 paired device(s)")
                == "READY=1\nSTATUS=listening on 0.0.0.0:47400, 2 paired device(s)")
        #expect(SystemdNotify.stoppingMessage(status: "stopping (SIGTERM)") == "STOPPING=1\nSTATUS=stopping (SIGTERM)")
        #expect(SystemdNotify.watchdogMessage == "WATCHDOG=1")
        // A newline in a value would start a new assignment (say, a forged READY=1): it becomes a space.
        #expect(SystemdNotify.message([("STATUS", "a\nREADY=1\r")]) == "STATUS=a READY=1 ")
        #expect(SystemdNotify.message([]) == "")
    }

    @Test func watchdogInterval() {
        let me: pid_t = 4242
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: nil, ownPID: me) == .seconds(15))
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "4242", ownPID: me) == .seconds(15))
        #expect(SystemdNotify.watchdogInterval(usec: "3", pid: nil, ownPID: me) == .milliseconds(1), "at least 1 ms")
        #expect(SystemdNotify.watchdogInterval(usec: "1000001", pid: nil, ownPID: me) == .microseconds(500_000))
        // The watchdog belongs to another process (a child inherited the variables).
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "1", ownPID: me) == nil)
        for bad in ["", "0", "-5", "30s", " 30", "1e6", "99999999999999999999999"] {
            #expect(SystemdNotify.watchdogInterval(usec: bad, pid: nil, ownPID: me) == nil, "WATCHDOG_USEC=\(bad)")
        }
        #expect(SystemdNotify.watchdogInterval(usec: nil, pid: "4242", ownPID: me) == nil)
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "x", ownPID: me) == nil)
        #expect(SystemdNotify.watchdogInterval(usec: "30000000", pid: "0", ownPID: me) == nil)
    }

    @Test func settingsFromTheEnvironment() {
        let env = ["NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "77"]
        #expect(SystemdNotify.settings(environment: { env[$0] }, pid: 77)
                == .init(socket: "/run/systemd/notify", watchdogInterval: .seconds(10)))
        #expect(SystemdNotify.settings(environment: { env[$0] }, pid: 78)
                == .init(socket: "/run/systemd/notify", watchdogInterval: nil))
        #expect(SystemdNotify.settings(environment: { ["WATCHDOG_USEC": "20000000"][$0] }, pid: 77) == nil,
                "no socket, no notifications (and no watchdog)")
        #expect(SystemdNotify.settings(environment: { ["NOTIFY_SOCKET": ""][$0] }, pid: 77) == nil)
    }

    @Test func withoutASocketEverythingIsANoOp() throws {
        let loop = try EventLoop()
        let n = SystemdNotify(loop: loop, environment: { _ in nil }, log: Logger("test", minimum: .error))
        n.ready(status: "x")
        n.stopping()
        #expect(n.settings == nil && n.sent == 0)
    }

    @Test func aRelativeSocketNameIsRefused() throws {
        let loop = try EventLoop()
        let n = SystemdNotify(loop: loop, environment: { ["NOTIFY_SOCKET": "notify.sock"][$0] }, log: Logger("test", minimum: .error))
        n.ready(status: "x")
        #expect(n.sent == 0)
    }
}

/// A bound AF_UNIX datagram socket: what systemd listens on.
final class NotifyListener {
    let fd: Int32
    let name: String
    private let path: String?

    /// `abstract`: an abstract socket, named "@..." in NOTIFY_SOCKET.
    init(abstract: Bool) throws {
        let tag = "clawchat-notify-\(getpid())-\(Random.uniform(1 << 30))"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array((abstract ? "@\(tag)" : "/tmp/\(tag).sock").utf8)
        name = String(decoding: bytes, as: UTF8.self)
        path = abstract ? nil : name
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in for (i, b) in bytes.enumerated() { raw[i] = b } }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let bound = withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        try #require(bound == 0, "bind \(name): errno \(errno)")
    }

    deinit {
        close(fd)
        if let path { unlink(path) }
    }

    /// Every datagram waiting, as text.
    func drain() -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { break }
            out.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return out
    }
}

@Suite(.serialized) struct SystemdNotifyDaemonTests {
    /// A fixture whose daemon is replaced by one that notifies `listener`, as systemd would set it up.
    func start(_ listener: NotifyListener, watchdogUSec: String = "100000", watchdogPID: String? = nil) throws -> Fixture {
        let f = try Fixture()
        f.daemon.stop(reason: "replaced by a notifying daemon")
        f.daemon = nil
        var env = ["NOTIFY_SOCKET": listener.name, "WATCHDOG_USEC": watchdogUSec]
        env["WATCHDOG_PID"] = watchdogPID
        let d = try Daemon(loop: f.loop, config: f.config(port: f.port), log: Logger("test-daemon", minimum: .warning))
        d.notify = SystemdNotify(loop: f.loop, environment: { env[$0] }, log: Logger("test-notify", minimum: .warning))
        f.daemon = d
        try d.start()
        return f
    }

    @Test(arguments: [false, true]) func readyWatchdogAndStopping(abstract: Bool) throws {
        let listener = try NotifyListener(abstract: abstract)
        let f = try start(listener)
        let first = listener.drain()
        #expect(first == ["READY=1\nSTATUS=listening on 127.0.0.1:\(f.port), 0 paired device(s)"],
                "READY=1 is sent once start() has the socket listening")
        // WATCHDOG_USEC=100 ms: a ping every 50 ms while the loop runs; the daemon serves meanwhile.
        let (s, replies) = try f.connect(try f.pair())
        #expect(f.ask(s, "still pinging", replies: replies) == "echo: still pinging")
        f.loop.run(until: .milliseconds(400)) { false }
        let pings = listener.drain()
        #expect(pings.allSatisfy { $0 == "WATCHDOG=1" }, "\(pings)")
        #expect(pings.count >= 5, "about 8 pings in 400 ms, got \(pings.count)")
        // A stuck loop sends nothing: that is what lets systemd's watchdog restart it.
        usleep(300_000)
        #expect(listener.drain().isEmpty, "no ping while the loop is blocked")
        f.loop.run(until: .milliseconds(120)) { false }
        #expect(listener.drain().contains("WATCHDOG=1"), "pings resume with the loop")
        f.daemon.stop(reason: "SIGTERM")
        #expect(listener.drain() == ["STOPPING=1\nSTATUS=stopping (SIGTERM)"])
        #expect(f.daemon.notify?.isStopping == true)
        f.loop.run(until: .milliseconds(200)) { false }
        #expect(listener.drain().isEmpty, "no ping after STOPPING=1")
    }

    @Test func watchdogForAnotherProcessIsNotPinged() throws {
        let listener = try NotifyListener(abstract: false)
        let f = try start(listener, watchdogPID: "\(getpid() + 1)")
        f.loop.run(until: .milliseconds(250)) { false }
        let got = listener.drain()
        #expect(got.count == 1 && got.first?.hasPrefix("READY=1\n") == true, "\(got)")
        f.daemon.stop(reason: "test")
    }

    @Test func aMissingSocketDoesNotStopTheDaemon() throws {
        let listener = try NotifyListener(abstract: false)
        unlink(listener.name)   // systemd went away
        let f = try start(listener)
        let (s, replies) = try f.connect(try f.pair())
        #expect(f.ask(s, "fine", replies: replies) == "echo: fine")
        #expect(f.daemon.notify?.sent == 0)
        f.daemon.stop(reason: "test")
    }
}
