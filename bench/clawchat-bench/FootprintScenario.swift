import ClawChannel
import ClawCrypto
import ClawReactor
import Glibc

/// How the `footprint` scenario runs.
struct FootprintSettings {
    var rounds: Int
    /// Sessions held at the end of each round.
    var sessions: Int
    /// How long the last round holds every session, keepalives running, before it counts them.
    var hold: Duration
    var cipher: AEADCipher
    /// `--clawchatd`: the daemon to measure, else the one next to this executable.
    var clawchatd: String?

    /// The session counts at which memory is read: 0, a tenth, half, all.
    var checkpoints: [Int] { Array(Set([0, sessions / 10, sessions / 2, sessions])).sorted() }
}

/// What one round read: each with a fresh daemon.
struct FootprintRound {
    /// A daemon with no paired device and no session.
    var fresh: ResidentMemory
    /// The daemon with every device paired, at each of `FootprintSettings.checkpoints`.
    var atSessions: [ResidentMemory] = []
    /// After the hold (last round only).
    var afterHold: ResidentMemory?
    /// After one message connection per session.
    var withConnections: ResidentMemory?
    /// What the daemon's status said at the end of the round.
    var status: FootprintStatus

    /// Memory just before the message connections were opened.
    var beforeConnections: ResidentMemory { afterHold ?? atSessions[atSessions.count - 1] }
}

/// What `clawchatd status --json` said about the sessions.
struct FootprintStatus {
    var pairedDevices = 0
    var sessions = 0
    /// Sessions with a message connection.
    var connections = 0
    /// The longest time since the daemon last heard from one of the sessions, ms.
    var quietestMs = 0.0
    var rateLimited = 0
}

/// The clients' side of the hold.
struct HoldResult {
    var seconds: Double
    var sessions: Int
    /// Clients whose keepalives were answered at least once during the hold.
    var answered = 0
    var keepaliveAnswers = 0
    /// Clients whose channel declared the daemon gone during the hold.
    var lost = 0
}

struct FootprintReport {
    /// Why nothing was measured (no clawchatd binary); nil when measured.
    var unavailable: String?
    var daemon = ""
    var binaryBytes = 0
    /// "dynamic" or "static": whether the daemon maps libswiftCore.so.
    var stdlib = ""
    var rounds: [FootprintRound] = []
    var hold: HoldResult?
    /// Echo requests (one per session, the first on its message connection) that failed.
    var failedConnections = 0
}

/// `footprint`: the resident memory of a release `clawchatd`, run as a child process with its
/// real configuration (assistant, cron, file manager), idle and then holding up to
/// `sessions` established sessions of paired devices. The devices are written into its state
/// directory before it starts; this process holds their sessions, each on its own socket.
enum FootprintScenario {
    /// Handshakes started per second: below the daemon's global limit (500 a second, a burst of
    /// 100), so none is refused and the test is not paced by retries.
    static let handshakesPerSecond = HandshakeLimits().globalPerSecond * 0.8

    static func run(_ settings: FootprintSettings, progress: Progress) throws(BenchError) -> FootprintReport {
        let daemonPath = settings.clawchatd ?? "\(MockLLMServer.executableDirectory())/clawchatd"
        guard access(daemonPath, X_OK) == 0 else {
            if settings.clawchatd != nil { throw BenchError("\(daemonPath) is not an executable") }
            return FootprintReport(unavailable: "no clawchatd next to this executable (\(daemonPath)); build it with "
                + "`swift build -c release --product clawchatd` (scripts/bench does), or pass --clawchatd PATH")
        }
        try ensureOpenFiles(settings.sessions + 256)
        let dir = try TempDirectory(prefix: "clawchat-bench-footprint")
        return try withExtendedLifetime(dir) { () throws(BenchError) -> FootprintReport in
            try run(settings, daemonPath: daemonPath, dir: dir.path, progress: progress)
        }
    }

