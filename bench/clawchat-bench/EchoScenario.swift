import ClawChannel
import ClawCrypto
import ClawReactor

/// How the `echo` scenario runs.
struct EchoSettings {
    var rounds: Int
    var window: Int
    var warmup: Duration
    var duration: Duration
    var cipher: AEADCipher
}

/// Everything measured for one payload size, one sample per round for each server.
struct EchoResult {
    /// Application bytes per request.
    var payload: Int
    /// UDP payload bytes of a request to each server.
    var plainDatagram: Int
    var clawchatDatagram: Int
    var plain: [EchoSample] = []
    var clawchat: [EchoSample] = []

    /// ClawChat replies/s over plain replies/s, paired round by round.
    var ratios: [Double] { zip(clawchat, plain).map { $0.repliesPerSecond / $1.repliesPerSecond } }
}

/// `echo`: datagrams per second through the daemon's reactor against a plain UDP echo on the
/// same reactor code. Both servers run in child processes; this process is the load generator
/// for both, alternating between them round by round so drift affects both alike.
enum EchoScenario {
    /// 64 bytes, and the largest payload of one datagram: request and echo (the daemon's
    /// diagnostic echo, PROTOCOL.md 10.1) are full 1200-byte transport datagrams.
    static let payloadSizes = [64, Wire.maxApplicationData]

    static func run(_ settings: EchoSettings, progress: Progress) throws(BenchError) -> [EchoResult] {
        let dir = try TempDirectory(prefix: "clawchat-bench")
        // The directory goes only after both children are gone (the defers below run first).
        return try withExtendedLifetime(dir) { () throws(BenchError) -> [EchoResult] in
            try run(settings, in: dir, progress: progress)
        }
    }

    private static func run(_ settings: EchoSettings, in dir: TempDirectory, progress: Progress) throws(BenchError) -> [EchoResult] {
        let key = Random.bytes(count: 32)
        let keyFile = "\(dir.path)/bootstrap.key"
        do { try AtomicFile.write(Array(Base64.encode(key).utf8), to: keyFile, mode: 0o600) } catch {
            throw BenchError("cannot write the bootstrap key: \(error)")
        }

        let plainServer = try ChildProcess("plain echo server", arguments: [
            "_echo-server", "--mode", "plain", "--dir", "\(dir.path)/plain"])
        defer { plainServer.terminate() }
        let daemon = try ChildProcess("ClawChat daemon", arguments: [
            "_echo-server", "--mode", "clawchat", "--dir", "\(dir.path)/daemon",
            "--bootstrap-key-file", keyFile, "--cipher", CipherChoice(settings.cipher).rawValue])
        defer { daemon.terminate() }

        let plainPort = try plainServer.waitForPort(file: "\(dir.path)/plain/port")
        let daemonPort = try daemon.waitForPort(file: "\(dir.path)/daemon/port")
        let secFile = try daemon.waitForFile("\(dir.path)/daemon/state/security/\(SecurityFile.fileName)",
                                             timeout: .seconds(10))

        let loop: EventLoop
        let plain: PlainEchoClient
        let interruption: Interruption
        do {
            loop = try EventLoop()
            interruption = try Interruption(loop: loop)
            plain = try PlainEchoClient(loop: loop, server: .loopback(port: plainPort))
        } catch { throw BenchError("cannot set up the load generator: \(error)") }
        let clawchat = try ClawChatEchoClient(loop: loop, securityFile: secFile,
                                              bootstrapKey: .raw(SecureBytes(copying: key)),
                                              identityPath: "\(dir.path)/client/identity")
        guard clawchat.session.server.port == daemonPort else {
            throw BenchError("the security file names port \(clawchat.session.server.port), the daemon listens on \(daemonPort)")
        }
        let plainLoad = WindowedLoad(loop: loop, client: plain, window: settings.window, interruption: interruption)
        let clawchatLoad = WindowedLoad(loop: loop, client: clawchat, window: settings.window, interruption: interruption)

        var results = payloadSizes.map {
            EchoResult(payload: $0, plainDatagram: $0, clawchatDatagram: Wire.minTransportLength + 1 + $0)
        }
        let servers = [(plainLoad, plainServer, \EchoResult.plain), (clawchatLoad, daemon, \EchoResult.clawchat)]
        for round in 0..<settings.rounds {
            for i in results.indices {
                progress.say("echo: round \(round + 1)/\(settings.rounds), \(results[i].payload) B")
                for (load, server, samples) in round % 2 == 0 ? servers : servers.reversed() {
                    let sample = load.measure(payloadSize: results[i].payload, warmup: settings.warmup,
                                              duration: settings.duration, server: server)
                    if interruption.requested { throw BenchError("interrupted") }
                    try server.ensureRunning()
                    guard sample.repliesPerSecond > 0 else {
                        throw BenchError("no replies from the \(server.name) to \(results[i].payload)-byte requests")
                    }
                    results[i][keyPath: samples].append(sample)
                }
            }
        }
        return results
    }
}

