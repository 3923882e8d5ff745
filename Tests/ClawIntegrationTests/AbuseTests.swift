@testable import ClawChannel
import ClawClient
import ClawCrypto
import ClawDaemon
import ClawReactor
import ClawRelay
import ClawTransport
import Foundation
import Glibc
import Testing

/// The real `clawchatd` in a child process (so its CPU time is its own), on loopback, with the
/// echo provider. Killed by PID when the test ends.
final class DaemonProcess {
    let dir: String
    let process = Process()
    var state: String { "\(dir)/state" }
    var logPath: String { "\(dir)/daemon.log" }

    /// The directory of the test binary: `swift build --build-tests` puts the executables there.
    static var binDirectory: String {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        let exe = n > 0 ? String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
    }

    static var binary: String { ProcessInfo.processInfo.environment["CLAWCHAT_DAEMON_BIN"] ?? "\(binDirectory)/clawchatd" }

    init(arguments: [String] = ["--provider", "echo"]) throws {
        dir = "/tmp/clawchat-abuse-\(getpid())-\(Random.uniform(1 << 30))"
        try AtomicFile.ensureDirectory(dir, mode: 0o700)
        try #require(access(Self.binary, X_OK) == 0, "\(Self.binary) is missing: build with `swift build --build-tests` first")
        let key = try Self.capture([Self.binary, "bootstrap-key"])
        try AtomicFile.write(Array(key.utf8), to: "\(dir)/bk", mode: 0o600)
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["run", "--state-dir", state, "--listen", "127.0.0.1:0", "--bootstrap-key-file", "\(dir)/bk"] + arguments
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        // An ASan build of the daemon checks for leaks when it exits (`stop()`); any other
        // build ignores this.
        var environment = ProcessInfo.processInfo.environment
        environment["ASAN_OPTIONS"] = "detect_leaks=1"
        process.environment = environment
        try process.run()
    }

    /// SIGTERM, then waits (up to 20 s) for the daemon to exit; its log.
    func stop() -> String {
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<200 where process.isRunning { usleep(100_000) }
        return log
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        _ = system("rm -rf '\(dir)'")
    }

    var pid: Int32 { process.processIdentifier }

