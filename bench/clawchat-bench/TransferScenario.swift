import ClawChannel
import ClawClient
import ClawCrypto
import ClawDaemon
import ClawReactor
import ClawRelay
import ClawTransport

/// How the `transfer` scenario runs.
struct TransferSettings {
    var rounds: Int
    /// Bytes of each transfer.
    var bytes: Int
    /// Loss of the lossy relay path, percent of datagrams each way.
    var relayLoss: Double
    /// Also measure the relay path with loss and delay (`TransferScenario.delayedPath`).
    var delayedPath: Bool
    /// Bytes of each transfer on that path: with a real round trip, loss limits the rate to
    /// about 1 MB/s, so it moves less than the others to finish in reasonable time.
    var delayedBytes: Int
    /// A transfer still running after this is abandoned and reported as timed out.
    var timeout: Duration
    var cipher: AEADCipher
    /// Also run the scp baseline of the file rows (`--no-scp` leaves it out).
    var scp: Bool

    /// Direct; through the relay without impairment (what the extra hop costs); with loss; and
    /// with loss and delay if asked.
    var paths: [TransferPath] {
        var paths = [TransferPath(relay: nil, bytes: bytes), TransferPath(relay: .init(loss: 0, delayMs: 0), bytes: bytes)]
        if relayLoss > 0 { paths.append(TransferPath(relay: .init(loss: relayLoss, delayMs: 0), bytes: bytes)) }
        if delayedPath { paths.append(TransferPath(relay: TransferScenario.delayedPath, bytes: delayedBytes)) }
        return paths
    }
}

/// How the bench reaches the daemon: straight to its port, or through the impairment relay.
struct TransferPath {
    struct Impairment {
        /// Percent of datagrams dropped, each way.
        var loss: Double
        /// Added one-way, each way.
        var delayMs: Double
    }

    /// Nil: no relay.
    var relay: Impairment?
    /// Bytes of each transfer on this path.
    var bytes: Int

    var name: String {
        guard let relay else { return "direct" }
        var parts: [String] = []
        if relay.loss > 0 { parts.append("\(plain(relay.loss))% loss") }
        if relay.delayMs > 0 { parts.append("\(plain(relay.delayMs)) ms delay") }
        return "relay, " + (parts.isEmpty ? "no impairment" : parts.joined(separator: ", "))
    }

    /// 2 rather than 2.0; 0.5 as it is.
    private func plain(_ x: Double) -> String { x == x.rounded() ? String(Int(x)) : "\(x)" }
}

/// Download runs the daemon's diagnostic `source`, upload its `sink` (PROTOCOL.md 10.1).
enum TransferDirection: String, CaseIterable {
    case download
    case upload
}

/// What one transfer saw.
struct TransferSample {
    var seconds: Double
    var megabytesPerSecond: Double
    /// CPU time of the daemon over wall time (1.0 = one core saturated).
    var daemonCPU: Double
    /// The same for this process, the client.
    var benchCPU: Double
    /// The same for the relay process; NaN on the direct path.
    var relayCPU: Double
    /// Peak RSS during the transfer (`VmHWM`, reset when it starts), KiB.
    var daemonPeakKiB: Int
    var benchPeakKiB: Int
    /// False if the kernel refused the reset: the peaks are then since the process started.
    var peakReset: Bool
    /// The client's transport: packets it sent, and those it declared lost and sent again.
    var packetsSent: Int
    var packetsLost: Int
}

/// The rounds of one path and direction.
struct TransferSeries {
    var samples: [TransferSample] = []
    /// A round hit the timeout; the later rounds of this series were skipped.
    var timedOut = false
}

/// Everything measured on one path.
struct TransferResult {
    var path: TransferPath
    var download = TransferSeries()
    var upload = TransferSeries()
    /// What the relay did over all rounds, by direction (empty on the direct path, or if the
    /// relay could not report).
    var relay: [RelayDirection: RelayTally] = [:]

    subscript(direction: TransferDirection) -> TransferSeries {
        get { direction == .download ? download : upload }
        set { if direction == .download { download = newValue } else { upload = newValue } }
    }
}

