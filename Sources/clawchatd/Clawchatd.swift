// clawchatd: the ClawChat daemon. It listens on one UDP port, stays silent to anything that does
// not authenticate, pairs devices from short-lived security files, and answers chat through the
// configured LLM provider. Everything runs on one libevent loop on the main thread.
import ArgumentParser
import ClawAssistant
import ClawChannel
import ClawCron
import ClawCrypto
import ClawDaemon
import ClawFiles
import ClawReactor
import Glibc

@main
struct Clawchatd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clawchatd",
        abstract: "The ClawChat daemon: an encrypted, NAT-friendly UDP channel to your assistant.",
        subcommands: [Run.self, Secfile.self, Devices.self, BootstrapKeyCommand.self],
        defaultSubcommand: Run.self)
}

struct StateOptions: ParsableArguments {
    @Option(help: "Directory for the server key, the device list and the pid file.")
    var stateDir: String = "/var/lib/clawchat"

    @Option(help: "Directory for clawchat-current.sec (default: STATE_DIR/security).")
    var securityDir: String?

    var securityDirectory: String { securityDir ?? "\(stateDir)/security" }
}

/// The bootstrap key from `--bootstrap-key-file` or CLAWCHAT_BOOTSTRAP_KEY.
func loadBootstrapKey(file: String?) throws -> BootstrapKey {
    do {
        guard let key = try BootstrapKey.load(file: file) else {
            throw CLIError("no bootstrap key: set CLAWCHAT_BOOTSTRAP_KEY or pass --bootstrap-key-file (generate one with `clawchatd bootstrap-key`)")
        }
        return key
    } catch let e as BootstrapKeyLoadError {
        throw CLIError(e.description)
    }
}

func parseAddress(_ text: String, defaultPort: UInt16? = nil) throws -> SocketAddress {
    do { return try SocketAddress(parsing: text, port: defaultPort) } catch { throw CLIError(error.description) }
}

/// The pid of a running daemon for this state directory, if any.
func runningDaemonPID(_ state: StateOptions) -> pid_t? {
    guard let bytes = try? AtomicFile.read("\(state.stateDir)/clawchatd.pid"),
          let pid = pid_t(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: "\n ")),
          pid > 0, kill(pid, 0) == 0 else { return nil }
    return pid
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (the default).")

    @OptionGroup var state: StateOptions

    @Option(help: "Address and UDP port to listen on.")
    var listen: String = "0.0.0.0:47400"

    @Option(name: .customLong("public-address"), help: "Address written into security files (repeatable). Default: STUN, else the listen address.")
    var publicAddresses: [String] = []

    @Option(name: .customLong("stun-server"), help: "STUN server IP:port for public-address discovery (repeatable).")
    var stunServers: [String] = []

    @Option(help: "File holding the bootstrap key (default: $CLAWCHAT_BOOTSTRAP_KEY).")
    var bootstrapKeyFile: String?

    @Option(help: "Seconds between rekeys (a fresh handshake with new ephemeral keys).")
    var rekeyInterval: Int = 3600

    @Option(help: "Seconds without a valid packet after which a session is dropped.")
    var sessionTimeout: Int = 180

    @Option(help: "auto, aes256gcm or chacha20poly1305.")
    var cipher: String = "auto"

    @Option(help: "debug, info, notice, warning or error.")
    var logLevel: String = "info"

    @OptionGroup var assistant: AssistantOptions
    @OptionGroup var cronOptions: CronOptions

    @Option(help: "The folder the file manager shares (created 0700 if missing; default: STATE_DIR/files).")
    var filesRoot: String?

    @Flag(help: "Share the folder read-only: every change is refused.")
    var filesReadOnly = false

    func run() throws {
        ignoreSIGPIPE()
        let listenAddress = try parseAddress(listen)
        var timers = ChannelTimers()
        guard rekeyInterval >= 10, sessionTimeout >= 10 else { throw ValidationError("intervals must be at least 10 s") }
        timers.rekeyInterval = .seconds(rekeyInterval)
        timers.sessionTimeout = .seconds(sessionTimeout)
        let suite: AEADCipher
        switch cipher {
        case "auto": suite = .preferred
        case "aes256gcm":
            guard AEADCipher.aes256gcm.isAvailable else { throw CLIError("this CPU has no AES-NI; use chacha20poly1305") }
            suite = .aes256gcm
        case "chacha20poly1305": suite = .chacha20poly1305
        default: throw ValidationError("--cipher must be auto, aes256gcm or chacha20poly1305")
        }
        let levels: [String: LogLevel] = ["debug": .debug, "info": .info, "notice": .notice, "warning": .warning, "error": .error]
        guard let level = levels[logLevel] else { throw ValidationError("unknown --log-level \(logLevel)") }
        let config = DaemonConfig(
            stateDirectory: state.stateDir, securityDirectory: state.securityDirectory, listen: listenAddress,
            publicAddresses: try publicAddresses.map { try parseAddress($0, defaultPort: 0) },
            stunServers: try stunServers.map { try parseAddress($0, defaultPort: 3478) },
            bootstrapKey: try loadBootstrapKey(file: bootstrapKeyFile), cipher: suite, timers: timers)
        if config.publicAddresses.contains(where: \.isUnspecified) {
            throw ValidationError("--public-address must be an address clients can reach, not 0.0.0.0 or ::")
        }
        try serve(config, assistant: try assistant.config(stateDirectory: state.stateDir), level: level)
    }

    private func serve(_ config: DaemonConfig, assistant: AssistantConfig, level: LogLevel) throws {
        let loop = try EventLoop()
        let cronConfig = try cronOptions.config(stateDirectory: state.stateDir, contextDirectory: assistant.contextDirectory)
        let root = filesRoot ?? "\(state.stateDir)/files"
        let sandbox: Sandbox
        do { sandbox = try Sandbox(root: root, readOnly: filesReadOnly) } catch {
            throw CLIError("the shared folder \(root): \(error.reason)")
        }
        let daemon: Daemon
        do {
            daemon = try Daemon(loop: loop, config: config, log: Logger("clawchatd", minimum: level))
            let a = try Assistant(loop: loop, config: assistant, log: Logger("clawchatd", minimum: level))
            daemon.attach(a)
            let c = try CronService(loop: loop, config: cronConfig, assistant: a, log: Logger("clawchatd", minimum: level))
            daemon.attach(c)
            c.start()
        } catch {
            throw CLIError(error.description)
        }
        daemon.attach(FileService(loop: loop, sandbox: sandbox, log: Logger("clawchatd", minimum: level)))
        try daemon.installSignalHandlers()
        do { try daemon.start() } catch { throw CLIError(error.description) }
        loop.runUntilStopped()
    }
}

