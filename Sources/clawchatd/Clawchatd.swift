// clawchatd: the ClawChat daemon. It listens on one UDP port, stays silent to anything that does
// not authenticate, pairs devices from short-lived security files, and answers chat through the
// configured LLM provider. Everything runs on one libevent loop on the main thread.
import ArgumentParser
import ClawAssistant
import ClawChannel
import ClawConfig
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
        subcommands: [Run.self, CheckConfig.self, Status.self, Secfile.self, Devices.self, BootstrapKeyCommand.self],
        defaultSubcommand: Run.self)
}

/// The state directory for every subcommand: `--state-dir`, else the configuration file's
/// `server.state_dir`, else /var/lib/clawchat (the same for `--security-dir`).
struct StateOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Configuration file (default: \(DaemonSettings.defaultConfigFile) if it exists; '' for none).", valueName: "file"))
    var config: String?

    @Option(name: .customLong("state-dir"),
            help: ArgumentHelp("Directory for the server key, the device list and the pid file (default: /var/lib/clawchat).", valueName: "state-dir"))
    var stateDirFlag: String?

    @Option(name: .customLong("security-dir"),
            help: ArgumentHelp("Directory for clawchat-current.sec (default: STATE_DIR/security).", valueName: "security-dir"))
    var securityDirFlag: String?

    /// The configuration file to read and whether it must exist: `--config`, else the default
    /// if it exists; nil for none (`--config ''`).
    var configFile: (path: String, required: Bool)? {
        if let config { return config.isEmpty ? nil : (config, true) }
        return access(DaemonSettings.defaultConfigFile, F_OK) == 0 ? (DaemonSettings.defaultConfigFile, false) : nil
    }

    /// The settings in force with these flags over the file.
    func load(flags: [String: TOMLValue] = [:]) -> ConfigReport {
        var all = flags
        if let stateDirFlag { all["server.state_dir"] = .string(stateDirFlag) }
        if let securityDirFlag { all["server.security_dir"] = .string(securityDirFlag) }
        let file = configFile
        return ConfigLoader.load(configFile: file?.path, required: file?.required ?? false, flags: all)
    }

    private var directories: DaemonSettings {
        if let stateDirFlag, securityDirFlag != nil || configFile == nil {
            var s = DaemonSettings()
            s.stateDir = stateDirFlag
            s.securityDir = securityDirFlag
            return s
        }
        return load().settings
    }

    var stateDir: String { directories.stateDir }
    var securityDirectory: String { directories.securityDirectory }
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
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (the default).",
        discussion: "Settings come from the flags, else the configuration file, else the defaults; secrets from the environment, else the environment file. `clawchatd check-config` shows them.")

    @OptionGroup var state: StateOptions
    @OptionGroup var options: RunOptions

    func run() throws {
        ignoreSIGPIPE()
        let report = state.load(flags: options.flags)
        guard report.isValid else { throw CLIError(ConfigProblems(report.problems).description) }
        let s = report.settings
        // The environment file's secrets, before anything reads a key (a non-empty variable
        // already in the environment wins).
        for v in report.variablesToExport { setenv(v.name, v.value, 1) }
        let log = Logger("clawchatd", minimum: s.level)
        if let file = report.configFile { log.info("configuration from \(file)") }
        for w in report.warnings { log.warning(w.description) }
        var timers = ChannelTimers()
        timers.rekeyInterval = .seconds(s.rekeyInterval)
        timers.sessionTimeout = .seconds(s.sessionTimeout)
        var config = DaemonConfig(
            stateDirectory: s.stateDir, securityDirectory: s.securityDirectory, listen: s.listenAddress,
            publicAddresses: s.publicSocketAddresses, stunServers: s.stunSocketAddresses,
            bootstrapKey: try loadBootstrapKey(file: s.bootstrapKeyFile), cipher: s.aeadCipher, timers: timers)
        if let ports = s.rotationPorts {
            config.rotation = RotationSettings(range: ports, period: Int64(s.rotationPeriod), grace: Int64(s.rotationGrace))
        }
        try serve(config, settings: s)
    }

    private func serve(_ config: DaemonConfig, settings s: DaemonSettings) throws {
        let loop = try EventLoop()
        let assistant = s.assistantConfig
        let cronConfig = try s.cronConfig()
        let sandbox: Sandbox
        do { sandbox = try Sandbox(root: s.filesDirectory, readOnly: s.filesReadOnly) } catch {
            throw CLIError("the shared folder \(s.filesDirectory): \(error.reason)")
        }
        // One logger for every part, so a SIGHUP can change the level of all of them.
        let log = Logger("clawchatd", minimum: s.level)
        let daemon: Daemon
        let cron: CronService
        do {
            daemon = try Daemon(loop: loop, config: config, log: log)
            let a = try Assistant(loop: loop, config: assistant, log: log)
            daemon.attach(a)
            cron = try CronService(loop: loop, config: cronConfig, assistant: a, log: log)
            daemon.attach(cron)
        } catch {
            throw CLIError(error.description)
        }
        daemon.attach(FileService(loop: loop, sandbox: sandbox, log: log))
        daemon.onReload = { [state, options] in Self.reloadSettings(state: state, options: options, old: s, daemon: daemon, log: log) }
        try daemon.installSignalHandlers()
        do { try daemon.start() } catch { throw CLIError(error.description) }
        cron.start()   // after start(): a second daemon on the same state must fail before touching cron's files
        loop.runUntilStopped()
    }

    /// SIGHUP: the configuration file again. Problems keep the old settings; otherwise the log
    /// level and the assistant's settings change at once, and what needs a restart is named.
    static func reloadSettings(state: StateOptions, options: RunOptions, old: DaemonSettings, daemon: Daemon, log: Logger) -> [String] {
        let report = state.load(flags: options.flags)
        guard report.isValid else {
            for p in report.problems { log.error("SIGHUP: \(p)") }
            return ["the configuration NOT (\(report.problems.count) problem(s); the running settings stay)"]
        }
        let s = report.settings
        for v in report.variablesToExport { setenv(v.name, v.value, 1) }
        var parts = ["the configuration" + (report.configFile.map { " (\($0))" } ?? "")]
        if s.level != log.minimum { log.minimum = s.level; parts.append("log level") }
        if let a = daemon.assistant {
            do { parts += try a.reconfigure(s.assistantConfig) } catch {
                log.error("SIGHUP: the assistant keeps its settings: \(error)")
            }
        }
        let restart = SettingKey.all.map(\.path).filter { path in
            !path.hasPrefix("assistant.") && path != "server.log_level" && path != "env_file"
                && s.value(of: path) != old.value(of: path)
        }
        if !restart.isEmpty { log.warning("SIGHUP: \(restart.joined(separator: ", ")) changed; they take effect after a restart") }
        return parts
    }
}