/// Everything the `transfer` scenario measured.
struct TransferReport {
    /// The raw stream (`source`/`sink`) on each path.
    var paths: [TransferResult]
    /// Where the temporary directory was, and so the test file and every copy of it.
    var place: ScratchPlace
    /// Bytes of the test file.
    var fileBytes: Int
    /// ClawChat's file manager first, then scp with each cipher when the baseline ran.
    var files: [FileRow]
    var scp: ScpStatus
    /// The private sshd and client, when the baseline ran.
    var ssh: SSHFacts?
}

/// What the scp rows ran against.
struct SSHFacts {
    var version: String
    var defaultCipher: String
    var sftpSubsystem: String
    var port: UInt16
}

/// `transfer`: bulk bytes through the real daemon over the reliable stream transport, both ways,
/// on loopback straight to the daemon and through the impairment relay. The daemon and each
/// relay run in child processes; this process is the client. Every transfer runs on a fresh
/// session and is checked end to end by SHA-256.
enum TransferScenario {
    /// The last path (`--no-delayed-path` leaves it out): some loss and a round trip of 20 ms.
    static let delayedPath = TransferPath.Impairment(loss: 1, delayMs: 10)
    /// Upload bytes kept queued ahead of the acknowledgements, as `source` does on the daemon's side.
    static let uploadQueue = 2 << 20
    static let chunkSize = DiagnosticHandlers.chunkSize

    /// The scp rows: the default cipher, then this one.
    static let scpCiphers: [String?] = [nil, "aes128-gcm@openssh.com"]

    static func run(_ settings: TransferSettings, progress: Progress) throws(BenchError) -> TransferReport {
        // The test file, and at most two copies of it at a time (upload and download, or scp's).
        let place = ScratchPlace.choose(needed: 4 * settings.bytes + (256 << 20))
        let dir = try TempDirectory(prefix: "clawchat-bench", base: place.base)
        // The directory goes only after every child is gone (the defers below run first).
        return try withExtendedLifetime(dir) { () throws(BenchError) -> TransferReport in
            try run(settings, in: dir, place: place, progress: progress)
        }
    }

