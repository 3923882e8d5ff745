import ClawChannel
import ClawClient
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// How the `chat` scenario runs.
struct ChatSettings {
    var rounds: Int
    /// Timed requests per round on each path, one at a time.
    var requests: Int
    /// Untimed requests on each path before the first round.
    var warmup: Int
    /// Pieces (deltas) the mock splits each answer into.
    var pieces: Int
    /// The mock's wait between pieces, and before the closing events.
    var pieceDelayMs: Int
    var cipher: AEADCipher
    /// `--mock-llm`: the mock's script, when not found by itself.
    var mockScript: String?

    /// The mock's scenario string (`/s/<scenario>/v1`).
    var scenario: String { "ok,pieces=\(pieces),chunk_delay_ms=\(pieceDelayMs)" }
}

/// One way of asking the model: straight to the mock, or through a daemon.
struct ChatPath {
    var name: String
    /// Where the daemon keeps its journal and daily log; nil for the direct path.
    var stateDirectory: String?
    var fileSystem: String?
    /// Every timed request of each round, in order.
    var rounds: [[ChatLatency]] = []
    /// The daemon's CPU time per chat, mean of each round, seconds (empty for the direct path).
    var daemonCPU: [Double] = []

    var isDirect: Bool { stateDirectory == nil }

    /// The `p`-th percentile of each round.
    func perRound(_ p: Double, _ pick: (ChatLatency) -> Double) -> [Double] {
        rounds.map { percentile($0.map(pick).sorted(), p) }
    }
}

/// What the `chat` scenario measured; `paths[0]` is the direct path.
struct ChatReport {
    /// Why nothing was measured (python3 or the mock missing); nil when measured.
    var unavailable: String?
    var paths: [ChatPath] = []
    var message = ""
    var expectedReply = ""
    /// Bytes of the request body the daemon sent to the mock, which the direct path sends too.
    var requestBodyBytes = 0
    var mockScript = ""
    var python = ""

    /// ClawChat minus direct, request by request within a round (they ran one after the other),
    /// then the `p`-th percentile of those differences, for each round.
    func overhead(_ path: ChatPath, _ p: Double, _ pick: (ChatLatency) -> Double) -> [Double] {
        zip(path.rounds, paths[0].rounds).map { claw, direct in
            percentile(zip(claw, direct).map { pick($0) - pick($1) }.sorted(), p)
        }
    }

    /// The difference of the two paths' `p`-th percentiles, for each round.
    func percentileDifference(_ path: ChatPath, _ p: Double, _ pick: (ChatLatency) -> Double) -> [Double] {
        zip(path.perRound(p, pick), paths[0].perRound(p, pick)).map { $0 - $1 }
    }
}

/// `chat`: the latency of a streamed answer through the real daemon (channel, transport,
/// assistant, LLM bridge on curl, journal) against the same request made straight to the mock
/// LLM from this process, in the same run. Each daemon runs in a child process with its
/// assistant pointed at the mock; this process is the client of both paths, one request at a
/// time, alternating paths so drift affects all alike.
enum ChatScenario {
    /// About 100 bytes: a short question. The mock answers "You said: " + it.
    static let message = "clawchat-bench: how long does one streamed answer take through the daemon, compared with the model itself?"

    static func run(_ settings: ChatSettings, progress: Progress) throws(BenchError) -> ChatReport {
        guard let python = SSHBaseline.which("python3") else {
            return ChatReport(unavailable: "python3 is not installed (scripts/setup installs it)")
        }
        guard let script = MockLLMServer.findScript(settings.mockScript) else {
            return ChatReport(unavailable: settings.mockScript.map { "cannot read \($0)" }
                ?? "Tests/mock-llm/mock_llm.py not found from here or above this executable; pass --mock-llm PATH")
        }
        // One daemon keeps its state on disk, as an installed one does; the other on tmpfs, so
        // the difference between them is what the journal's fdatasync costs.
        let disk = try TempDirectory(prefix: "clawchat-bench-chat")
        let memory = LocalFile.isDirectory("/dev/shm") && access("/dev/shm", W_OK) == 0
            ? try TempDirectory(prefix: "clawchat-bench-chat", base: "/dev/shm") : nil
        return try withExtendedLifetime((disk, memory)) { () throws(BenchError) -> ChatReport in
            try run(settings, places: [disk] + (memory.map { [$0] } ?? []), python: python, script: script, progress: progress)
        }
    }

