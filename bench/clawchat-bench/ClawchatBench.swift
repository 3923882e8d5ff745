// clawchat-bench: measures ClawChat against baselines in the same run and prints a table (or
// JSON). Benchmarks report numbers; nothing here passes or fails. See bench/README.md.
import ArgumentParser
import ClawCrypto
import ClawDaemon
import Glibc

@main
struct ClawchatBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clawchat-bench",
        abstract: "Measure ClawChat against baselines on this machine (loopback only).",
        subcommands: [All.self, Echo.self, Handshake.self, Transfer.self, Chat.self, Footprint.self,
                      EchoServerCommand.self, RelayServerCommand.self],
        defaultSubcommand: All.self)
}

/// Which AEAD cipher the channel uses in the benchmarks.
enum CipherChoice: String, ExpressibleByArgument, CaseIterable {
    /// What the daemon picks by default: AES-256-GCM where the CPU accelerates it.
    case preferred
    case aes256gcm
    case chacha20poly1305

    init(_ cipher: AEADCipher) { self = cipher == .aes256gcm ? .aes256gcm : .chacha20poly1305 }

    var aead: AEADCipher {
        switch self {
        case .preferred: return .preferred
        case .aes256gcm: return .aes256gcm
        case .chacha20poly1305: return .chacha20poly1305
        }
    }
}

struct CommonOptions: ParsableArguments {
    @Option(help: "Measure each scenario this many times; the report gives the median and min–max.")
    var rounds = 5

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    @Option(help: "AEAD cipher of the channel: preferred, aes256gcm or chacha20poly1305.")
    var cipher: CipherChoice = .preferred

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard cipher.aead.isAvailable else { throw ValidationError("\(cipher.aead) is not available on this CPU") }
    }
}

struct EchoOptions: ParsableArguments {
    @Option(help: "Echo requests kept in flight.")
    var window = 128

    @Option(help: "Seconds of measurement per round and payload size.")
    var duration = 2.0

    @Option(help: "Seconds of load before each measurement starts.")
    var warmup = 0.5

    func validate() throws {
        guard window >= 1 else { throw ValidationError("--window must be at least 1") }
        guard duration > 0, warmup >= 0 else { throw ValidationError("--duration must be positive, --warmup not negative") }
    }

    func settings(_ common: CommonOptions) -> EchoSettings {
        EchoSettings(rounds: common.rounds, window: window, warmup: .milliseconds(Int64(warmup * 1000)),
                     duration: .milliseconds(Int64(duration * 1000)), cipher: common.cipher.aead)
    }
}

struct HandshakeOptions: ParsableArguments {
    @Option(help: "Handshakes per round, for each variant.")
    var handshakes = 1000

    func validate() throws {
        guard handshakes >= 1 else { throw ValidationError("--handshakes must be at least 1") }
    }

    func settings(_ common: CommonOptions) -> HandshakeSettings {
        HandshakeSettings(rounds: common.rounds, count: handshakes, cipher: common.cipher.aead)
    }
}

struct TransferOptions: ParsableArguments {
    @Option(help: "Megabytes (10^6 bytes) per transfer, in each direction and on each path.")
    var megabytes = 200

    @Option(help: "Percent of datagrams the relay drops each way on the lossy path (0 leaves the path out).")
    var relayLoss = 2.0

    @Flag(inversion: .prefixedNo, help: "Also measure a relay path with 1% loss and 10 ms delay each way.")
    var delayedPath = true

    @Option(help: "Megabytes per transfer on the delayed path (its rate is about 1 MB/s).")
    var delayedMegabytes = 10

    @Option(help: "Seconds after which a transfer is abandoned and reported as timed out.")
    var timeout = 120.0

    @Flag(inversion: .prefixedNo, help: "Also measure scp to a private sshd on 127.0.0.1 with the same file (needs openssh-server).")
    var scp = true