    private static func run(_ settings: TransferSettings, in dir: TempDirectory, place: ScratchPlace,
                            progress: Progress) throws(BenchError) -> TransferReport {
        let key = Random.bytes(count: 32)
        let keyFile = "\(dir.path)/bootstrap.key"
        do { try AtomicFile.write(Array(Base64.encode(key).utf8), to: keyFile, mode: 0o600) } catch {
            throw BenchError("cannot write the bootstrap key: \(error)")
        }
        let daemon = try ChildProcess("ClawChat daemon", arguments: [
            "_echo-server", "--mode", "clawchat", "--dir", "\(dir.path)/daemon",
            "--bootstrap-key-file", keyFile, "--cipher", CipherChoice(settings.cipher).rawValue,
            "--files", "\(dir.path)/shared"])
        defer { daemon.terminate() }
        let daemonPort = try daemon.waitForPort(file: "\(dir.path)/daemon/port")
        let secFile = try daemon.waitForFile("\(dir.path)/daemon/state/security/\(SecurityFile.fileName)",
                                             timeout: .seconds(10))

        // One relay per impaired path, each with its own seed, alive for the whole run.
        let paths = settings.paths
        var relays: [ChildProcess?] = []
        defer { for relay in relays { relay?.terminate() } }
        var addresses: [SocketAddress] = []
        for (i, path) in paths.enumerated() {
            guard let imp = path.relay else {
                relays.append(nil)
                addresses.append(.loopback(port: daemonPort))
                continue
            }
            let relay = try ChildProcess("relay (\(path.name))", arguments: [
                "_relay", "--dir", "\(dir.path)/relay\(i)", "--upstream-port", "\(daemonPort)",
                "--loss", "\(imp.loss)", "--delay-ms", "\(imp.delayMs)", "--seed", "\(i + 1)"])
            relays.append(relay)
            addresses.append(.loopback(port: try relay.waitForPort(file: "\(dir.path)/relay\(i)/port")))
        }

        let loop: EventLoop
        let interruption: Interruption
        do {
            loop = try EventLoop()
            interruption = try Interruption(loop: loop)
        } catch { throw BenchError("cannot set up the client: \(error)") }
        let identity: ClientIdentity
        do {
            identity = try Pairing.run(fileBytes: secFile, bootstrapKey: .raw(SecureBytes(copying: key)), deviceName: "bench",
                                       identityPath: "\(dir.path)/client/identity", loop: loop, timeout: .seconds(10))
        } catch { throw BenchError("pairing with the daemon failed: \(error)") }

        progress.say("transfer: hashing the pattern")
        let meter = TransferMeter(loop: loop, credentials: identity.credentials, daemon: daemon, settings: settings,
                                  interruption: interruption)

        // The file rows: a file of random bytes, outside the daemon's shared folder.
        progress.say("transfer: writing the \(settings.bytes / 1_000_000) MB test file")
        let source = "\(dir.path)/test-file.bin"
        try LocalFile.writeRandom(source, bytes: settings.bytes)
        try LocalFile.makeDirectory("\(dir.path)/downloads")
        let filePaths = FileRowPaths(source: source, sha256: try LocalFile.sha256(source), bytes: settings.bytes,
                                     sharedFolder: "\(dir.path)/shared", downloads: "\(dir.path)/downloads")

        // The scp baseline: a private sshd, ended by pid on every path out of here.
        var scpStatus = ScpStatus.skipped
        var ssh: SSHBaseline?
        defer { ssh?.stop() }
        if settings.scp {
            switch SSHBaseline.find() {
            case .failure(let missing): scpStatus = .unavailable(missing.text)
            case .success(let programs):
                progress.say("transfer: starting a private sshd")
                do {
                    ssh = try SSHBaseline(programs: programs, dir: "\(dir.path)/ssh")
                    scpStatus = .measured
                } catch { scpStatus = .failed(error.description) }
            }
        }
        var files = [FileRow(tool: .clawchat)]
        if ssh != nil { files += scpCiphers.map { FileRow(tool: .scp(cipher: $0)) } }

        var results = paths.map { TransferResult(path: $0) }
        for round in 0..<settings.rounds {
            for i in results.indices {
                for direction in TransferDirection.allCases where !results[i][direction].timedOut {
                    progress.say("transfer: round \(round + 1)/\(settings.rounds), \(paths[i].name), \(direction)")
                    let sample = try meter.measure(direction, path: paths[i], via: addresses[i], relay: relays[i])
                    try daemon.ensureRunning()
                    try relays[i]?.ensureRunning()
                    if let sample { results[i][direction].samples.append(sample) } else { results[i][direction].timedOut = true }
                }
            }
            // Upload first: the download fetches what was uploaded.
            for i in files.indices {
                switch files[i].tool {
                case .clawchat:
                    for direction in [TransferDirection.upload, .download] where files[i].live(direction) {
                        progress.say("transfer: round \(round + 1)/\(settings.rounds), file \(direction)")
                        let sample = try meter.measureFile(direction, files: filePaths, round: round, via: .loopback(port: daemonPort))
                        try daemon.ensureRunning()
                        if let sample { files[i][direction].samples.append(sample) } else { files[i][direction].timedOut = true }
                    }
                case .scp(let cipher):
                    guard let ssh else { continue }
                    progress.say("transfer: round \(round + 1)/\(settings.rounds), ssh login (\(ssh.cipherName(cipher)))")
                    if let s = try ssh.loginSeconds(cipher: cipher) { files[i].loginSeconds.append(s) }
                    for direction in [TransferDirection.upload, .download] where files[i].live(direction) {
                        progress.say("transfer: round \(round + 1)/\(settings.rounds), scp \(direction) (\(ssh.cipherName(cipher)))")
                        switch try ssh.transfer(direction, cipher: cipher, source: source, sha256: filePaths.sha256,
                                                bytes: settings.bytes, timeout: settings.timeout, loop: loop,
                                                interruption: interruption) {
                        case .sample(let sample): files[i][direction].samples.append(sample)
                        case .timedOut: files[i][direction].timedOut = true
                        case .failed(let why): files[i][direction].failure = why
                        }
                    }
                }
            }
        }
        let facts = ssh.map { SSHFacts(version: $0.version, defaultCipher: $0.defaultCipher, sftpSubsystem: $0.sftpSubsystem, port: $0.port) }
        ssh?.stop()
        // A relay writes its counters when it ends.
        for i in results.indices {
            guard let relay = relays[i] else { continue }
            relay.terminate()
            if let bytes = try? AtomicFile.read("\(dir.path)/relay\(i)/counters") { results[i].relay = RelayTally.read(bytes) }
        }
        return TransferReport(paths: results, place: place, fileBytes: settings.bytes, files: files, scp: scpStatus, ssh: facts)
    }
}

