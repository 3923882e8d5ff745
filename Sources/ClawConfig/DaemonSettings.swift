// The daemon's settings: every `clawchatd run` option, with its documented default, its key in
// the configuration file and its flag. packaging/clawchatd.toml documents the same defaults (a test
// checks that they agree).
import ClawAssistant
import ClawCron
import ClawCrypto
import ClawReactor

/// Where a setting's value came from.
public enum SettingSource: Equatable, Sendable, CustomStringConvertible {
    /// The built-in default.
    case builtIn
    /// A line of the configuration file.
    case file(String, line: Int)
    /// A command-line flag, e.g. "--listen".
    case flag(String)

    public var description: String {
        switch self {
        case .builtIn: return "default"
        case .file(let path, let line): return "file \(path):\(line)"
        case .flag(let name): return "flag \(name)"
        }
    }
}

/// One mistake in the configuration: `FILE:LINE: section.key: reason`, or with `flag --name`
/// in place of the file when a flag gave the value.
public struct ConfigProblem: Equatable, Sendable, CustomStringConvertible {
    public var file: String?
    public var line: Int?
    public var flag: String?
    /// `section.key`, `[section]`, or a variable name in the environment file.
    public var key: String?
    public var reason: String

    public init(file: String? = nil, line: Int? = nil, flag: String? = nil, key: String? = nil, reason: String) {
        self.file = file
        self.line = line
        self.flag = flag
        self.key = key
        self.reason = reason
    }

    init(at source: SettingSource, key: String?, reason: String) {
        switch source {
        case .builtIn: self.init(key: key, reason: reason)
        case .file(let path, let line): self.init(file: path, line: line, key: key, reason: reason)
        case .flag(let name): self.init(flag: name, key: key, reason: reason)
        }
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(line.map { "\(file):\($0)" } ?? file) }
        if let flag { parts.append("flag \(flag)") }
        if let key { parts.append(key) }
        parts.append(reason)
        return parts.joined(separator: ": ")
    }
}

/// A key of the configuration file and its flag.
public struct SettingKey: Sendable {
    public enum Kind: Sendable {
        case string, integer, number, boolean, strings

        var name: String {
            switch self {
            case .string: return "a string"
            case .integer: return "an integer"
            case .number: return "a number"
            case .boolean: return "true or false"
            case .strings: return "an array of strings"
            }
        }
    }

    /// "" for the top level (before any table).
    public let section: String
    public let name: String
    public let flag: String
    public let kind: Kind
    /// Whether a value from the file must be an absolute path (a flag's may be relative to the
    /// working directory).
    public let absolutePath: Bool

    init(_ section: String, _ name: String, _ flag: String, _ kind: Kind, absolutePath: Bool = false) {
        self.section = section
        self.name = name
        self.flag = flag
        self.kind = kind
        self.absolutePath = absolutePath
    }

    public var path: String { section.isEmpty ? name : "\(section).\(name)" }

    /// Every key, in the order of the example file.
    public static let all: [SettingKey] = [
        SettingKey("", "env_file", "--env-file", .string, absolutePath: true),
        SettingKey("server", "listen", "--listen", .string),
        SettingKey("server", "public_addresses", "--public-address", .strings),
        SettingKey("server", "stun_servers", "--stun-server", .strings),
        SettingKey("server", "state_dir", "--state-dir", .string, absolutePath: true),
        SettingKey("server", "security_dir", "--security-dir", .string, absolutePath: true),
        SettingKey("server", "bootstrap_key_file", "--bootstrap-key-file", .string, absolutePath: true),
        SettingKey("server", "rekey_interval", "--rekey-interval", .integer),
        SettingKey("server", "session_timeout", "--session-timeout", .integer),
        SettingKey("server", "cipher", "--cipher", .string),
        SettingKey("server", "log_level", "--log-level", .string),
        SettingKey("assistant", "provider", "--provider", .string),
        SettingKey("assistant", "model", "--model", .string),
        SettingKey("assistant", "base_url", "--base-url", .string),
        SettingKey("assistant", "api_key_env", "--api-key-env", .string),
        SettingKey("assistant", "max_tokens", "--max-tokens", .integer),
        SettingKey("assistant", "context_dir", "--context-dir", .string, absolutePath: true),
        SettingKey("assistant", "history_budget", "--history-budget", .integer),
        SettingKey("assistant", "context_budget", "--context-budget", .integer),
        SettingKey("assistant", "llm_idle_timeout", "--llm-idle-timeout", .number),
        SettingKey("assistant", "llm_timeout", "--llm-timeout", .number),
        SettingKey("assistant", "llm_max_retries", "--llm-max-retries", .integer),
        SettingKey("cron", "time_zone", "--time-zone", .string),
        SettingKey("cron", "catch_up", "--cron-catch-up", .string),
        SettingKey("files", "root", "--files-root", .string, absolutePath: true),
        SettingKey("files", "read_only", "--files-read-only", .boolean),
        SettingKey("rotation", "ports", "--port-rotation", .string),
        SettingKey("rotation", "period", "--rotation-period", .integer),
        SettingKey("rotation", "grace", "--rotation-grace", .integer),
    ]

