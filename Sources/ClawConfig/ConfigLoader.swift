// Loads the daemon's settings: the configuration file, the flags over it, the environment file
// for the secrets; validates everything and collects every problem, each at its location.
import ClawAssistant
import ClawCron
import ClawCrypto
import ClawReactor
import Glibc

/// Whether a secret is available, and from where (never its value).
public struct SecretStatus: Equatable, Sendable, CustomStringConvertible {
    public enum State: Equatable, Sendable {
        case environment
        case envFile(String)
        /// Read from a file (the bootstrap key file).
        case file(String)
        case notSet
    }

    public var name: String
    public var state: State

    public var isSet: Bool { state != .notSet }

    public var description: String {
        switch state {
        case .environment: return "\(name): set (environment)"
        case .envFile(let path): return "\(name): set (env file \(path))"
        case .file(let path): return "\(name): set (file \(path))"
        case .notSet: return "\(name): not set"
        }
    }
}

/// Everything a load found out.
public struct ConfigReport: Sendable {
    /// The configuration file that was read, if any.
    public var configFile: String?
    /// The settings: each key's value from the flags, else the file, else the default. A key
    /// whose value has a problem keeps its default.
    public var settings = DaemonSettings()
    /// Where each key's value came from, by `section.key`.
    public var sources: [String: SettingSource] = [:]
    /// What keeps the daemon from starting. Empty when the configuration is fine.
    public var problems: [ConfigProblem] = []
    /// What is worth knowing but does not keep it from starting (a missing API key).
    public var warnings: [ConfigProblem] = []
    /// The environment file that was read, if any.
    public var envFile: EnvFile?
    /// The secrets the settings need, and whether each is set.
    public var secrets: [SecretStatus] = []
    /// The environment file's variables that the process environment does not already have
    /// (or has empty; a non-empty one wins): what `run` exports before anything reads a key.
    public var variablesToExport: [EnvFile.Variable] = []

    public var isValid: Bool { problems.isEmpty }
}

public enum ConfigLoader {
    /// Reads the process environment.
    public static let processEnvironment: @Sendable (String) -> String? = { name in
        getenv(name).map { String(cString: $0) }
    }

    /// The configuration in force: the file (nil for none; `required`: a missing file is a
    /// problem, as for an explicit `--config`), then `flags` over it, keyed by `section.key`.
    public static func load(configFile: String?, required: Bool = true, flags: [String: TOMLValue] = [:],
                            environment: @Sendable (String) -> String? = processEnvironment) -> ConfigReport {
        guard let configFile else { return resolve(file: nil, flags: flags, environment: environment) }
        do {
            guard let bytes = try AtomicFile.read(configFile, limit: 1 << 20) else {
                var report = resolve(file: nil, flags: flags, environment: environment)
                if required { report.problems.insert(ConfigProblem(file: configFile, reason: "no such file"), at: 0) }
                return report
            }
            guard let text = String(validating: bytes, as: UTF8.self) else {
                var report = resolve(file: nil, flags: flags, environment: environment)
                report.configFile = configFile
                let line = TOMLDocument.firstInvalidUTF8Line(bytes)
                report.problems.insert(ConfigProblem(file: configFile, line: line, reason: "not valid UTF-8"), at: 0)
                return report
            }
            return resolve(file: (configFile, text), flags: flags, environment: environment)
        } catch {
            var report = resolve(file: nil, flags: flags, environment: environment)
            report.problems.insert(ConfigProblem(file: configFile, reason: error.description), at: 0)
            return report
        }
    }

    /// The same from the text of a configuration file (`path` names it in problems).
    public static func load(text: String, path: String, flags: [String: TOMLValue] = [:],
                            environment: @Sendable (String) -> String? = processEnvironment) -> ConfigReport {
        resolve(file: (path, text), flags: flags, environment: environment)
    }

    // MARK: -