/// Runs one transfer at a time, each on a new session: a handshake (not timed), then one
/// `source` or `sink` request, timed from the request to its reply, then verified.
final class TransferMeter {
    let loop: EventLoop
    private let credentials: ClientCredentials
    let daemon: ChildProcess
    let settings: TransferSettings
    let interruption: Interruption
    /// SHA-256 (hex) of the first N bytes of the `source` pattern, for each path's N: what the
    /// daemon sends on download, and what this process sends on upload.
    private var patternDigests: [Int: String] = [:]

    init(loop: EventLoop, credentials: ClientCredentials, daemon: ChildProcess, settings: TransferSettings,
         interruption: Interruption) {
        self.loop = loop
        self.credentials = credentials
        self.daemon = daemon
        self.settings = settings
        self.interruption = interruption
        for total in Set(settings.paths.map(\.bytes)) {
            var hasher = SHA256.Hasher()
            var k: UInt64 = 0
            while Int(k) * TransferScenario.chunkSize < total {
                hasher.update(Self.chunk(k, of: total))
                k += 1
            }
            patternDigests[total] = hexString(hasher.finalize())
        }
    }

    /// Chunk `k` of a transfer of `total` bytes: the `source` pattern, the last chunk cut short.
    static func chunk(_ k: UInt64, of total: Int) -> [UInt8] {
        let offset = Int(k) * TransferScenario.chunkSize
        return DiagnosticHandlers.sourceChunk(k, length: min(TransferScenario.chunkSize, total - offset))
    }

    /// One transfer; nil if it did not finish within the timeout. Throws if the daemon's
    /// answer or the bytes received are not what was sent.
    func measure(_ direction: TransferDirection, path: TransferPath, via server: SocketAddress,
                 relay: ChildProcess?) throws(BenchError) -> TransferSample? {
        let what = "\(direction) on \(path.name)"
        let session = try connect(to: server, what: what)
        let total = path.bytes
        let patternDigest = patternDigests[total] ?? ""
        let peakReset = PeakMemory.reset("\(daemon.pid)") && PeakMemory.reset("self")

        let t0 = loop.clock.now, c0 = CPUUsage.now(), d0 = daemon.cpuSeconds, r0 = relay?.cpuSeconds
        var outcome: Result<Message, RequestFailure>?
        var check = DownloadCheck()
        let request: OutgoingRequest
        switch direction {
        case .download:
            request = session.request("source", params: ["bytes": String(total)])
            request.onData = { check.take($0) }
        case .upload:
            request = session.request("sink", finish: false)
            var sent = 0
            var k: UInt64 = 0
            request.onWritable = { [unowned request] in
                guard sent < total else { return }
                while sent < total, request.queuedBytes < TransferScenario.uploadQueue, !request.isDone {
                    let chunk = Self.chunk(k, of: total)
                    request.data(chunk)
                    sent += chunk.count
                    k += 1
                }
                if sent == total { request.finish() }
            }
            request.onWritable()
        }
        request.onDone = { outcome = $0 }
        let finished = loop.run(until: settings.timeout) { outcome != nil || interruption.requested }
        let t1 = loop.clock.now, c1 = CPUUsage.now(), d1 = daemon.cpuSeconds, r1 = relay?.cpuSeconds
        let stats = session.requests.connection?.transport.stats
        request.onData = { _ in }
        request.onWritable = {}

        if interruption.requested || !finished {
            request.cancel()
            loop.run(until: .milliseconds(200)) { false }   // lets the reset reach the daemon
            if interruption.requested { throw BenchError("interrupted") }
            return nil
        }
        let reply: Message
        switch outcome {
        case .success(let m)?: reply = m
        case .failure(let e)?: throw BenchError("\(what) failed: \(e)")
        case nil: throw BenchError("\(what): no outcome")
        }
        guard reply.params["bytes"] == String(total) else {
            throw BenchError("\(what): the daemon counted \(reply.params["bytes"] ?? "no") bytes, not \(total)")
        }
        guard reply.params["sha256"] == patternDigest else {
            throw BenchError("\(what): the daemon's SHA-256 \(reply.params["sha256"] ?? "(none)") is not the pattern's \(patternDigest)")
        }
        if direction == .download {
            guard check.received == total, check.misplaced == nil else {
                throw BenchError("\(what): received \(check.received) of \(total) bytes, first wrong chunk \(check.misplaced.map(String.init) ?? "none")")
            }
            guard hexString(check.hasher.finalize()) == patternDigest else {
                throw BenchError("\(what): the SHA-256 of the bytes received is not the daemon's")
            }
        }

        let wall = (t1 - t0).seconds
        func share(_ a: Double?, _ b: Double?) -> Double { a.flatMap { a in b.map { ($0 - a) / wall } } ?? .nan }
        return TransferSample(
            seconds: wall, megabytesPerSecond: Double(total) / wall / 1e6,
            daemonCPU: share(d0, d1), benchCPU: (c1 - c0).total / wall, relayCPU: share(r0, r1),
            daemonPeakKiB: daemon.peakKiB ?? 0, benchPeakKiB: PeakMemory.kiB(of: "self") ?? 0, peakReset: peakReset,
            packetsSent: stats?.packetsSent ?? 0, packetsLost: stats?.packetsLost ?? 0)
    }