    private static func run(_ settings: ChatSettings, places: [TempDirectory], python: String, script: String,
                            progress: Progress) throws(BenchError) -> ChatReport {
        let mock = try MockLLMServer(python: python, script: script, dir: places[0].path)
        defer { mock.stop() }
        let url = mock.baseURL(settings.scenario)

        let loop: EventLoop
        let interruption: Interruption
        let multi: CurlMulti
        do {
            loop = try EventLoop()
            interruption = try Interruption(loop: loop)
            multi = try CurlMulti(loop: loop)
        } catch { throw BenchError("cannot set up the client: \(error)") }

        var daemons: [ChatDaemon] = []
        defer { for d in daemons { d.child.terminate() } }
        for place in places {
            daemons.append(try ChatDaemon(dir: place.path, llmBaseURL: url, cipher: settings.cipher, loop: loop,
                                          interruption: interruption))
        }

        var report = ChatReport(message: message, expectedReply: "You said: " + message, mockScript: script, python: python)
        progress.say("chat: warming up")
        for d in daemons {
            for _ in 0..<settings.warmup {
                _ = try d.chat(message, expected: report.expectedReply)
                try d.clear()
            }
        }
        // The direct path sends exactly what the daemon sent for the same message.
        let body = try lastChatBody(mock: mock, multi: multi, loop: loop)
        report.requestBodyBytes = body.count
        let direct = DirectChatClient(loop: loop, multi: multi, url: url + "/chat/completions", body: body)
        for _ in 0..<settings.warmup { _ = try direct.measure(expected: report.expectedReply) }

        report.paths = [ChatPath(name: "mock direct (curl multi from the bench)")] + daemons.map {
            let fs = fileSystem(of: $0.dir)
            return ChatPath(name: "ClawChat, state in \(AtomicFile.directory(of: $0.dir)) (\(fs))", stateDirectory: $0.dir,
                            fileSystem: fs)
        }
        for round in 0..<settings.rounds {
            _ = try httpExchange(HTTPRequest(method: "POST", url: mock.controlURL + "/_reset", body: []), multi: multi, loop: loop)
            var samples = [[ChatLatency]](repeating: [], count: report.paths.count)
            var cpu = [Double](repeating: 0, count: report.paths.count)
            for i in 0..<settings.requests {
                if i % 20 == 0 { progress.say("chat: round \(round + 1)/\(settings.rounds), request \(i + 1)/\(settings.requests)") }
                // Rotate which path goes first, so none always follows the same one.
                for k in 0..<report.paths.count {
                    let p = (i + round + k) % report.paths.count
                    if p == 0 {
                        samples[p].append(try direct.measure(expected: report.expectedReply))
                    } else {
                        let d = daemons[p - 1]
                        let c0 = d.child.cpuSeconds
                        samples[p].append(try d.chat(message, expected: report.expectedReply))
                        if let c0, let c1 = d.child.cpuSeconds { cpu[p] += c1 - c0 }
                        try d.clear()
                    }
                    if interruption.requested { throw BenchError("interrupted") }
                }
            }
            for d in daemons { try d.child.ensureRunning() }
            try mock.child.ensureRunning()
            for p in report.paths.indices {
                report.paths[p].rounds.append(samples[p])
                if p > 0 { report.paths[p].daemonCPU.append(cpu[p] / Double(settings.requests)) }
            }
        }
        return report
    }

    /// The body of the newest chat request in the mock's log.
    private static func lastChatBody(mock: MockLLMServer, multi: CurlMulti, loop: EventLoop) throws(BenchError) -> [UInt8] {
        let (status, bytes) = try httpExchange(HTTPRequest(url: mock.controlURL + "/_log"), multi: multi, loop: loop)
        guard status == 200, let events = (try? JSONValue.parse(bytes))?.arrayValue else {
            throw BenchError("the mock's /_log answered HTTP \(status) without a JSON array")
        }
        guard let request = events.last(where: {
            $0["event"]?.stringValue == "request" && $0["path"]?.stringValue?.hasSuffix("/chat/completions") == true
        }), let body = request["body"], body["messages"] != nil else {
            throw BenchError("the mock logged no chat request from the daemon")
        }
        return Array(body.encoded().utf8)
    }

    /// The type of the file system `path` is on ("ext4", "tmpfs"), from /proc/self/mounts: the
    /// longest mount point that contains it.
    static func fileSystem(of path: String) -> String {
        guard let bytes = try? AtomicFile.read("/proc/self/mounts") else { return "?" }
        var best = (mount: "", type: "?")
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 3 else { continue }
            let mount = String(f[1])
            let inside = mount == "/" || path == mount || path.hasPrefix(mount + "/")
            if inside && mount.count >= best.mount.count { best = (mount, String(f[2])) }
        }
        return best.type
    }
}