    private static func run(_ settings: FootprintSettings, daemonPath: String, dir: String,
                            progress: Progress) throws(BenchError) -> FootprintReport {
        let loop: EventLoop
        let interruption: Interruption
        do {
            loop = try EventLoop()
            interruption = try Interruption(loop: loop)
        } catch { throw BenchError("cannot set up the clients: \(error)") }
        let keyFile = "\(dir)/bootstrap.key"
        do { try AtomicFile.write(Array(Base64.encode(Random.bytes(count: 32)).utf8), to: keyFile, mode: 0o600) } catch {
            throw BenchError("cannot write the bootstrap key: \(error)")
        }
        progress.say("footprint: making \(settings.sessions) device keys")
        let cipher = settings.cipher
        let devices = try BenchDevices(count: settings.sessions, cipher: cipher, scratch: dir)
        let wait = Waiter(loop: loop, interruption: interruption)

        var report = FootprintReport(daemon: daemonPath, binaryBytes: LocalFile.size(daemonPath) ?? 0)
        for round in 0..<settings.rounds {
            let last = round == settings.rounds - 1
            let base = "\(dir)/round\(round + 1)"
            try LocalFile.makeDirectory(base)
            func say(_ what: String) { progress.say("footprint: round \(round + 1)/\(settings.rounds), \(what)") }

            say("idle daemon, no device")
            let fresh: ResidentMemory
            do {
                let daemon = try FootprintDaemon(executable: daemonPath, dir: "\(base)/fresh", keyFile: keyFile, cipher: cipher, wait: wait)
                defer { daemon.child.terminate() }
                report.stdlib = daemon.stdlib
                fresh = try wait.settled(daemon)
            }

            try devices.writeState("\(base)/paired/state")
            let daemon = try FootprintDaemon(executable: daemonPath, dir: "\(base)/paired", keyFile: keyFile, cipher: cipher, wait: wait)
            defer { daemon.child.terminate() }
            var clients: [HeldSession] = []
            defer { clients = [] }
            var atSessions: [ResidentMemory] = []
            for target in settings.checkpoints {
                say("\(target) sessions")
                while clients.count < target {
                    let c = try HeldSession(loop: loop, credentials: devices.credentials[clients.count], server: daemon.address,
                                            index: clients.count)
                    clients.append(c)
                    c.start()
                    // Paced: a few handshakes per loop pass, the loop running in between.
                    if clients.count % 4 == 0 { try wait.run(.nanoseconds(Int64(4e9 / handshakesPerSecond))) }
                }
                try wait.until(.seconds(Int64(10 + target / 100)), "\(target) sessions established") {
                    clients.allSatisfy(\.established)
                }
                try daemon.child.ensureRunning()
                atSessions.append(try wait.settled(daemon))
            }

            var afterHold: ResidentMemory?
            if last && settings.hold > .zero {
                say("holding \(clients.count) sessions for \(Int(settings.hold.seconds)) s")
                for c in clients { c.resetCounters() }
                try wait.run(settings.hold)
                try daemon.child.ensureRunning()
                report.hold = HoldResult(seconds: settings.hold.seconds, sessions: clients.count,
                                         answered: clients.filter { $0.keepaliveAnswers > 0 }.count,
                                         keepaliveAnswers: clients.reduce(0) { $0 + $1.keepaliveAnswers },
                                         lost: clients.filter { $0.lost > 0 }.count)
                afterHold = try wait.settled(daemon)
            }

            say("one message connection per session")
            var answered = 0, failed = 0
            for (i, c) in clients.enumerated() {
                c.openConnection { ok in if ok { answered += 1 } else { failed += 1 } }
                if i % 10 == 9 { try wait.run(.milliseconds(10)) }
            }
            try wait.until(.seconds(Int64(10 + clients.count / 100)), "the echo requests answered") {
                answered + failed == clients.count
            }
            report.failedConnections += failed
            let withConnections = try wait.settled(daemon)

            let status = try daemon.status()
            report.rounds.append(FootprintRound(fresh: fresh, atSessions: atSessions, afterHold: afterHold,
                                                withConnections: withConnections, status: status))
        }
        return report
    }
}

/// Runs the bench's loop while waiting, so the held sessions keep answering and ticking.
struct Waiter {
    let loop: EventLoop
    let interruption: Interruption

    func run(_ duration: Duration) throws(BenchError) {
        loop.run(until: duration) { interruption.requested }
        if interruption.requested { throw BenchError("interrupted") }
    }

    func until(_ timeout: Duration, _ what: String, _ condition: () -> Bool) throws(BenchError) {
        let ok = loop.run(until: timeout) { interruption.requested || condition() }
        if interruption.requested { throw BenchError("interrupted") }
        guard ok else { throw BenchError("footprint: \(what) did not happen within \(Int(timeout.seconds)) s") }
    }