    /// A session with the paired identity, established (handshake done) through `server`.
    func connect(to server: SocketAddress, what: String) throws(BenchError) -> ClientSession {
        let session: ClientSession
        do { session = try ClientSession(loop: loop, credentials: credentials, servers: [server]) } catch {
            throw BenchError("cannot open the client session: \(error)")
        }
        var up = false
        session.onEvent = { if case .established = $0 { up = true } }
        session.start()
        loop.run(until: .seconds(10)) { up || self.interruption.requested }
        if interruption.requested { throw BenchError("interrupted") }
        guard up else { throw BenchError("\(what): no session with the daemon through \(server) within 10 s") }
        session.onEvent = { _ in }
        return session
    }
}

/// What `source` sends, checked as it arrives: every data message must be the next chunk of the
/// pattern, and the SHA-256 of all of them must be the one the daemon reports.
struct DownloadCheck {
    var hasher = SHA256.Hasher()
    var received = 0
    /// The first chunk that was not the expected one.
    var misplaced: UInt64?

    mutating func take(_ bytes: [UInt8]) {
        let k = UInt64(received / TransferScenario.chunkSize)
        if misplaced == nil, received % TransferScenario.chunkSize != 0
            || bytes != DiagnosticHandlers.sourceChunk(k, length: bytes.count) { misplaced = k }
        hasher.update(bytes)
        received += bytes.count
    }
}

// MARK: Report

extension TransferScenario {
    static func table(_ report: TransferReport, _ s: TransferSettings) -> String {
        pathTable(report.paths, s) + "\n\n" + fileTable(report, s)
    }

    static func json(_ report: TransferReport, _ s: TransferSettings) -> JSON {
        guard case .object(var fields) = pathJSON(report.paths, s) else { return pathJSON(report.paths, s) }
        fields.append(("files", fileJSON(report, s)))
        return .object(fields)
    }