/// Which LLM answers chat, and how the conversation is kept.
struct AssistantOptions: ParsableArguments {
    @Option(help: "LLM provider: openai, deepseek, anthropic, openai-compatible, echo (tests) or none.")
    var provider: String = "none"

    @Option(help: "Model name (default: the provider's usual inexpensive model).")
    var model: String?

    @Option(help: "Base URL of the API, up to /v1 (required for openai-compatible, e.g. http://127.0.0.1:11434/v1).")
    var baseURL: String?

    @Option(help: "Environment variable holding the API key (default: OPENAI_API_KEY, DEEPSEEK_API_KEY or ANTHROPIC_API_KEY; empty for none).")
    var apiKeyEnv: String?

    @Option(help: "Most tokens in one answer.")
    var maxTokens: Int = 4096

    @Option(help: "Context directory: SOUL.md, AGENTS.md, USER.md, MEMORY.md, memory/ (default: STATE_DIR/context).")
    var contextDir: String?

    @Option(help: "Tokens of history sent with each message (an estimate: 4 bytes a token).")
    var historyBudget: Int = 8000

    @Option(help: "Bytes of context files in the system prompt; the lowest priority is cut first.")
    var contextBudget: Int = ContextAssembler.defaultBudgetBytes

    @Option(help: "Seconds to wait for the provider's next real event (SSE comments do not count).")
    var llmIdleTimeout: Double = 90

    @Option(help: "Seconds one chat may take in all, retries included.")
    var llmTimeout: Double = 600

    @Option(help: "Retries of a failed LLM request (408, 409, 429, 5xx, connection errors).")
    var llmMaxRetries: Int = 2