    /// The daemon's memory once it has settled: after at least 0.5 s, the first of two readings
    /// 250 ms apart that agree, or the last one after 5 s.
    func settled(_ daemon: FootprintDaemon) throws(BenchError) -> ResidentMemory {
        try run(.milliseconds(500))
        var previous = try daemon.memory()
        for _ in 0..<16 {
            try run(.milliseconds(250))
            let now = try daemon.memory()
            if now.vmRSSKiB == previous.vmRSSKiB && now.rssAnonKiB == previous.rssAnonKiB { return now }
            previous = now
        }
        return previous
    }
}

/// A release `clawchatd run` in a child process: no configuration or environment file, a private
/// state directory, 127.0.0.1 on a port the kernel picks (its status says which), log level
/// warning. Started through `setpriv --pdeathsig TERM` when util-linux has it, so it dies with
/// the bench; ended by pid otherwise.
final class FootprintDaemon {
    let child: ChildProcess
    let executable: String
    let stateDir: String
    let address: SocketAddress
    /// "dynamic" when libswiftCore.so is mapped, else "static".
    let stdlib: String

    init(executable: String, dir: String, keyFile: String, cipher: AEADCipher, wait: Waiter) throws(BenchError) {
        self.executable = executable
        stateDir = "\(dir)/state"
        try LocalFile.makeDirectory(dir)
        let args = ["run", "--config", "", "--env-file", "", "--state-dir", stateDir, "--listen", "127.0.0.1:0",
                    "--bootstrap-key-file", keyFile, "--cipher", CipherChoice(cipher).rawValue, "--log-level", "warning"]
        if let setpriv = SSHBaseline.which("setpriv") {
            child = try ChildProcess("clawchatd", executable: setpriv, arguments: ["--pdeathsig", "TERM", "--", executable] + args,
                                     output: "\(dir)/clawchatd.log")
        } else {
            child = try ChildProcess("clawchatd", executable: executable, arguments: args, output: "\(dir)/clawchatd.log")
        }
        // The pid file is written once the daemon listens and its control socket is open.
        _ = try child.waitForFile("\(stateDir)/clawchatd.pid", timeout: .seconds(10))
        guard let listen = try Self.status(executable: executable, stateDir: stateDir)["listen"]?.stringValue,
              let address = try? SocketAddress(parsing: listen) else {
            throw BenchError("clawchatd's status names no listening address")
        }
        self.address = address
        let maps = (try? AtomicFile.read("/proc/\(child.pid)/maps")).map { String(decoding: $0, as: UTF8.self) } ?? ""
        stdlib = maps.contains("libswiftCore.so") ? "dynamic" : "static"
    }

    func memory() throws(BenchError) -> ResidentMemory {
        try child.ensureRunning()
        guard let m = ResidentMemory.of("\(child.pid)") else { throw BenchError("cannot read /proc/\(child.pid)/status") }
        return m
    }

    /// The sessions as `clawchatd status --json` reports them.
    func status() throws(BenchError) -> FootprintStatus {
        let s = try Self.status(executable: executable, stateDir: stateDir)
        let sessions = s["sessions"]?.arrayValue ?? []
        return FootprintStatus(
            pairedDevices: s["pairedDevices"]?.intValue ?? 0, sessions: sessions.count,
            connections: sessions.filter { $0["connection"]?.boolValue == true }.count,
            quietestMs: sessions.compactMap { $0["lastReceivedAgoMs"]?.doubleValue }.max() ?? 0,
            rateLimited: s["counters"]?["drops"]?["rateLimited"]?.intValue ?? 0)
    }

    /// Runs `clawchatd status --json` for `stateDir` and parses its answer.
    static func status(executable: String, stateDir: String) throws(BenchError) -> JSONValue {
        let out = "\(stateDir)/../status.json"
        LocalFile.remove(out)
        let child = try ChildProcess("clawchatd status", executable: executable,
                                     arguments: ["status", "--json", "--config", "", "--state-dir", stateDir], output: out)
        guard child.wait(timeout: .seconds(10)) == 0 else {
            let text = (try? AtomicFile.read(out)).map { String(decoding: $0, as: UTF8.self) } ?? ""
            throw BenchError("clawchatd status failed: \(text.split(separator: "\n").last ?? "no output")")
        }
        guard let bytes = try? AtomicFile.read(out), let json = try? JSONValue.parse(bytes), json["v"] != nil else {
            throw BenchError("clawchatd status --json did not print a status object")
        }
        return json
    }
}