    private static func pathTable(_ results: [TransferResult], _ s: TransferSettings) -> String {
        var t = Table(headers: ["path", "direction", "MB", "MB/s", "daemon CPU", "bench CPU", "relay CPU",
                                "daemon peak RSS", "bench peak RSS"], leftAligned: [0, 1])
        for r in results {
            for direction in TransferDirection.allCases {
                let series = r[direction]
                let samples = series.samples
                func cpu(_ pick: (TransferSample) -> Double) -> String {
                    let values = samples.map(pick)
                    return values.isEmpty || values.contains(where: \.isNaN) ? "-" : spread(Summary(values), percent)
                }
                func peak(_ pick: (TransferSample) -> Int) -> String {
                    samples.map(pick).max().map { fixed(Double($0) / 1024, 1) + " MiB" } ?? "-"
                }
                var rate = samples.isEmpty ? "" : spread(Summary(samples.map(\.megabytesPerSecond))) { fixed($0, 1) }
                if series.timedOut { rate += (rate.isEmpty ? "" : ", then ") + "timed out (> \(Int(s.timeout.seconds)) s)" }
                t.rows.append([r.path.name, direction.rawValue, "\(r.path.bytes / 1_000_000)", rate, cpu(\.daemonCPU), cpu(\.benchCPU), cpu(\.relayCPU),
                               peak(\.daemonPeakKiB), peak(\.benchPeakKiB)])
            }
        }
        var text = "transfer, raw stream: MB moved by each transfer through the daemon on 127.0.0.1 and its rate "
        text += "(download: source, upload: sink), each on a fresh session, checked by SHA-256; MB = 10^6 bytes;\n"
        text += "CPU is each process's CPU time over the transfer's wall time (100% = one core); peak RSS is VmHWM "
        text += "during the transfer, the highest of the rounds; the relay is a child process (ClawRelay's UDPRelay)\n"
        text += t.render()
        if results.contains(where: { r in TransferDirection.allCases.contains { r[$0].samples.contains { !$0.peakReset } } }) {
            text += "\nthe kernel refused to reset VmHWM (/proc/PID/clear_refs): some peaks are since the process started"
        }
        let relayed = results.filter { !$0.relay.isEmpty }
        if !relayed.isEmpty {
            text += "\nrelay drops (all rounds, lost by the model; to the daemon / to the bench): "
            text += relayed.map { r in
                let both = [RelayDirection.toServer, .toClient].map { d in
                    r.relay[d].map { percentOf($0.lost, $0.received) + ($0.otherDrops > 0 ? " + \($0.otherDrops) not forwarded" : "") } ?? "-"
                }
                return "\(r.path.name): \(both.joined(separator: " / "))"
            }.joined(separator: "; ")
        }
        return text
    }

    /// "2.01% of 151k".
    private static func percentOf(_ part: Int, _ whole: Int) -> String {
        whole > 0 ? fixed(Double(part) / Double(whole) * 100, 2) + "% of " + compact(Double(whole)) : "-"
    }

    private static func pathJSON(_ results: [TransferResult], _ s: TransferSettings) -> JSON {
        func summary(_ values: [Double]) -> JSON {
            values.isEmpty || values.contains(where: \.isNaN) ? .number(.nan) : .summary(Summary(values))
        }
        func series(_ x: TransferSeries) -> JSON {
            let samples = x.samples
            return .object([
                ("megabytesPerSecond", summary(samples.map(\.megabytesPerSecond))),
                ("seconds", summary(samples.map(\.seconds))),
                ("daemonCPU", summary(samples.map(\.daemonCPU))),
                ("benchCPU", summary(samples.map(\.benchCPU))),
                ("relayCPU", summary(samples.map(\.relayCPU))),
                ("daemonPeakRSSKiB", .array(samples.map { .number(Double($0.daemonPeakKiB)) })),
                ("benchPeakRSSKiB", .array(samples.map { .number(Double($0.benchPeakKiB)) })),
                ("peakRSSIsPerTransfer", .bool(samples.allSatisfy(\.peakReset))),
                ("benchPacketsSent", .array(samples.map { .number(Double($0.packetsSent)) })),
                ("benchPacketsDeclaredLost", .array(samples.map { .number(Double($0.packetsLost)) })),
                ("timedOut", .bool(x.timedOut)),
            ])
        }
        func tally(_ t: RelayTally?) -> JSON {
            guard let t else { return .number(.nan) }
            return .object([("received", .integer(t.received)), ("lost", .integer(t.lost)), ("otherDrops", .integer(t.otherDrops))])
        }
        return .object([
            ("chunkBytes", .integer(chunkSize)),
            ("timeoutSeconds", .number(s.timeout.seconds)),
            ("paths", .array(results.map { r in
                .object([
                    ("name", .string(r.path.name)),
                    ("bytesPerTransfer", .integer(r.path.bytes)),
                    ("relay", r.path.relay.map { .object([("lossPercent", .number($0.loss)), ("delayMs", .number($0.delayMs))]) }
                        ?? .number(.nan)),
                    ("download", series(r.download)),
                    ("upload", series(r.upload)),
                    ("relayToDaemon", tally(r.relay[.toServer])),
                    ("relayToBench", tally(r.relay[.toClient])),
                ])
            })),
        ])
    }
}