    /// Pairs a device with the daemon's security file (waits for the daemon to write it).
    func pair(loop: EventLoop, name: String) throws -> ClientIdentity {
        let sec = "\(state)/security/\(SecurityFile.fileName)"
        var bytes: [UInt8]?
        for _ in 0..<200 where bytes == nil {
            bytes = try? AtomicFile.read(sec)
            if bytes == nil { usleep(50_000) }
        }
        let file = try #require(bytes, "the daemon wrote no security file; its log: \(log)")
        let key = try #require(try BootstrapKey.load(file: "\(dir)/bk"))
        return try Pairing.run(fileBytes: file, bootstrapKey: key, deviceName: name,
                               identityPath: "\(dir)/\(name)/identity", loop: loop, timeout: .seconds(10))
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// `clawchatd status --json`, parsed.
    func status() throws -> JSONValue {
        try JSONValue.parse(Array(try Self.capture([Self.binary, "status", "--state-dir", state, "--json"]).utf8))
    }

    /// User plus system CPU time of the daemon so far, in seconds (/proc/PID/stat).
    func cpuSeconds() throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the command name (which is in parentheses and may hold spaces).
        let fields = stat[stat.index(after: try #require(stat.lastIndex(of: ")")))...].split(separator: " ")
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (Double(fields[11])! + Double(fields[12])!) / ticks
    }

    /// A line of /proc/PID/status in kB (VmRSS, RssAnon).
    func memoryKB(_ field: String) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    static func capture(_ argv: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0])
        p.arguments = Array(argv.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(argv.joined(separator: " ")) failed")
        return String(decoding: data, as: UTF8.self)
    }
}

/// A loopback socket bound to `address` (any of 127.0.0.0/8: each is a different source to the
/// daemon's per-address rate limit).
func loopbackSocket(_ loop: EventLoop, _ address: String) throws -> UDPSocket {
    try UDPSocket(loop: loop, bindTo: try SocketAddress(parsing: address, port: 0))
}

@Suite(.serialized) struct AbuseTests {
    /// 200,000 garbage datagrams and 10,000 forged handshake initiations from 100 source addresses
    /// while a paired client chats: the chat keeps working, the flood gets no byte back, the
    /// daemon's memory stays flat; its CPU time per garbage datagram is reported.
    @Test func floodOfGarbageAndForgedInitiationsWhileAClientChats() throws {
        let daemon = try DaemonProcess()
        let loop = try EventLoop()
        let id = try daemon.pair(loop: loop, name: "laptop")
        let server = try #require(id.servers.first)
        let session = try ClientSession(loop: loop, credentials: id.credentials, servers: id.servers)
        var up = false
        session.onEvent = { if case .established = $0 { up = true } }
        session.start()
        try #require(loop.run(until: .seconds(10)) { up }, "the client connects")

        var heard = 0
        let flooders = try (1...100).map { try loopbackSocket(loop, "127.0.2.\($0)") }
        for s in flooders {
            s.setBufferSizes(receive: 1 << 20, send: 4 << 20)
            s.onDatagram = { _, _ in heard += 1 }
        }

        // The chat: always one request in flight, answers checked, latencies kept.
        var answered = 0, wrong = 0, failed: [String] = []
        var latencies: [Double] = []
        func chat() {
            let text = "still here \(answered + wrong + failed.count)"
            let started = loop.clock.now
            var pieces = ""
            let request = session.request("chat", body: Array(text.utf8))
            request.onPartial = { pieces += $0.text }
            request.onDone = { r in
                switch r {
                case .success(let m):
                    if pieces + m.text == "echo: \(text)" { answered += 1 } else { wrong += 1 }
                    latencies.append((loop.clock.now - started).seconds * 1000)
                case .failure(let f): failed.append(f.description)
                }
                if failed.count < 3 { chat() }
            }
        }

        // Forged initiations: valid mac1 (whoever has a security file or sniffed one initiation
        // knows the server's public key) with a random Noise body, so each costs the daemon its
        // rate-limit check and, if allowed, a DH; and 100 real initiations from unpaired keys.
        var rng = SplitMix64(seed: 9)
        let mac1Key = Wire.mac1Key(publicKey: id.serverPublicKey)
        var forged: [[UInt8]] = (0..<9_900).map { _ in
            let noise = (0..<(96 + 26 + Int(rng.next() % 40))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            return Wire.initiation(senderIndex: UInt32(truncatingIfNeeded: rng.next()) | 1, noise: noise, mac1Key: mac1Key)
        }
        for i in 0..<100 {
            let stranger = ClientCredentials(staticKey: .generate(), serverPublicKey: id.serverPublicKey,
                                             psk: .random(count: 32), mode: .paired(deviceID: UInt64(i + 1)),
                                             cipher: id.cipher, deviceName: "stranger")
            for case .send(let bytes) in try ClientChannel(credentials: stranger).start(now: loop.clock.now, unixNanos: loop.clock.unixNanos) {
                forged.insert(bytes, at: i * 99)
            }
        }
        #expect(forged.count == 10_000)
        // Garbage: random lengths and bytes (windows of one random pool), a quarter of them with
        // a real type and header.
        let pool = (0..<(1 << 18)).flatMap { _ in withUnsafeBytes(of: rng.next()) { Array($0) } }
        let garbage: [[UInt8]] = (0..<200_000).map { i in
            let start = Int(rng.next() % UInt64(pool.count - 1400))
            var d = Array(pool[start..<(start + 1 + Int(rng.next() % 1400))])
            if i % 4 == 0 {
                d[0] = [1, 2, 4][Int(rng.next() % 3)]
                for k in 1..<min(4, d.count) { d[k] = 0 }
            }
            return d
        }

        let memoryBefore = try daemon.memoryKB("VmRSS")
        let dropped0 = try #require(try daemon.status()["counters"]?["drops"]?["total"]?.intValue)
        let handshakes0 = try #require(try daemon.status()["counters"]?["handshakes"]?.intValue)
        let cpu0 = try daemon.cpuSeconds()
        let started = wallClock()
        chat()
        // Interleaved: 500 garbage datagrams and 25 forged initiations per turn of the loop.
        var g = 0, h = 0, turn = 0
        while g < garbage.count || h < forged.count {
            let s = flooders[turn % flooders.count]
            for d in garbage[g..<min(g + 500, garbage.count)] { s.send(d, to: server) }
            for d in forged[h..<min(h + 25, forged.count)] { s.send(d, to: server) }
            g += 500; h += 25; turn += 1
            _ = loop.run(until: .milliseconds(2)) { false }
        }
        let floodSeconds = wallClock() - started
        _ = loop.run(until: .milliseconds(500)) { false }
        let cpu1 = try daemon.cpuSeconds()
        let answeredDuringFlood = answered
        _ = loop.run(until: .seconds(5)) { answered > answeredDuringFlood + 3 }

        let status = try daemon.status()
        let drops = status["counters"]?["drops"]
        // Every flood datagram the daemon read is dropped with a counted reason.
        let received = try #require(drops?["total"]?.intValue) - dropped0
        let sent = garbage.count + forged.count
        let perPacketMicros = (cpu1 - cpu0) / Double(max(received, 1)) * 1e6
        let sorted = latencies.sorted()
        let p50 = sorted.isEmpty ? -1 : sorted[sorted.count / 2], p99 = sorted.isEmpty ? -1 : sorted[sorted.count * 99 / 100]
        print("""
            abuse flood: \(sent) datagrams (\(garbage.count) garbage, \(forged.count) forged initiations) from \
            \(flooders.count) addresses in \(String(format: "%.1f", floodSeconds)) s; the daemon read and dropped \(received) \
            (the kernel's socket buffer dropped \(sent - received)), used \(String(format: "%.2f", cpu1 - cpu0)) s CPU: \
            \(String(format: "%.2f", perPacketMicros)) µs per datagram (\(DaemonProcess.binary)); \
            drops \(drops?.encoded() ?? "?"); chat: \(answeredDuringFlood) answers during the flood, \
            latency p50 \(String(format: "%.1f", p50)) ms p99 \(String(format: "%.1f", p99)) ms; \
            daemon VmRSS \(memoryBefore) -> \(try daemon.memoryKB("VmRSS")) kB
            """)

        #expect(failed.isEmpty, "the chat failed during the flood: \(failed)")
        #expect(wrong == 0)
        #expect(answeredDuringFlood >= 5, "the chat kept being answered during the flood")
        #expect(answered > answeredDuringFlood, "and after it")
        #expect(heard == 0, "not one byte back to the flood")
        #expect(received > sent / 2, "most of the flood reached the daemon (else this measured the kernel)")
        #expect(status["counters"]?["handshakes"]?.intValue == handshakes0, "no forged initiation completed a handshake")
        #expect((drops?["rateLimited"]?.intValue ?? 0) > 0, "forged initiations hit the rate limit")
        #expect((drops?["handshakeFailed"]?.intValue ?? 0) + (drops?["unknownDevice"]?.intValue ?? 0) > 0,
                "the ones allowed through were refused by the handshake")
        #expect(status["sessions"]?.arrayValue?.count == 1, "the client's session is the only one")
        if !underSanitizer {
            #expect(try daemon.memoryKB("VmRSS") < memoryBefore + 16 * 1024, "the flood does not grow the daemon")
        } // (under ASan, freed memory sits in its quarantine: RSS says nothing there)
        #expect(daemon.process.isRunning)

        // The file manager on the same daemon, then a clean stop: an ASan build of the daemon
        // reports at exit whatever it leaked in all of this.
        let files = FileClient(session: session)
        let local = "\(daemon.dir)/local.bin"
        try AtomicFile.write((0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }, to: local)
        var uploaded: Result<TransferSummary, FileClientError>?
        files.upload(local: local, remote: "up.bin", overwrite: false) { uploaded = $0 }
        _ = loop.run(until: .seconds(30)) { uploaded != nil }
        #expect((try? uploaded?.get())?.bytes == 1_000_000, "upload after the flood: \(String(describing: uploaded))")
        var down: Result<TransferSummary, FileClientError>?
        files.download(remote: "up.bin", to: "\(daemon.dir)/back.bin", overwrite: false) { down = $0 }
        _ = loop.run(until: .seconds(30)) { down != nil }
        #expect((try? down?.get())?.bytes == 1_000_000, "download after the flood: \(String(describing: down))")
        let log = daemon.stop()
        #expect(!daemon.process.isRunning && daemon.process.terminationStatus == 0, "a clean stop on SIGTERM: \(log.suffix(2000))")
        #expect(!log.contains("Sanitizer"), "the daemon's sanitizer reported: \(log.suffix(4000))")
    }