    func config(stateDirectory: String) throws -> AssistantConfig {
        guard let kind = ProviderKind(rawValue: provider) else {
            throw ValidationError("--provider must be one of \(ProviderKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard historyBudget >= 100, contextBudget >= 1000 else { throw ValidationError("budgets: at least 100 tokens of history and 1000 bytes of context") }
        guard llmIdleTimeout > 0, llmTimeout > 0, (0...10).contains(llmMaxRetries) else {
            throw ValidationError("LLM timeouts must be positive and retries between 0 and 10")
        }
        var c = AssistantConfig(provider: ProviderConfig(kind: kind, model: model, baseURL: baseURL, apiKeyEnv: apiKeyEnv, maxTokens: maxTokens),
                                contextDirectory: contextDir ?? "\(stateDirectory)/context",
                                journalPath: "\(stateDirectory)/conversation.jsonl")
        c.historyBudgetTokens = historyBudget
        c.contextBudgetBytes = contextBudget
        c.timeouts.idle = .milliseconds(Int64(llmIdleTimeout * 1000))
        c.timeouts.overall = .milliseconds(Int64(llmTimeout * 1000))
        c.maxRetries = llmMaxRetries
        return c
    }
}

/// The scheduler's time zone and catch-up rule.
struct CronOptions: ParsableArguments {
    @Option(help: "Time zone for CRON.md schedules, e.g. Europe/Paris (default: $TZ, else /etc/localtime, else UTC).")
    var timeZone: String?

    @Option(help: "Runs missed while the daemon was down: once (run each such job once at start) or skip.")
    var cronCatchUp: String = "once"

    func config(stateDirectory: String, contextDirectory: String) throws -> CronConfig {
        guard let policy = CatchUpPolicy(rawValue: cronCatchUp) else { throw ValidationError("--cron-catch-up must be once or skip") }
        var c = CronConfig(cronPath: "\(contextDirectory)/CRON.md", statePath: "\(stateDirectory)/cron-state.json",
                           logDirectory: "\(stateDirectory)/logs/cron", zone: try zone())
        c.policy = policy
        return c
    }

    private func zone() throws -> TimeZoneRules {
        let env = getenv("TZ").map { String(cString: $0) }.map { $0.hasPrefix(":") ? String($0.dropFirst()) : $0 }
        if let name = timeZone ?? env.flatMap({ $0.isEmpty ? nil : $0 }) {
            do { return try TimeZoneRules.load(named: name) } catch { throw CLIError("time zone \(name): \(error)") }
        }
        // /etc/localtime is a link into the zoneinfo tree on Debian: its target names the zone.
        var link = [CChar](repeating: 0, count: 512)
        let n = readlink("/etc/localtime", &link, link.count - 1)
        let target = n > 0 ? String(decoding: link[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
        let name = target.firstRange(of: "zoneinfo/").map { String(target[$0.upperBound...]) } ?? "localtime"
        if let bytes = try? AtomicFile.read("/etc/localtime"), let z = try? TimeZoneRules(tzif: bytes, name: name) { return z }
        return .utc
    }
}

struct Secfile: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make a fresh security file now (the daemon must be running).")

    @OptionGroup var state: StateOptions

    func run() throws {
        guard let pid = runningDaemonPID(state) else {
            throw CLIError("clawchatd is not running for \(state.stateDir); start it first (it writes the security file)")
        }
        let path = "\(state.securityDirectory)/\(SecurityFile.fileName)"
        let before = fileIdentity(path)
        kill(pid, SIGUSR1)
        for _ in 0..<100 {
            if let now = fileIdentity(path), now != before {
                print("\(path) (valid for \(SecurityFile.validity / 60) minutes, single use)")
                return
            }
            usleep(50_000)
        }
        throw CLIError("the daemon did not write \(path) within 5 s; see its log")
    }

    private func fileIdentity(_ path: String) -> [Int]? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return [Int(st.st_ino), Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
    }
}

struct Devices: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List or revoke paired devices.",
                                                    subcommands: [List.self, Revoke.self], defaultSubcommand: List.self)

    struct List: ParsableCommand {
        @OptionGroup var state: StateOptions
        func run() throws {
            let devices = try DeviceStore.load("\(state.stateDir)/devices")
            if devices.isEmpty { print("no paired devices"); return }
            for d in devices {
                print("\(d.idString)  \(d.name)  paired at \(d.pairedAt) (unix)  key \(Base64.encode(d.publicKey))")
            }
        }
    }

    struct Revoke: ParsableCommand {
        @OptionGroup var state: StateOptions
        @Argument(help: "Device id (from `devices list`) or name.") var device: String
        func run() throws {
            let path = "\(state.stateDir)/devices"
            var devices = try DeviceStore.load(path)
            let before = devices.count
            devices.removeAll { $0.idString == device.lowercased() || $0.name == device }
            guard devices.count < before else { throw CLIError("no paired device with id or name \(device)") }
            try DeviceStore.save(devices, to: path)
            if let pid = runningDaemonPID(state) { kill(pid, SIGHUP) }
            print("revoked \(before - devices.count) device(s)")
        }
    }
}

struct BootstrapKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bootstrap-key",
                                                    abstract: "Print a new random bootstrap key (Base64, 32 bytes).")
    func run() throws {
        print(Base64.encode(Random.bytes(count: 32)))
    }
}

/// A failure at run time: printed as one line, exit status 1, no usage text.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