    func validate() throws {
        for (name, value) in [("--megabytes", megabytes), ("--delayed-megabytes", delayedMegabytes)]
        where value < 1 || UInt64(value) * 1_000_000 > DiagnosticHandlers.maxSource {
            throw ValidationError("\(name) must be between 1 and \(DiagnosticHandlers.maxSource / 1_000_000)")
        }
        guard relayLoss >= 0, relayLoss < 100 else { throw ValidationError("--relay-loss must be at least 0 and below 100") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func settings(_ common: CommonOptions) -> TransferSettings {
        TransferSettings(rounds: common.rounds, bytes: megabytes * 1_000_000, relayLoss: relayLoss,
                         delayedPath: delayedPath, delayedBytes: delayedMegabytes * 1_000_000, timeout: .milliseconds(Int64(timeout * 1000)), cipher: common.cipher.aead,
                         scp: scp)
    }
}

struct ChatOptions: ParsableArguments {
    @Option(help: "chat: timed requests per round on each path.")
    var requests = 200

    @Option(help: "chat: untimed requests on each path before the first round.")
    var chatWarmup = 20

    @Option(help: "chat: pieces the mock LLM streams each answer in.")
    var pieces = 20

    @Option(help: "chat: milliseconds the mock waits between pieces.")
    var pieceDelayMs = 0

    @Option(help: "chat: the mock LLM's script (default: Tests/mock-llm/mock_llm.py of this repository).")
    var mockLlm: String?

    func validate() throws {
        guard requests >= 1, chatWarmup >= 1 else { throw ValidationError("--requests and --chat-warmup must be at least 1") }
        guard pieces >= 1, pieces <= 1000 else { throw ValidationError("--pieces must be between 1 and 1000") }
        guard pieceDelayMs >= 0, pieceDelayMs <= 1000 else { throw ValidationError("--piece-delay-ms must be between 0 and 1000") }
    }

    func settings(_ common: CommonOptions) -> ChatSettings {
        ChatSettings(rounds: common.rounds, requests: requests, warmup: chatWarmup, pieces: pieces, pieceDelayMs: pieceDelayMs,
                     cipher: common.cipher.aead, mockScript: mockLlm)
    }
}

struct FootprintOptions: ParsableArguments {
    @Option(help: "footprint: sessions held at the end of each round.")
    var sessions = 1000

    @Option(help: "footprint: seconds the last round holds every session, keepalives running, before counting them (0: no hold).")
    var hold = 30

    @Option(help: "footprint: the daemon to measure (default: clawchatd next to this executable).")
    var clawchatd: String?

    func validate() throws {
        // Each held session costs this process about 18 memory mappings (libsodium gives every
        // key its own guarded pages), and the kernel allows 65530 by default (vm.max_map_count).
        guard sessions >= 10, sessions <= 3000 else { throw ValidationError("--sessions must be between 10 and 3000") }
        guard hold >= 0 else { throw ValidationError("--hold must not be negative") }
    }

    func settings(_ common: CommonOptions) -> FootprintSettings {
        FootprintSettings(rounds: common.rounds, sessions: sessions, hold: .seconds(hold), cipher: common.cipher.aead,
                          clawchatd: clawchatd)
    }
}

struct All: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run every scenario: echo, handshake, transfer, chat, then footprint.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var echo: EchoOptions
    @OptionGroup var handshake: HandshakeOptions
    @OptionGroup var transfer: TransferOptions
    @OptionGroup var chat: ChatOptions
    @OptionGroup var footprint: FootprintOptions

    func run() throws {
        let progress = Progress()
        let e = echo.settings(common)
        let h = handshake.settings(common)
        let t = transfer.settings(common)
        let c = chat.settings(common)
        let f = footprint.settings(common)
        let echoResults = try EchoScenario.run(e, progress: progress)
        let handshakeResult = try HandshakeScenario.run(h, progress: progress)
        let transferResults = try TransferScenario.run(t, progress: progress)
        let chatReport = try ChatScenario.run(c, progress: progress)
        let footprintReport = try FootprintScenario.run(f, progress: progress)
        progress.done()
        Output.print(common, [
            ("echo", EchoScenario.table(echoResults, e), EchoScenario.json(echoResults, e)),
            ("handshake", HandshakeScenario.table(handshakeResult, h), HandshakeScenario.json(handshakeResult, h)),
            ("transfer", TransferScenario.table(transferResults, t), TransferScenario.json(transferResults, t)),
            ("chat", ChatScenario.table(chatReport, c), ChatScenario.json(chatReport, c)),
            ("footprint", FootprintScenario.table(footprintReport, f), FootprintScenario.json(footprintReport, f)),
        ])
    }
}

struct Echo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Encrypted echo datagrams per second through the daemon, against a plain UDP echo.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var echo: EchoOptions