    /// 1,000 paired devices, each with its own session from its own address, all sending
    /// keepalives every second for five seconds while another device chats: every session stays
    /// up without a new handshake and the chat is answered.
    @Test func aThousandPairedSessionsKeepAliveTogether() throws {
        let f = try Fixture()
        let serverKey = f.daemon.server.staticKey.publicKey
        let count = 1_000
        var devices: [DeviceRecord] = []
        var credentials: [ClientCredentials] = []
        for i in 0..<count {
            let key = X25519KeyPair.generate()
            let psk = SecureBytes.random(count: 32)
            let id = UInt64(0x1000 + i)
            devices.append(DeviceRecord(id: id, name: "bulk-\(i)", publicKey: key.publicKey, psk: psk, pairedAt: 1))
            credentials.append(ClientCredentials(staticKey: key, serverPublicKey: serverKey, psk: psk, mode: .paired(deviceID: id),
                                                 cipher: .preferred, deviceName: "bulk-\(i)"))
        }
        try DeviceStore.save(devices, to: "\(f.dir)/state/devices")
        try f.restartDaemon()
        let server = f.daemon.socket.localAddress

        var timers = ChannelTimers()
        timers.keepaliveInterval = .seconds(1)
        final class Client {
            let channel: ClientChannel
            let socket: UDPSocket
            var established = false
            var lost = 0
            var datagramsIn = 0
            init(_ c: ClientChannel, _ s: UDPSocket) { channel = c; socket = s }
        }
        var clients: [Client] = []
        func perform(_ c: Client, _ actions: [ClientChannel.Action]) {
            for a in actions {
                switch a {
                case .send(let bytes): c.socket.send(bytes, to: server)
                case .established: c.established = true
                case .connectionLost: c.lost += 1
                default: break
                }
            }
        }
        // Each device from its own address (127.1.x.y), so the per-address handshake limit
        // does not serialise them; started 100 at a time, under the global 500/s.
        let started = wallClock()
        for batch in 0..<(count / 100) {
            for i in (batch * 100)..<(batch * 100 + 100) {
                let s = try loopbackSocket(f.loop, "127.1.\(i / 250).\(i % 250 + 1)")
                let c = Client(try ClientChannel(credentials: credentials[i], timers: timers), s)
                s.onDatagram = { [unowned c] bytes, _ in
                    c.datagramsIn += 1
                    perform(c, c.channel.receive(bytes, now: f.loop.clock.now))
                }
                clients.append(c)
                perform(c, c.channel.start(now: f.loop.clock.now, unixNanos: f.loop.clock.unixNanos))
            }
            _ = f.loop.run(until: .milliseconds(250)) { false }
        }
        // One timer ticks every channel (each decides itself whether a keepalive is due).
        let ticker = Timer(loop: f.loop) {
            for c in clients { perform(c, c.channel.tick(now: f.loop.clock.now, unixNanos: f.loop.clock.unixNanos)) }
        }
        ticker.schedulePeriodic(every: .milliseconds(100))
        let allUp = f.loop.run(until: .seconds(30)) { clients.allSatisfy(\.established) }
        let upSeconds = wallClock() - started
        #expect(allUp, "\(clients.filter { !$0.established }.count) of \(count) never established")

        // Five keepalive rounds, with a chat from another, normally paired device meanwhile.
        let (chatter, _) = try f.connect(try f.pair(name: "chatter"))
        let handshakes = f.daemon.server.handshakesCompleted
        let before = clients.map(\.datagramsIn)
        let receivedBefore = f.daemon.socket.stats.received
        var answers = 0
        let phase = wallClock()
        while wallClock() - phase < 5 {
            if f.ask(chatter, "ping \(answers)") == "echo: ping \(answers)" { answers += 1 }
            _ = f.loop.run(until: .milliseconds(200)) { false }
        }
        let keepaliveAnswers = zip(clients, before).map { $0.datagramsIn - $1 }
        print("""
            abuse 1000 sessions: all \(count) established in \(String(format: "%.1f", upSeconds)) s; in 5 s of 1 s keepalives \
            the daemon received \(f.daemon.socket.stats.received - receivedBefore) datagrams, every client got at least \
            \(keepaliveAnswers.min() ?? 0) answers; \(answers) chats answered meanwhile
            """)
        #expect(f.daemon.server.sessionInfos.count == count + 1, "every session is still there")
        #expect(f.daemon.server.handshakesCompleted == handshakes, "no session needed a new handshake")
        #expect(clients.allSatisfy { $0.lost == 0 }, "no client lost its session")
        #expect(keepaliveAnswers.allSatisfy { $0 >= 3 }, "every client's keepalives were answered")
        #expect(answers >= 10, "the chat was answered while a thousand sessions kept alive")
        ticker.cancel()
    }
}

@Suite(.serialized) struct FaultTests {
    /// The shared folder on a 4 MiB tmpfs, an 8 MB upload over an existing file: a clear
    /// `no-space` error, the old file and its neighbour untouched, no partial file left, the space
    /// back, and the next upload that fits works. Needs root to mount; CI runs as root.
    @Test func aFullDiskDuringAnUploadIsAClearErrorAndNothingIsCorrupted() throws {
        guard getuid() == 0 else {
            print("WARNING: not root: the disk-full upload test (tmpfs mount) was NOT run; run the suite as root (CI does)")
            #expect(ProcessInfo.processInfo.environment["CI"] != "true", "CI must run this test as root")
            return
        }
        var mounted: String?
        defer { if let m = mounted { _ = system("umount -l '\(m)'") } }
        let f = try FilesFixture(prepareRoot: { root in
            try AtomicFile.ensureDirectory(root, mode: 0o700)
            try #require(system("mount -t tmpfs -o size=4m,mode=0700 clawchat-full '\(root)'") == 0, "mount tmpfs")
            mounted = root
        })
        try makeFile("\(f.root)/keep.bin", size: 300_000, seed: 1)
        try makeFile("\(f.root)/big.bin", size: 200_000, seed: 2)
        let keep = sha256(of: "\(f.root)/keep.bin"), old = sha256(of: "\(f.root)/big.bin")
        func freeBytes() -> UInt64 {
            var s = statvfs()
            _ = statvfs(f.root, &s)
            return UInt64(s.f_bavail) * UInt64(s.f_frsize)
        }
        let free = freeBytes()
        try makeFile("\(f.local)/huge.bin", size: 8_000_000, seed: 3)

        let r = f.upload("\(f.local)/huge.bin", "big.bin", overwrite: true)
        guard case .failure(let e)? = r else { Issue.record("the upload did not fail: \(String(describing: r))"); return }
        print("disk full: the client was told: \(e)")
        #expect(e.code == "no-space")
        #expect(e.description.contains("full"), "the message says the disk is full")
        #expect(sha256(of: "\(f.root)/big.bin") == old, "the file being replaced is untouched")
        #expect(sha256(of: "\(f.root)/keep.bin") == keep, "its neighbour is untouched")
        let names = try FileManager.default.contentsOfDirectory(atPath: f.root).sorted()
        #expect(names == ["big.bin", "keep.bin"], "no partial upload is left behind: \(names)")
        #expect(freeBytes() >= free - 64 << 10, "the space is back")
        #expect(f.service.activeTransfers == 0)

        // What fits still works, end to end.
        try makeFile("\(f.local)/small.bin", size: 1_000_000, seed: 4)
        guard case .success? = f.upload("\(f.local)/small.bin", "small.bin") else { Issue.record("the next upload failed"); return }
        #expect(sha256(of: "\(f.root)/small.bin") == sha256(of: "\(f.local)/small.bin"))
    }