    static func resolve(file: (path: String, text: String)?, flags: [String: TOMLValue],
                        environment: (String) -> String?) -> ConfigReport {
        var report = ConfigReport()
        report.configFile = file?.path
        var fileValues: [String: TOMLEntry] = [:]
        if let file {
            let doc = TOMLDocument(parsing: file.text)
            fileValues = check(doc, path: file.path, into: &report.problems)
        }

        for key in SettingKey.all { report.sources[key.path] = .builtIn }
        var s = DaemonSettings()

        /// Applies the value of `path` (flag, else file) if `apply` accepts it; `apply` returns
        /// the reason it does not.
        func take(_ path: String, _ apply: (TOMLValue, SettingSource) -> String?) {
            guard let key = SettingKey.named(path) else { preconditionFailure("unknown setting \(path)") }
            let value: TOMLValue
            let source: SettingSource
            if let v = flags[path] {
                value = v
                source = .flag(key.flag)
            } else if let e = fileValues[path] {
                value = e.value
                source = .file(file?.path ?? "", line: e.line)
            } else {
                return
            }
            var reason: String?
            if key.absolutePath, case .file = source, case .string(let p) = value, !p.isEmpty, !p.hasPrefix("/") {
                reason = "\"\(p)\" must be an absolute path"
            } else {
                reason = apply(value, source)
            }
            if let reason {
                report.problems.append(ConfigProblem(at: source, key: path, reason: reason))
            } else {
                report.sources[path] = source
            }
        }

        take("env_file") { v, _ in
            s.envFile = v.string
            return nil
        }
        take("server.listen") { v, _ in
            guard (try? SocketAddress(parsing: v.string)) != nil else {
                return "\"\(v.string)\" is not an IP:PORT address (e.g. \"0.0.0.0:47400\" or \"[::]:47400\"; names are not looked up)"
            }
            s.listen = v.string
            return nil
        }
        take("server.public_addresses") { v, _ in
            for a in v.strings {
                guard let address = try? SocketAddress(parsing: a, port: 0) else {
                    return "\"\(a)\" is not an IP address (e.g. \"203.0.113.10\"; names are not looked up)"
                }
                if address.isUnspecified { return "\"\(a)\" is not an address clients can reach" }
            }
            s.publicAddresses = v.strings
            return nil
        }
        take("server.stun_servers") { v, _ in
            for a in v.strings where (try? SocketAddress(parsing: a, port: 3478)) == nil {
                return "\"\(a)\" is not an IP or IP:PORT address (names are not looked up)"
            }
            s.stunServers = v.strings
            return nil
        }
        take("server.state_dir") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.stateDir = v.string
            return nil
        }
        take("server.security_dir") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.securityDir = v.string
            return nil
        }
        take("server.bootstrap_key_file") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.bootstrapKeyFile = v.string
            return nil
        }
        take("server.rekey_interval") { v, _ in
            if let r = inRange(v.integer, 10...86_400, "seconds") { return r }
            s.rekeyInterval = v.integer
            return nil
        }
        take("server.session_timeout") { v, _ in
            if let r = inRange(v.integer, 10...86_400, "seconds") { return r }
            s.sessionTimeout = v.integer
            return nil
        }
        take("server.cipher") { v, _ in
            if let r = oneOf(v.string, DaemonSettings.ciphers, "cipher") { return r }
            if v.string == "aes256gcm" && !AEADCipher.aes256gcm.isAvailable {
                return "this CPU has no AES-NI: use \"chacha20poly1305\" or \"auto\""
            }
            s.cipher = v.string
            return nil
        }
        take("server.log_level") { v, _ in
            if let r = oneOf(v.string, DaemonSettings.logLevelNames, "log level") { return r }
            s.logLevel = v.string
            return nil
        }
        take("assistant.provider") { v, _ in
            if let r = oneOf(v.string, ProviderKind.allCases.map(\.rawValue), "provider") { return r }
            s.provider = ProviderKind(rawValue: v.string) ?? .none
            return nil
        }
        take("assistant.model") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.model = v.string
            return nil
        }
        take("assistant.base_url") { v, _ in
            let u = v.string
            let rest = u.hasPrefix("https://") ? u.dropFirst(8) : u.hasPrefix("http://") ? u.dropFirst(7) : nil
            guard let rest, let host = rest.split(separator: "/", omittingEmptySubsequences: false).first, !host.isEmpty,
                  !u.contains(where: { $0 == " " || $0 == "\t" }) else {
                return "\"\(u)\" is not an http:// or https:// URL (e.g. \"http://127.0.0.1:11434/v1\")"
            }
            s.baseURL = u
            return nil
        }
        take("assistant.api_key_env") { v, _ in
            guard v.string.isEmpty || EnvFile.isVariableName(v.string) else {
                return "\"\(v.string)\" is not a variable name (letters, digits and _; \"\" for none)"
            }
            s.apiKeyEnv = v.string
            return nil
        }
        take("assistant.max_tokens") { v, _ in
            if let r = inRange(v.integer, 1...1_000_000, "tokens") { return r }
            s.maxTokens = v.integer
            return nil
        }
        take("assistant.context_dir") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.contextDir = v.string
            return nil
        }
        take("assistant.history_budget") { v, _ in
            if let r = inRange(v.integer, 100...100_000_000, "tokens") { return r }
            s.historyBudget = v.integer
            return nil
        }
        take("assistant.context_budget") { v, _ in
            if let r = inRange(v.integer, 1000...100_000_000, "bytes") { return r }
            s.contextBudget = v.integer
            return nil
        }
        take("assistant.llm_idle_timeout") { v, _ in
            guard v.number > 0, v.number <= 86_400 else { return "must be more than 0 and at most 86400 seconds, not \(v)" }
            s.llmIdleTimeout = v.number
            return nil
        }
        take("assistant.llm_timeout") { v, _ in
            guard v.number > 0, v.number <= 86_400 else { return "must be more than 0 and at most 86400 seconds, not \(v)" }
            s.llmTimeout = v.number
            return nil
        }
        take("assistant.llm_max_retries") { v, _ in
            if let r = inRange(v.integer, 0...10, "retries") { return r }
            s.llmMaxRetries = v.integer
            return nil
        }
        take("cron.time_zone") { v, _ in
            do throws(TimeZoneError) { _ = try TimeZoneRules.load(named: v.string) } catch { return error.description }
            s.timeZone = v.string
            return nil
        }
        take("cron.catch_up") { v, _ in
            if let r = oneOf(v.string, CatchUpPolicy.allCases.map(\.rawValue), "catch-up policy") { return r }
            s.catchUp = CatchUpPolicy(rawValue: v.string) ?? .once
            return nil
        }
        take("files.root") { v, _ in
            if let r = nonEmpty(v) { return r }
            s.filesRoot = v.string
            return nil
        }
        take("files.read_only") { v, _ in
            s.filesReadOnly = v.boolean
            return nil
        }
        take("rotation.ports") { v, _ in
            if v.string.isEmpty { s.rotationPorts = nil; return nil }
            let parts = v.string.split(separator: "-").map { UInt16(String($0.filter { $0 != " " })) }
            guard parts.count == 2, let low = parts[0], let high = parts[1], low >= 1024, high > low else {
                return "\"\(v.string)\" is not a port range LOW-HIGH from 1024 up with at least 2 ports (e.g. \"40000-40999\"; \"\" for off)"
            }
            s.rotationPorts = low...high
            return nil
        }
        take("rotation.period") { v, _ in
            if let r = inRange(v.integer, 60...604_800, "seconds") { return r }
            s.rotationPeriod = v.integer
            return nil
        }
        take("rotation.grace") { v, _ in
            if let r = inRange(v.integer, 0...604_799, "seconds") { return r }
            s.rotationGrace = v.integer
            return nil
        }
        if s.rotationGrace >= s.rotationPeriod {
            report.problems.append(ConfigProblem(at: report.sources["rotation.grace"] ?? .builtIn, key: "rotation.grace",
                                                 reason: "must be shorter than the period (\(s.rotationPeriod) s)"))
        }

        // What a key needs from others.
        let providerSource = report.sources["assistant.provider"] ?? .builtIn
        if s.provider == .openaiCompatible {
            if s.model == nil {
                report.problems.append(ConfigProblem(at: providerSource, key: "assistant.model",
                                                     reason: "required for provider \"openai-compatible\" (the model's name on that server)"))
            }
            if s.baseURL == nil {
                report.problems.append(ConfigProblem(at: providerSource, key: "assistant.base_url",
                                                     reason: "required for provider \"openai-compatible\" (e.g. \"http://127.0.0.1:11434/v1\")"))
            }
        }
        report.settings = s
        secrets(&report, environment: environment)
        report.problems = ordered(report.problems, configFile: file?.path)
        return report
    }

    /// Syntax, sections, keys and types; the entries that pass, by path.
    static func check(_ doc: TOMLDocument, path: String, into problems: inout [ConfigProblem]) -> [String: TOMLEntry] {
        for e in doc.errors { problems.append(ConfigProblem(file: path, line: e.line, key: e.key, reason: e.message)) }
        let sections = SettingKey.sections
        for t in doc.tables where !sections.contains(t.name) {
            let hint = suggestion(for: t.name, among: sections).map { " (did you mean [\($0)]?)" }
                ?? "; the sections are " + sections.map { "[\($0)]" }.joined(separator: ", ")
            problems.append(ConfigProblem(file: path, line: t.line, key: "[\(t.name)]", reason: "unknown section" + hint))
        }
        var values: [String: TOMLEntry] = [:]
        for e in doc.entries {
            if !e.table.isEmpty && !sections.contains(e.table) { continue }  // reported with its section
            guard let key = SettingKey.named(e.path) else {
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path, reason: unknownKey(e)))
                continue
            }
            switch (key.kind, e.value) {
            case (.string, .string), (.integer, .integer), (.number, .float), (.boolean, .boolean), (.strings, .stringArray):
                values[e.path] = e
            case (.number, .integer(let i)):
                var converted = e
                converted.value = .float(Double(i))
                values[e.path] = converted
            case (.strings, .string(let one)):
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path,
                                              reason: "must be an array of strings, not a string (write [\(TOMLValue.quoted(one))])"))
            case (.integer, .string(let t)) where Int(t) != nil,
                 (.number, .string(let t)) where Double(t) != nil:
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path,
                                              reason: "must be \(key.kind.name), not a string (remove the quotes: \(t))"))
            case (.boolean, .string(let t)) where t == "true" || t == "false":
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path,
                                              reason: "must be true or false, not a string (remove the quotes: \(t))"))
            case (.integer, .float(let d)):
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path, reason: "must be a whole number, not \(d)"))
            default:
                problems.append(ConfigProblem(file: path, line: e.line, key: e.path,
                                              reason: "must be \(key.kind.name), not \(e.value.typeName)"))
            }
        }
        return values
    }

    static func unknownKey(_ e: TOMLEntry) -> String {
        let here = SettingKey.all.filter { $0.section == e.table }
        if let other = SettingKey.all.first(where: { $0.name == e.key && $0.section != e.table }) {
            return other.section.isEmpty ? "unknown key; \(e.key) goes at the top, before any [section]"
                : "unknown key; \(e.key) belongs in [\(other.section)]"
        }
        if let near = suggestion(for: e.key, among: here.map(\.name)) { return "unknown key (did you mean \(near)?)" }
        if let near = suggestion(for: e.key, among: SettingKey.all.map(\.name)),
           let other = SettingKey.all.first(where: { $0.name == near }) {
            return "unknown key (did you mean \(other.path)?)"
        }
        if here.isEmpty { return "unknown key" }
        let place = e.table.isEmpty ? "at the top" : "in [\(e.table)]"
        return "unknown key; the keys \(place) are " + here.map(\.name).joined(separator: ", ")
    }

    /// The environment file and the secrets.
    static func secrets(_ report: inout ConfigReport, environment: (String) -> String?) {
        let s = report.settings
        let envSource = report.sources["env_file"] ?? .builtIn
        if !s.envFile.isEmpty {
            switch EnvFile.load(s.envFile) {
            case .missing:
                if envSource != .builtIn {
                    report.problems.append(ConfigProblem(at: envSource, key: "env_file", reason: "\(s.envFile) does not exist"))
                }
            case .unusable(let reason):
                report.problems.append(ConfigProblem(file: s.envFile, reason: reason + " (so none of its variables is used)"))
            case .loaded(let env):
                report.envFile = env
                for e in env.errors {
                    report.problems.append(ConfigProblem(file: s.envFile, line: e.line, key: e.key, reason: e.message))
                }
                report.variablesToExport = env.variables.filter { environment($0.name)?.isEmpty ?? true }
            }
        }

        func status(_ name: String) -> SecretStatus {
            if let v = environment(name), !v.isEmpty { return SecretStatus(name: name, state: .environment) }
            if let v = report.envFile?[name], !v.isEmpty { return SecretStatus(name: name, state: .envFile(s.envFile)) }
            return SecretStatus(name: name, state: .notSet)
        }

        // The bootstrap key: a file, or the variable.
        if let file = s.bootstrapKeyFile {
            let source = report.sources["server.bootstrap_key_file"] ?? .builtIn
            var reason: String?
            do {
                if let bytes = try AtomicFile.read(file, limit: 4096) {
                    if bytes.allSatisfy({ $0 == 0x0A || $0 == 0x0D }) { reason = "\(file) is empty" }
                } else {
                    reason = "\(file) does not exist (make one with `clawchatd bootstrap-key > FILE; chmod 600 FILE`)"
                }
            } catch {
                reason = error.description
            }
            if let reason {
                report.problems.append(ConfigProblem(at: source, key: "server.bootstrap_key_file", reason: reason))
                report.secrets.append(SecretStatus(name: "bootstrap key", state: .notSet))
            } else {
                report.secrets.append(SecretStatus(name: "bootstrap key", state: .file(file)))
            }
        } else {
            let st = status("CLAWCHAT_BOOTSTRAP_KEY")
            report.secrets.append(st)
            if !st.isSet {
                let whereTo = s.envFile.isEmpty ? "the environment" : "the environment or \(s.envFile)"
                report.problems.append(ConfigProblem(key: "CLAWCHAT_BOOTSTRAP_KEY",
                    reason: "not set: put it in \(whereTo), or set server.bootstrap_key_file (make one with `clawchatd bootstrap-key`)"))
            }
        }

        // The provider's API key.
        let keyEnv = s.effectiveAPIKeyEnv
        if !keyEnv.isEmpty {
            let st = status(keyEnv)
            report.secrets.append(st)
            if !st.isSet {
                report.warnings.append(ConfigProblem(key: keyEnv,
                    reason: "not set: provider \(s.provider.rawValue) answers every chat with a notice until it is"))
            }
        }
        // Whatever else the environment file holds, by name.
        for v in report.envFile?.variables ?? [] where !report.secrets.contains(where: { $0.name == v.name }) {
            report.secrets.append(status(v.name))
        }
    }

    /// The configuration file's problems by line, then the flags', then the rest (the
    /// environment file's by line); stable otherwise.
    static func ordered(_ problems: [ConfigProblem], configFile: String?) -> [ConfigProblem] {
        func rank(_ p: ConfigProblem) -> (Int, Int) {
            if p.file != nil && p.file == configFile { return (0, p.line ?? 0) }
            if p.flag != nil { return (1, 0) }
            if p.file != nil { return (2, p.line ?? 0) }
            return (3, 0)
        }
        return problems.enumerated().sorted { a, b in
            let ra = rank(a.element), rb = rank(b.element)
            return ra != rb ? ra < rb : a.offset < b.offset
        }.map(\.element)
    }

    // MARK: checks

    static func nonEmpty(_ v: TOMLValue) -> String? { v.string.isEmpty ? "must not be empty" : nil }

    static func inRange(_ n: Int, _ range: ClosedRange<Int>, _ unit: String) -> String? {
        range.contains(n) ? nil : "must be between \(range.lowerBound) and \(range.upperBound) \(unit), not \(n)"
    }

    static func oneOf(_ value: String, _ choices: [String], _ what: String) -> String? {
        if choices.contains(value) { return nil }
        let hint = suggestion(for: value, among: choices).map { " (did you mean \"\($0)\"?)" } ?? ""
        return "unknown \(what) \"\(value)\"\(hint); one of " + choices.map { "\"\($0)\"" }.joined(separator: ", ")
    }

    /// The nearest of `choices` to a misspelt `word`, if one is near enough to be meant.
    public static func suggestion(for word: String, among choices: [String]) -> String? {
        let w = word.lowercased()
        var best: (String, Int)?
        for c in choices {
            let d = c.hasPrefix(w) && w.count >= 3 ? 1 : editDistance(w, c.lowercased())
            let limit = max(1, min(3, c.count / 3))
            if d <= limit, best.map({ d < $0.1 }) ?? true { best = (c, d) }
        }
        return best?.0
    }

    /// Levenshtein distance, with a transposition of neighbours counted as one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
        if x.isEmpty { return y.count }
        if y.isEmpty { return x.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in 0...x.count { d[i][0] = i }
        for j in 0...y.count { d[0][j] = j }
        for i in 1...x.count {
            for j in 1...y.count {
                let cost = x[i - 1] == y[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
            }
        }
        return d[x.count][y.count]
    }
}

extension TOMLValue {
    // Accessors for values whose type `check` has already established.
    var string: String { if case .string(let s) = self { return s }; return "" }
    var integer: Int { if case .integer(let i) = self { return i }; return 0 }
    var number: Double {
        switch self {
        case .float(let d): return d
        case .integer(let i): return Double(i)
        default: return 0
        }
    }
    var boolean: Bool { if case .boolean(let b) = self { return b }; return false }
    var strings: [String] { if case .stringArray(let a) = self { return a }; return [] }
}