    public static let sections = ["server", "assistant", "cron", "files", "rotation"]

    public static func named(_ path: String) -> SettingKey? { all.first { $0.path == path } }
}

/// The validated settings: every value usable as it is.
public struct DaemonSettings: Sendable {
    public static let defaultConfigFile = "/etc/clawchat/clawchatd.toml"

    /// The environment file with the secrets; "" for none.
    public var envFile = "/etc/clawchat/clawchatd.env"

    // [server]
    /// Address and UDP port to listen on.
    public var listen = "0.0.0.0:47400"
    /// Addresses written into security files; empty: STUN, else the listen address.
    public var publicAddresses: [String] = []
    /// STUN servers (IP:PORT, port 3478 if left out) for public-address discovery.
    public var stunServers: [String] = []
    /// The server key, the device list, the conversation, the pid file.
    public var stateDir = "/var/lib/clawchat"
    /// Where clawchat-current.sec is written; nil: STATE_DIR/security.
    public var securityDir: String?
    /// A file holding the bootstrap key; nil: the variable CLAWCHAT_BOOTSTRAP_KEY.
    public var bootstrapKeyFile: String?
    /// Seconds between rekeys.
    public var rekeyInterval = 3600
    /// Seconds without a valid packet after which a session is dropped.
    public var sessionTimeout = 180
    /// auto, aes256gcm or chacha20poly1305.
    public var cipher = "auto"
    /// debug, info, notice, warning or error.
    public var logLevel = "info"

    // [assistant]
    public var provider: ProviderKind = .none
    /// nil: the provider's usual inexpensive model.
    public var model: String?
    /// nil: the provider's public endpoint.
    public var baseURL: String?
    /// nil: the vendor's customary variable; "" for none.
    public var apiKeyEnv: String?
    public var maxTokens = 4096
    /// nil: STATE_DIR/context.
    public var contextDir: String?
    /// Tokens of history sent with each message.
    public var historyBudget = 8000
    /// Bytes of context files in the system prompt.
    public var contextBudget = ContextAssembler.defaultBudgetBytes
    /// Seconds to wait for the provider's next real event.
    public var llmIdleTimeout: Double = 90
    /// Seconds one chat may take in all, retries included.
    public var llmTimeout: Double = 600
    public var llmMaxRetries = 2

    // [cron]
    /// nil: $TZ, else /etc/localtime, else UTC.
    public var timeZone: String?
    public var catchUp: CatchUpPolicy = .once

    // [files]
    /// nil: STATE_DIR/files.
    public var filesRoot: String?
    public var filesReadOnly = false

    // [rotation]
    /// nil: port rotation is off (the default).
    public var rotationPorts: ClosedRange<UInt16>?
    public var rotationPeriod = 3600
    public var rotationGrace = 900

    public init() {}

    public var securityDirectory: String { securityDir ?? "\(stateDir)/security" }
    public var contextDirectory: String { contextDir ?? "\(stateDir)/context" }
    public var filesDirectory: String { filesRoot ?? "\(stateDir)/files" }
    /// The variable holding the provider's API key; "" when it needs none.
    public var effectiveAPIKeyEnv: String {
        provider.api == nil ? "" : (apiKeyEnv ?? ProviderConfig.defaults(provider).apiKeyEnv)
    }