    /// A provider that never answers while chats pile up: the ones over the per-device limit are
    /// refused at once, the daemon keeps answering other requests, every waiting chat ends with a
    /// clear timeout after the idle limit, nothing is stored, and the next chat is answered.
    @Test func aProviderThatNeverAnswersWhileChatsPileUp() throws {
        let m = try AssistantTests.mock.get()
        let f = try AssistantFixture(.openai, baseURL: m.base("never,times=\(Assistant.maxChatsPerDevice),id=pileup"), idle: .seconds(2), retries: 0)
        var outcomes: [Result<Message, RequestFailure>] = []
        let extra = 4
        for i in 0..<(Assistant.maxChatsPerDevice + extra) {
            f.session.request("chat", body: Array("waiting \(i)".utf8)).onDone = { outcomes.append($0) }
        }
        func code(_ r: Result<Message, RequestFailure>) -> String? {
            if case .failure(.server(let c, _)) = r { return c }
            return nil
        }
        _ = f.loop.run(until: .seconds(1)) { outcomes.count >= extra }
        #expect(outcomes.map(code) == Array(repeating: "busy", count: extra), "over the limit: refused at once")
        // Meanwhile the daemon answers.
        let started = f.loop.clock.now
        let history = f.request("history")
        #expect(history != nil, "history is answered while chats wait")
        #expect(f.loop.clock.now - started < promptLimit(.seconds(1)))
        #expect(f.assistant.bridge.activeCalls == Assistant.maxChatsPerDevice)

        _ = f.loop.run(until: .seconds(10)) { outcomes.count == Assistant.maxChatsPerDevice + extra }
        let waited = outcomes.dropFirst(extra)
        #expect(waited.count == Assistant.maxChatsPerDevice)
        #expect(waited.allSatisfy { code($0) == "provider-timeout" }, "\(waited.map(code))")
        if case .failure(let failure)? = waited.first { print("never-answering provider: the client was told: \(failure)") }
        #expect(f.assistant.bridge.activeCalls == 0)
        #expect(try f.storedExchanges().isEmpty, "nothing half-answered is stored")

        let a = f.chat("and now")
        #expect(a.text == "You said: and now", "the next chat is answered: \(a.errorText)")
    }
}