// MARK: Report

extension FootprintScenario {

    /// Bytes per item between two readings, per round.
    private static func growth(_ rounds: [FootprintRound], count: Int, _ pick: (ResidentMemory) -> Int,
                               from: (FootprintRound) -> ResidentMemory?, to: (FootprintRound) -> ResidentMemory?) -> [Double] {
        rounds.compactMap { r in
            guard let a = from(r), let b = to(r) else { return nil }
            return Double(pick(b) - pick(a)) * 1024 / Double(count)
        }
    }

    /// The table's rows: a name and the reading of each round.
    private static func states(_ s: FootprintSettings) -> [(String, (FootprintRound) -> ResidentMemory?)] {
        var rows: [(String, (FootprintRound) -> ResidentMemory?)] = [("idle, no paired device", { $0.fresh })]
        for (i, n) in s.checkpoints.enumerated() {
            let name = n == 0 ? "idle, \(s.sessions) paired devices, no session" : "\(n) sessions"
            rows.append((name, { $0.atSessions[i] }))
        }
        if s.hold > .zero { rows.append(("\(s.sessions) sessions after \(Int(s.hold.seconds)) s of keepalives (last round)", { $0.afterHold })) }
        rows.append(("\(s.sessions) sessions, each with a message connection", { $0.withConnections }))
        return rows
    }

    static func table(_ r: FootprintReport, _ s: FootprintSettings) -> String {
        if let why = r.unavailable { return "footprint: NOT MEASURED, \(why)" }
        let fields = [\ResidentMemory.vmRSSKiB, \.rssAnonKiB, \.rssFileKiB]
        var t = Table(headers: ["daemon state", "VmRSS MiB", "RssAnon MiB", "RssFile MiB", "mappings"])
        for (name, pick) in states(s) {
            let readings = r.rounds.compactMap(pick)
            guard !readings.isEmpty else { continue }
            t.rows.append([name] + fields.map { field in
                spread(Summary(readings.map { Double($0[keyPath: field]) })) { fixed($0 / 1024, 2) }
            } + [spread(Summary(readings.map { Double($0.mappings) })) { fixed($0, 0) }])
        }
        let n = s.sessions
        var g = Table(headers: ["growth, bytes each", "VmRSS", "RssAnon", "RssFile", "mappings each"])
        let perItem: [(String, (FootprintRound) -> ResidentMemory?, (FootprintRound) -> ResidentMemory?)] = [
            ("per session (0 → \(n) sessions)", { $0.atSessions.first }, { $0.atSessions.last }),
            ("per message connection (\(n) opened)", { $0.beforeConnections }, { $0.withConnections }),
            ("per paired device, no session (\(n) paired)", { $0.fresh }, { $0.atSessions.first }),
        ]
        for (name, from, to) in perItem {
            g.rows.append([name] + fields.map { field in
                let values = growth(r.rounds, count: n, { $0[keyPath: field] }, from: from, to: to)
                return values.isEmpty ? "-" : spread(Summary(values)) { fixed($0, 0) }
            } + [{
                let values = growth(r.rounds, count: n, { $0.mappings }, from: from, to: to).map { $0 / 1024 }
                return values.isEmpty ? "-" : spread(Summary(values)) { fixed($0, 1) }
            }()])
        }
        var text = "footprint: \(r.daemon) (\(fixed(Double(r.binaryBytes) / 1e6, 1)) MB, Swift standard library linked \(r.stdlib)"
        text += r.stdlib == "dynamic" ? ": libswiftCore.so is mapped" : ""
        text += "), a fresh daemon per round;\nresident memory from /proc/PID/status once it settled (two readings 250 ms apart agree), "
        text += "MiB = 2^20 bytes\n"
        text += t.render() + "\n\n" + g.render()
        if let h = r.hold {
            let status = r.rounds.last?.status ?? FootprintStatus()
            text += "\nheld \(h.sessions) sessions for \(Int(h.seconds)) s (clients send a keepalive after 15 s without traffic): "
            text += "\(h.answered) of \(h.sessions) clients had keepalives answered (\(h.keepaliveAnswers) answers), "
            text += "\(h.lost) lost their session; at the end the daemon reported \(status.sessions) sessions "
            text += "(\(status.connections) with a message connection) of \(status.pairedDevices) paired devices, "
            text += "the quietest heard from \(fixed(status.quietestMs / 1000, 1)) s before"
        }
        let short = r.rounds.filter { $0.status.sessions != s.sessions }
        if !short.isEmpty { text += "\nWARNING: in \(short.count) round(s) the daemon reported fewer than \(s.sessions) sessions" }
        if r.failedConnections > 0 { text += "\nWARNING: \(r.failedConnections) echo requests on new message connections failed" }
        let limited = r.rounds.map(\.status.rateLimited).reduce(0, +)
        if limited > 0 { text += "\n\(limited) handshake initiations were refused by the daemon's rate limit (each was retried)" }
        text += "\neach client has its own source address (127.10.x.y): the daemon limits handshakes per address to "
        text += "\(Int(HandshakeLimits().perSourcePerSecond))/s; they are started at \(Int(handshakesPerSecond))/s, "
        text += "below its global limit of \(Int(HandshakeLimits().globalPerSecond))/s"
        return text
    }