/// A daemon of the `chat` scenario: the `_echo-server` child with its assistant on the mock,
/// a device paired with it, and one session kept for the whole run, as an interactive client
/// keeps it.
final class ChatDaemon {
    let dir: String
    let child: ChildProcess
    let session: ClientSession
    private let loop: EventLoop
    private let interruption: Interruption

    init(dir: String, llmBaseURL: String, cipher: AEADCipher, loop: EventLoop, interruption: Interruption) throws(BenchError) {
        self.dir = dir
        self.loop = loop
        self.interruption = interruption
        let key = Random.bytes(count: 32)
        let keyFile = "\(dir)/bootstrap.key"
        do { try AtomicFile.write(Array(Base64.encode(key).utf8), to: keyFile, mode: 0o600) } catch {
            throw BenchError("cannot write the bootstrap key: \(error)")
        }
        child = try ChildProcess("ClawChat daemon (\(dir))", arguments: [
            "_echo-server", "--mode", "clawchat", "--dir", "\(dir)/daemon", "--bootstrap-key-file", keyFile,
            "--cipher", CipherChoice(cipher).rawValue, "--llm-base-url", llmBaseURL])
        _ = try child.waitForPort(file: "\(dir)/daemon/port")
        let secFile = try child.waitForFile("\(dir)/daemon/state/security/\(SecurityFile.fileName)", timeout: .seconds(10))
        let identity: ClientIdentity
        do {
            identity = try Pairing.run(fileBytes: secFile, bootstrapKey: .raw(SecureBytes(copying: key)), deviceName: "bench",
                                       identityPath: "\(dir)/client/identity", loop: loop, timeout: .seconds(10))
        } catch { throw BenchError("pairing with the daemon failed: \(error)") }
        do { session = try ClientSession(loop: loop, credentials: identity.credentials, servers: identity.servers) } catch {
            throw BenchError("cannot open the client session: \(error)")
        }
        var up = false
        session.onEvent = { if case .established = $0 { up = true } }
        session.start()
        loop.run(until: .seconds(10)) { up || interruption.requested }
        if interruption.requested { throw BenchError("interrupted") }
        guard up else { throw BenchError("no session with the daemon in \(dir) within 10 s") }
        session.onEvent = { _ in }
    }

    /// `clear`: the next chat goes out with no history, so every request has the same size.
    func clear() throws(BenchError) {
        let reply = try call(session.request("clear"), what: "clear")
        guard reply.params["cleared"] != nil else { throw BenchError("clear: the daemon answered \(jsonQuoted(reply.text))") }
    }

    /// One chat, timed from handing the request to the session until the first non-empty
    /// `partial` and until the reply. Throws unless the streamed text is `expected` and the
    /// daemon stored the exchange.
    func chat(_ text: String, expected: String) throws(BenchError) -> ChatLatency {
        let clock = loop.clock
        var first: Instant?
        var end = Instant.zero
        var streamed = ""
        let t0 = clock.now
        let request = session.request("chat", body: Array(text.utf8))
        request.onPartial = { piece in
            if first == nil, !piece.body.isEmpty { first = clock.now }
            streamed += piece.text
        }
        let reply = try call(request, what: "chat") { end = clock.now }
        guard let first, streamed == expected else {
            throw BenchError("chat: the daemon streamed \(jsonQuoted(streamed)), not \(jsonQuoted(expected))")
        }
        guard reply.params["stored"] == "true" else { throw BenchError("chat: the daemon did not store the exchange") }
        return ChatLatency(firstToken: (first - t0).seconds, full: (end - t0).seconds)
    }

    /// Runs the loop until `request` is answered; `done` runs as the answer arrives.
    private func call(_ request: OutgoingRequest, what: String, done: @escaping () -> Void = {}) throws(BenchError) -> Message {
        var outcome: Result<Message, RequestFailure>?
        request.onDone = {
            done()
            outcome = $0
        }
        loop.run(until: .seconds(10)) { outcome != nil || self.interruption.requested }
        if interruption.requested { throw BenchError("interrupted") }
        switch outcome {
        case .success(let m)?: return m
        case .failure(let e)?: throw BenchError("\(what) through the daemon in \(dir) failed: \(e)")
        case nil:
            request.cancel()
            throw BenchError("\(what) through the daemon in \(dir): no reply within 10 s")
        }
    }
}

// MARK: Report

extension ChatScenario {
    static func ms(_ seconds: Double) -> String { fixed(seconds * 1000, 2) }