/// Every setting of `run` as a flag. Each is optional: a flag that is not given leaves the
/// configuration file's value, or the default, in force.
struct RunOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Environment file with the secrets, KEY=VALUE lines, mode 0600 or 0640 (default: /etc/clawchat/clawchatd.env if it exists; '' for none).", valueName: "file"))
    var envFile: String?

    @Option(help: "Address and UDP port to listen on (default: 0.0.0.0:47400).")
    var listen: String?

    @Option(name: .customLong("public-address"), help: "Address written into security files (repeatable). Default: STUN, else the listen address.")
    var publicAddresses: [String] = []

    @Option(name: .customLong("stun-server"), help: "STUN server IP:port for public-address discovery (repeatable).")
    var stunServers: [String] = []

    @Option(help: "File holding the bootstrap key (default: $CLAWCHAT_BOOTSTRAP_KEY).")
    var bootstrapKeyFile: String?

    @Option(help: "Seconds between rekeys, a fresh handshake with new ephemeral keys (default: 3600).")
    var rekeyInterval: Int?

    @Option(help: "Seconds without a valid packet after which a session is dropped (default: 180).")
    var sessionTimeout: Int?

    @Option(help: "auto, aes256gcm or chacha20poly1305 (default: auto).")
    var cipher: String?

    @Option(help: "debug, info, notice, warning or error (default: info).")
    var logLevel: String?

    @Option(help: "LLM provider: openai, deepseek, anthropic, openai-compatible, echo (tests) or none (default).")
    var provider: String?

    @Option(help: "Model name (default: the provider's usual inexpensive model).")
    var model: String?

    @Option(help: "Base URL of the API, up to /v1 (required for openai-compatible, e.g. http://127.0.0.1:11434/v1).")
    var baseURL: String?

    @Option(help: "Environment variable holding the API key (default: OPENAI_API_KEY, DEEPSEEK_API_KEY or ANTHROPIC_API_KEY; empty for none).")
    var apiKeyEnv: String?

    @Option(help: "Most tokens in one answer (default: 4096).")
    var maxTokens: Int?

    @Option(help: "Context directory: SOUL.md, AGENTS.md, USER.md, MEMORY.md, memory/ (default: STATE_DIR/context).")
    var contextDir: String?

    @Option(help: "Tokens of history sent with each message, an estimate at 4 bytes a token (default: 8000).")
    var historyBudget: Int?

    @Option(help: "Bytes of context files in the system prompt; the lowest priority is cut first (default: \(ContextAssembler.defaultBudgetBytes)).")
    var contextBudget: Int?

    @Option(help: "Seconds to wait for the provider's next real event; SSE comments do not count (default: 90).")
    var llmIdleTimeout: Double?

    @Option(help: "Seconds one chat may take in all, retries included (default: 600).")
    var llmTimeout: Double?

    @Option(help: "Retries of a failed LLM request: 408, 409, 429, 5xx, connection errors (default: 2).")
    var llmMaxRetries: Int?

    @Option(help: "Time zone for CRON.md schedules, e.g. Europe/Paris (default: $TZ, else /etc/localtime, else UTC).")
    var timeZone: String?

    @Option(help: "Runs missed while the daemon was down: once (run each such job once at start; the default) or skip.")
    var cronCatchUp: String?

    @Option(help: "The folder the file manager shares (created 0700 if missing; default: STATE_DIR/files).")
    var filesRoot: String?

    @Flag(inversion: .prefixedNo, help: "Share the folder read-only: every change is refused (default: no).")
    var filesReadOnly: Bool?

    @Option(help: "Port rotation: move the listening port every period within LOW-HIGH, e.g. 40000-40999 (default: off).")
    var portRotation: String?

    @Option(help: "Seconds between port rotations (default: 3600).")
    var rotationPeriod: Int?

    @Option(help: "Seconds the previous port stays open after a rotation (default: 900).")
    var rotationGrace: Int?

    /// The flags that were given, by configuration key.
    var flags: [String: TOMLValue] {
        var f: [String: TOMLValue] = [:]
        func put(_ key: String, _ v: String?) { if let v { f[key] = .string(v) } }
        func put(_ key: String, _ v: Int?) { if let v { f[key] = .integer(v) } }
        func put(_ key: String, _ v: Double?) { if let v { f[key] = .float(v) } }
        put("env_file", envFile)
        put("server.listen", listen)
        if !publicAddresses.isEmpty { f["server.public_addresses"] = .stringArray(publicAddresses) }
        if !stunServers.isEmpty { f["server.stun_servers"] = .stringArray(stunServers) }
        put("server.bootstrap_key_file", bootstrapKeyFile)
        put("server.rekey_interval", rekeyInterval)
        put("server.session_timeout", sessionTimeout)
        put("server.cipher", cipher)
        put("server.log_level", logLevel)
        put("assistant.provider", provider)
        put("assistant.model", model)
        put("assistant.base_url", baseURL)
        put("assistant.api_key_env", apiKeyEnv)
        put("assistant.max_tokens", maxTokens)
        put("assistant.context_dir", contextDir)
        put("assistant.history_budget", historyBudget)
        put("assistant.context_budget", contextBudget)
        put("assistant.llm_idle_timeout", llmIdleTimeout)
        put("assistant.llm_timeout", llmTimeout)
        put("assistant.llm_max_retries", llmMaxRetries)
        put("cron.time_zone", timeZone)
        put("cron.catch_up", cronCatchUp)
        put("files.root", filesRoot)
        if let filesReadOnly { f["files.read_only"] = .boolean(filesReadOnly) }
        put("rotation.ports", portRotation)
        put("rotation.period", rotationPeriod)
        put("rotation.grace", rotationGrace)
        return f
    }
}

extension DaemonSettings {
    /// The assistant's configuration (the settings are valid).
    var assistantConfig: AssistantConfig {
        var c = AssistantConfig(provider: ProviderConfig(kind: provider, model: model, baseURL: baseURL, apiKeyEnv: apiKeyEnv, maxTokens: maxTokens),
                                contextDirectory: contextDirectory, journalPath: "\(stateDir)/conversation.jsonl")
        c.historyBudgetTokens = historyBudget
        c.contextBudgetBytes = contextBudget
        c.timeouts.idle = .milliseconds(Int64(llmIdleTimeout * 1000))
        c.timeouts.overall = .milliseconds(Int64(llmTimeout * 1000))
        c.maxRetries = llmMaxRetries
        return c
    }

    /// The scheduler's configuration, with the time zone loaded.
    func cronConfig() throws -> CronConfig {
        var c = CronConfig(cronPath: "\(contextDirectory)/CRON.md", statePath: "\(stateDir)/cron-state.json",
                           logDirectory: "\(stateDir)/logs/cron", zone: try zone())
        c.policy = catchUp
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