    static func json(_ r: FootprintReport, _ s: FootprintSettings) -> JSON {
        if let why = r.unavailable { return .object([("measured", .bool(false)), ("reason", .string(why))]) }
        func memory(_ m: ResidentMemory?) -> JSON {
            guard let m else { return .number(.nan) }
            return .object([("vmRSSKiB", .integer(m.vmRSSKiB)), ("rssAnonKiB", .integer(m.rssAnonKiB)), ("rssFileKiB", .integer(m.rssFileKiB)),
                            ("mappings", .integer(m.mappings))])
        }
        let n = s.sessions
        func growthJSON(_ from: (FootprintRound) -> ResidentMemory?, _ to: (FootprintRound) -> ResidentMemory?) -> JSON {
            .object([("vmRSSBytes", \ResidentMemory.vmRSSKiB), ("rssAnonBytes", \.rssAnonKiB), ("rssFileBytes", \.rssFileKiB)].map { name, field in
                let g = growth(r.rounds, count: n, { $0[keyPath: field] }, from: from, to: to)
                return (name, g.isEmpty ? .number(.nan) : .summary(Summary(g)))
            } + [{
                let g = growth(r.rounds, count: n, { $0.mappings }, from: from, to: to).map { $0 / 1024 }
                return ("mappings", g.isEmpty ? .number(.nan) : .summary(Summary(g)))
            }()])
        }
        var fields: [(String, JSON)] = [
            ("measured", .bool(true)),
            ("daemon", .string(r.daemon)),
            ("binaryBytes", .integer(r.binaryBytes)),
            ("swiftStdlib", .string(r.stdlib)),
            ("sessions", .integer(n)),
            ("checkpoints", .array(s.checkpoints.map { .integer($0) })),
            ("rounds", .array(r.rounds.map { round in
                .object([
                    ("idleNoDevice", memory(round.fresh)),
                    ("atSessions", .array(round.atSessions.map(memory))),
                    ("afterHold", memory(round.afterHold)),
                    ("withMessageConnections", memory(round.withConnections)),
                    ("status", .object([
                        ("pairedDevices", .integer(round.status.pairedDevices)), ("sessions", .integer(round.status.sessions)),
                        ("messageConnections", .integer(round.status.connections)),
                        ("quietestMs", .number(round.status.quietestMs)), ("rateLimited", .integer(round.status.rateLimited)),
                    ])),
                ])
            })),
            ("perSession", growthJSON({ $0.atSessions.first }, { $0.atSessions.last })),
            ("perMessageConnection", growthJSON({ $0.beforeConnections }, { $0.withConnections })),
            ("perPairedDevice", growthJSON({ $0.fresh }, { $0.atSessions.first })),
            ("failedEchoRequests", .integer(r.failedConnections)),
        ]
        if let h = r.hold {
            fields.append(("hold", .object([
                ("seconds", .number(h.seconds)), ("sessions", .integer(h.sessions)), ("clientsAnswered", .integer(h.answered)),
                ("keepaliveAnswers", .integer(h.keepaliveAnswers)), ("clientsThatLostTheSession", .integer(h.lost)),
            ])))
        }
        return .object(fields)
    }
}