    public var listenAddress: SocketAddress { (try? SocketAddress(parsing: listen)) ?? SocketAddress(ipv4NetworkOrder: 0, port: 47400) }
    public var publicSocketAddresses: [SocketAddress] { publicAddresses.compactMap { try? SocketAddress(parsing: $0, port: 0) } }
    public var stunSocketAddresses: [SocketAddress] { stunServers.compactMap { try? SocketAddress(parsing: $0, port: 3478) } }
    public var aeadCipher: AEADCipher {
        switch cipher {
        case "aes256gcm": return .aes256gcm
        case "chacha20poly1305": return .chacha20poly1305
        default: return .preferred
        }
    }
    public var level: LogLevel { Self.logLevels[logLevel] ?? .info }

    static let ciphers = ["auto", "aes256gcm", "chacha20poly1305"]
    static let logLevels: [String: LogLevel] = ["debug": .debug, "info": .info, "notice": .notice, "warning": .warning, "error": .error]
    static let logLevelNames = ["debug", "info", "notice", "warning", "error"]

    /// The effective value of a key, as TOML; nil when unset (a derived default).
    public func value(of path: String) -> TOMLValue? {
        func s(_ v: String?) -> TOMLValue? { v.map(TOMLValue.string) }
        switch path {
        case "env_file": return .string(envFile)
        case "server.listen": return .string(listen)
        case "server.public_addresses": return .stringArray(publicAddresses)
        case "server.stun_servers": return .stringArray(stunServers)
        case "server.state_dir": return .string(stateDir)
        case "server.security_dir": return .string(securityDirectory)
        case "server.bootstrap_key_file": return s(bootstrapKeyFile)
        case "server.rekey_interval": return .integer(rekeyInterval)
        case "server.session_timeout": return .integer(sessionTimeout)
        case "server.cipher": return .string(cipher)
        case "server.log_level": return .string(logLevel)
        case "assistant.provider": return .string(provider.rawValue)
        case "assistant.model":
            return s(model ?? (provider.api == nil ? nil : ProviderConfig.defaults(provider).model).flatMap { $0.isEmpty ? nil : $0 })
        case "assistant.base_url":
            return s(baseURL ?? (provider.api == nil ? nil : ProviderConfig.defaults(provider).baseURL).flatMap { $0.isEmpty ? nil : $0 })
        case "assistant.api_key_env": return provider.api == nil && apiKeyEnv == nil ? nil : .string(apiKeyEnv ?? effectiveAPIKeyEnv)
        case "assistant.max_tokens": return .integer(maxTokens)
        case "assistant.context_dir": return .string(contextDirectory)
        case "assistant.history_budget": return .integer(historyBudget)
        case "assistant.context_budget": return .integer(contextBudget)
        case "assistant.llm_idle_timeout": return .float(llmIdleTimeout)
        case "assistant.llm_timeout": return .float(llmTimeout)
        case "assistant.llm_max_retries": return .integer(llmMaxRetries)
        case "cron.time_zone": return s(timeZone)
        case "cron.catch_up": return .string(catchUp.rawValue)
        case "files.root": return .string(filesDirectory)
        case "files.read_only": return .boolean(filesReadOnly)
        case "rotation.ports": return rotationPorts.map { .string("\($0.lowerBound)-\($0.upperBound)") }
        case "rotation.period": return .integer(rotationPeriod)
        case "rotation.grace": return .integer(rotationGrace)
        default: return nil
        }
    }

    /// What the default of a key is when it is derived from others (for the listing).
    public static func derivedDefault(of path: String) -> String? {
        switch path {
        case "server.security_dir": return "STATE_DIR/security"
        case "server.bootstrap_key_file": return "none, the variable CLAWCHAT_BOOTSTRAP_KEY instead"
        case "assistant.model", "assistant.base_url", "assistant.api_key_env": return "the provider's own"
        case "assistant.context_dir": return "STATE_DIR/context"
        case "cron.time_zone": return "$TZ, else /etc/localtime, else UTC"
        case "rotation.ports": return "off"
        case "files.root": return "STATE_DIR/files"
        default: return nil
        }
    }
}