// MARK: Report

extension EchoScenario {
    static func table(_ results: [EchoResult], _ s: EchoSettings) -> String {
        var t = Table(headers: ["payload (datagram)", "plain echo replies/s", "µs CPU/reply",
                                "ClawChat replies/s", "µs CPU/reply", "ClawChat / plain"])
        for r in results {
            t.rows.append([
                "\(r.payload) B (\(r.plainDatagram) B / \(r.clawchatDatagram) B)",
                spread(Summary(r.plain.map(\.repliesPerSecond)), compact),
                spread(Summary(r.plain.map(\.serverMicrosPerReply))) { fixed($0, 2) },
                spread(Summary(r.clawchat.map(\.repliesPerSecond)), compact),
                spread(Summary(r.clawchat.map(\.serverMicrosPerReply))) { fixed($0, 2) },
                spread(Summary(r.ratios)) { fixed($0, 2) },
            ])
        }
        var text = "echo: replies/s from a server in its own process on 127.0.0.1, \(s.window) requests in flight, "
        text += "\(fixed(s.warmup.seconds, 1)) s warm-up + \(fixed(s.duration.seconds, 1)) s per round;\n"
        text += "µs CPU/reply is the server process's CPU time per reply\n"
        text += t.render()
        func busy(_ pick: (EchoResult) -> [EchoSample], _ cpu: (EchoSample) -> Double) -> String {
            percent(Summary(results.flatMap { pick($0).map(cpu) }).median)
        }
        text += "\nCPU busy (median, 100% = one core): server plain \(busy(\.plain, \.serverCPU)), "
        text += "daemon \(busy(\.clawchat, \.serverCPU)); load generator with plain \(busy(\.plain, \.clientCPU)), "
        text += "with ClawChat \(busy(\.clawchat, \.clientCPU))"
        let lost = results.map { ($0.payload, $0.plain.map(\.lost).reduce(0, +), $0.clawchat.map(\.lost).reduce(0, +)) }
        if lost.contains(where: { $0.1 > 0 || $0.2 > 0 }) {
            text += "\nunanswered requests (all rounds): "
            text += lost.map { "\($0.0) B: plain \($0.1), ClawChat \($0.2)" }.joined(separator: "; ")
        }
        return text
    }

    static func json(_ results: [EchoResult], _ s: EchoSettings) -> JSON {
        func samples(_ list: [EchoSample]) -> JSON {
            .object([
                ("repliesPerSecond", .summary(Summary(list.map(\.repliesPerSecond)))),
                ("serverCPU", .summary(Summary(list.map(\.serverCPU)))),
                ("serverMicrosPerReply", .summary(Summary(list.map(\.serverMicrosPerReply)))),
                ("loadGeneratorCPU", .summary(Summary(list.map(\.clientCPU)))),
                ("unanswered", .array(list.map { .number(Double($0.lost)) })),
            ])
        }
        return .object([
            ("window", .integer(s.window)),
            ("warmupSeconds", .number(s.warmup.seconds)),
            ("secondsPerRound", .number(s.duration.seconds)),
            ("sizes", .array(results.map { r in
                .object([
                    ("payloadBytes", .integer(r.payload)),
                    ("plainDatagramBytes", .integer(r.plainDatagram)),
                    ("clawchatDatagramBytes", .integer(r.clawchatDatagram)),
                    ("plain", samples(r.plain)),
                    ("clawchat", samples(r.clawchat)),
                    ("ratioClawchatToPlain", .summary(Summary(r.ratios))),
                ])
            })),
        ])
    }
}