    static func table(_ r: ChatReport, _ s: ChatSettings) -> String {
        if let why = r.unavailable { return "chat: NOT MEASURED, \(why)" }
        var t = Table(headers: ["path", "first token p50", "first token p99", "full reply p50", "full reply p99", "daemon CPU/chat"])
        let first: (ChatLatency) -> Double = { $0.firstToken }
        let full: (ChatLatency) -> Double = { $0.full }
        for p in r.paths {
            t.rows.append([
                p.name,
                spread(Summary(p.perRound(50, first)), ms), spread(Summary(p.perRound(99, first)), ms),
                spread(Summary(p.perRound(50, full)), ms), spread(Summary(p.perRound(99, full)), ms),
                p.daemonCPU.isEmpty ? "" : spread(Summary(p.daemonCPU), ms),
            ])
        }
        for p in r.paths.dropFirst() {
            t.rows.append([
                "overhead, state on \(p.fileSystem ?? "?")",
                spread(Summary(r.overhead(p, 50, first)), ms), spread(Summary(r.overhead(p, 99, first)), ms),
                spread(Summary(r.overhead(p, 50, full)), ms), spread(Summary(r.overhead(p, 99, full)), ms),
                "",
            ])
        }
        var text = "chat: \(s.requests) requests per round and path, one at a time, the paths taking turns; each answer is "
        text += "\(r.expectedReply.utf8.count) B streamed by the mock LLM in \(s.pieces) pieces, \(s.pieceDelayMs) ms apart;\n"
        text += "latency in ms from handing the request to the client library to the first non-empty piece and to the end of the "
        text += "reply; each cell is median (min–max) over the rounds of that round's percentile\n"
        text += t.render()
        text += "\noverhead = ClawChat minus the direct request of the same turn, then the percentile of those differences; "
        text += "difference of the medians: "
        text += r.paths.dropFirst().map { p in
            "state on \(p.fileSystem ?? "?") first token \(ms(Summary(r.percentileDifference(p, 50, first)).median)), "
                + "full reply \(ms(Summary(r.percentileDifference(p, 50, full)).median))"
        }.joined(separator: "; ")
        text += "\na `clear` follows every chat, so each request carries the system prompt and one user turn: "
        text += "\(r.requestBodyBytes) B of JSON, the same body on every path; "
        text += "the full reply through ClawChat waits for the journal and daily log (fdatasync each)"
        return text
    }

    static func json(_ r: ChatReport, _ s: ChatSettings) -> JSON {
        if let why = r.unavailable { return .object([("measured", .bool(false)), ("reason", .string(why))]) }
        let picks: [(String, (ChatLatency) -> Double)] = [("firstTokenSeconds", { $0.firstToken }), ("fullReplySeconds", { $0.full })]
        func percentiles(_ values: (Double) -> [Double]) -> JSON {
            .object([50.0, 90, 99].map { p in ("p\(Int(p))", .summary(Summary(values(p)))) })
        }
        return .object([
            ("measured", .bool(true)),
            ("requestsPerRound", .integer(s.requests)),
            ("warmupRequests", .integer(s.warmup)),
            ("pieces", .integer(s.pieces)),
            ("pieceDelayMs", .integer(s.pieceDelayMs)),
            ("messageBytes", .integer(r.message.utf8.count)),
            ("replyBytes", .integer(r.expectedReply.utf8.count)),
            ("requestBodyBytes", .integer(r.requestBodyBytes)),
            ("mock", .object([("script", .string(r.mockScript)), ("python", .string(r.python))])),
            ("paths", .array(r.paths.map { p in
                .object([
                    ("name", .string(p.name)),
                    ("stateDirectory", p.stateDirectory.map { .string($0) } ?? .number(.nan)),
                    ("fileSystem", p.fileSystem.map { .string($0) } ?? .number(.nan)),
                ] + picks.map { name, pick in (name, percentiles { p.perRound($0, pick) }) }
                  + [("daemonCPUSecondsPerChat", p.daemonCPU.isEmpty ? .number(.nan) : .summary(Summary(p.daemonCPU)))])
            })),
            ("overhead", .array(r.paths.dropFirst().map { p in
                .object([("fileSystem", .string(p.fileSystem ?? "?"))] + picks.map { name, pick in
                    (name, .object([
                        ("pairedDifferences", percentiles { r.overhead(p, $0, pick) }),
                        ("differenceOfPercentiles", percentiles { r.percentileDifference(p, $0, pick) }),
                    ]))
                })
            })),
        ])
    }
}