    func run() throws {
        let progress = Progress()
        let settings = echo.settings(common)
        let results = try EchoScenario.run(settings, progress: progress)
        progress.done()
        Output.print(common, [("echo", EchoScenario.table(results, settings), EchoScenario.json(results, settings))])
    }
}

struct Handshake: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Handshakes per second and their CPU cost, against the cost of their X25519 operations.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var handshake: HandshakeOptions

    func run() throws {
        let progress = Progress()
        let settings = handshake.settings(common)
        let result = try HandshakeScenario.run(settings, progress: progress)
        progress.done()
        Output.print(common, [("handshake", HandshakeScenario.table(result, settings),
                               HandshakeScenario.json(result, settings))])
    }
}

struct Transfer: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bulk download and upload MB/s through the daemon (raw stream, direct and through the impairment relay; files, against scp).")
    @OptionGroup var common: CommonOptions
    @OptionGroup var transfer: TransferOptions

    func run() throws {
        let progress = Progress()
        let settings = transfer.settings(common)
        let results = try TransferScenario.run(settings, progress: progress)
        progress.done()
        Output.print(common, [("transfer", TransferScenario.table(results, settings),
                               TransferScenario.json(results, settings))])
    }
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "First-token and full-reply latency of a chat through the daemon to a streaming mock LLM, against asking the mock directly.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var chat: ChatOptions

    func run() throws {
        let progress = Progress()
        let settings = chat.settings(common)
        let report = try ChatScenario.run(settings, progress: progress)
        progress.done()
        Output.print(common, [("chat", ChatScenario.table(report, settings), ChatScenario.json(report, settings))])
    }
}

struct Footprint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Idle resident memory of a release clawchatd, and its growth per session with 1,000 sessions held.")
    @OptionGroup var common: CommonOptions
    @OptionGroup var footprint: FootprintOptions

    func run() throws {
        let progress = Progress()
        let settings = footprint.settings(common)
        let report = try FootprintScenario.run(settings, progress: progress)
        progress.done()
        Output.print(common, [("footprint", FootprintScenario.table(report, settings), FootprintScenario.json(report, settings))])
    }
}

/// The report around the scenarios: what machine, what build, then each scenario's table or JSON.
enum Output {
    static func print(_ common: CommonOptions, _ scenarios: [(name: String, table: String, json: JSON)]) {
        if common.json {
            let report = JSON.object([
                ("benchmark", .string("clawchat-bench")),
                ("host", .object([
                    ("cpus", .integer(Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))),
                    ("loadAverage1m", .number(loadAverage)),
                    ("optimized", .bool(optimized)),
                ])),
                ("rounds", .integer(common.rounds)),
                ("cipher", .string(common.cipher.aead.description)),
            ] + scenarios.map { ($0.name, $0.json) })
            Swift.print(report.render())
            return
        }
        var header = "clawchat-bench: \(sysconf(Int32(_SC_NPROCESSORS_ONLN))) CPUs, load average \(fixed(loadAverage, 2)) "
        header += "at the end, cipher \(common.cipher.aead), \(common.rounds) rounds; cells are median (min–max)"
        if !optimized { header += "\nDEBUG BUILD: these numbers say nothing about release performance" }
        Swift.print(header)
        for s in scenarios { Swift.print("\n" + s.table) }
    }

    static var optimized: Bool {
        #if DEBUG
        return false
        #else
        return true
        #endif
    }

    /// The 1-minute load average: other work on the machine skews every number here.
    static var loadAverage: Double {
        var loads = [Double](repeating: .nan, count: 3)
        _ = getloadavg(&loads, 3)
        return loads[0]
    }
}
