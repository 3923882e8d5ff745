import ClawAssistant
import ClawCron
import ClawReactor
import Testing
@testable import ClawConfig

/// The settings: validation that reports every problem at its line, the precedence of flags over
/// the file over the defaults, the environment file and the secrets, and the example file.
@Suite struct ConfigLoaderTests {
    /// A bootstrap key in the environment, so that only the file's own problems show.
    static let withKey = environment(["CLAWCHAT_BOOTSTRAP_KEY": "k"])

    func load(_ text: String, flags: [String: TOMLValue] = [:],
              env: @escaping @Sendable (String) -> String? = withKey) -> ConfigReport {
        ConfigLoader.load(text: "env_file = \"\"\n" + text, path: "/etc/clawchat/clawchatd.toml", flags: flags, environment: env)
    }

    /// The issue's example: three different mistakes on three lines, all reported with their
    /// lines, and nothing else.
    @Test func threeMistakesAllReportedWithTheirLines() {
        let report = load("""
            [server]
            listen = "0.0.0.0:47400"
            rekey_intervall = 3600
            session_timeout = "180"

            [assistant]
            provider = "opena"
            """)
        #expect(report.problems.map(\.description) == [
            "/etc/clawchat/clawchatd.toml:4: server.rekey_intervall: unknown key (did you mean rekey_interval?)",
            "/etc/clawchat/clawchatd.toml:5: server.session_timeout: must be an integer, not a string (remove the quotes: 180)",
            "/etc/clawchat/clawchatd.toml:8: assistant.provider: unknown provider \"opena\" (did you mean \"openai\"?); one of \"openai\", \"deepseek\", \"anthropic\", \"openai-compatible\", \"echo\", \"none\"",
        ])
        #expect(!report.isValid)
    }

    @Test func everyKindOfProblem() {
        let report = load("""
            [servre]
            listen = "x"
            [server]
            listen = "localhost:47400"
            public_addresses = ["0.0.0.0"]
            stun_servers = "1.2.3.4"
            state_dir = "relative/state"
            rekey_interval = 5
            cipher = "aes"
            log_level = "loud"
            model = "x"
            [assistant]
            provider = "openai-compatible"
            max_tokens = 1.5
            api_key_env = "MY-KEY"
            base_url = "ftp://x"
            llm_timeout = 0
            llm_max_retries = 11
            [cron]
            time_zone = "Mars/Olympus"
            catch_up = "always"
            [files]
            read_only = "true"
            extra = 1
            """)
        let byLine = report.problems.map { ($0.line ?? 0, $0.key ?? "", $0.reason) }
        #expect(byLine.map(\.0) == [2, 5, 6, 7, 8, 9, 10, 11, 12, 14, 14, 15, 16, 17, 18, 19, 21, 22, 24, 25])
        func reason(_ line: Int, _ key: String? = nil) -> String {
            byLine.first { $0.0 == line && (key == nil || $0.1 == key) }?.2 ?? "none"
        }
        #expect(reason(2) == "unknown section (did you mean [server]?)")
        #expect(reason(5).contains("not an IP:PORT address"))
        #expect(reason(6).contains("not an address clients can reach"))
        #expect(reason(7) == "must be an array of strings, not a string (write [\"1.2.3.4\"])")
        #expect(reason(8) == "\"relative/state\" must be an absolute path")
        #expect(reason(9) == "must be between 10 and 86400 seconds, not 5")
        #expect(reason(10).contains("did you mean \"aes256gcm\"?"))
        #expect(reason(11).hasPrefix("unknown log level \"loud\""))
        #expect(reason(12) == "unknown key; model belongs in [assistant]")
        // The provider's line carries what it needs and lacks: the model (given in the wrong
        // section) ... and base_url is given but invalid, so it is missing too.
        #expect(reason(14, "assistant.model").hasPrefix("required for provider \"openai-compatible\""))
        #expect(reason(14, "assistant.base_url").hasPrefix("required for provider \"openai-compatible\""))
        #expect(reason(15) == "must be a whole number, not 1.5")
        #expect(reason(16).contains("not a variable name"))
        #expect(reason(17).contains("not an http:// or https:// URL"))
        #expect(reason(18).contains("more than 0"))
        #expect(reason(19) == "must be between 0 and 10 retries, not 11")
        #expect(reason(21).contains("unknown"))
        #expect(reason(22).hasPrefix("unknown catch-up policy \"always\""))
        #expect(reason(24) == "must be true or false, not a string (remove the quotes: true)")
        #expect(reason(25).hasPrefix("unknown key; the keys in [files] are root, read_only"))
        // A key with a problem keeps its default.
        #expect(report.settings.rekeyInterval == 3600)
        #expect(report.settings.listen == "0.0.0.0:47400")
    }

    @Test func syntaxErrorsAreProblemsWithTheKey() {
        let report = load("[server]\nlisten = 0.0.0.0:1\nlog_level = \"debug\"\n")
        #expect(report.problems.map(\.description) == [
            "/etc/clawchat/clawchatd.toml:3: server.listen: a string needs quotes: \"0.0.0.0:1\"",
        ])
        #expect(report.settings.logLevel == "debug")
    }

    @Test func precedenceFlagsOverFileOverDefaults() {
        let report = load("""
            [server]
            listen = "127.0.0.1:5000"
            log_level = "debug"
            [assistant]
            provider = "openai"
            llm_idle_timeout = 30
            [files]
            read_only = true
            """, flags: [
                "server.listen": .string("127.0.0.1:6000"),
                "files.read_only": .boolean(false),
                "assistant.max_tokens": .integer(100),
            ])
        #expect(report.problems == [])
        let s = report.settings
        #expect(s.listen == "127.0.0.1:6000")
        #expect(report.sources["server.listen"] == .flag("--listen"))
        #expect(s.logLevel == "debug")
        #expect(report.sources["server.log_level"] == .file("/etc/clawchat/clawchatd.toml", line: 4))
        #expect(s.provider == .openai)
        #expect(s.llmIdleTimeout == 30)  // an integer where a number is expected
        #expect(s.filesReadOnly == false)
        #expect(report.sources["files.read_only"] == .flag("--files-read-only"))
        #expect(s.maxTokens == 100)
        #expect(s.rekeyInterval == 3600)
        #expect(report.sources["server.rekey_interval"] == .builtIn)
        #expect(s.securityDirectory == "/var/lib/clawchat/security")
        #expect(s.effectiveAPIKeyEnv == "OPENAI_API_KEY")
        // A flag's value is checked like the file's, and named by the flag.
        let bad = load("", flags: ["server.cipher": .string("rot13"), "server.state_dir": .string("rel")])
        #expect(bad.problems.map(\.description) == [
            "flag --cipher: server.cipher: unknown cipher \"rot13\"; one of \"auto\", \"aes256gcm\", \"chacha20poly1305\"",
        ])
        #expect(bad.settings.stateDir == "rel")  // relative paths are fine on the command line
    }

    @Test func noFileMeansDefaults() {
        let report = ConfigLoader.load(configFile: nil, flags: ["env_file": .string("")], environment: Self.withKey)
        #expect(report.problems == [])
        #expect(report.configFile == nil)
        let d = DaemonSettings()
        for key in SettingKey.all where key.path != "env_file" {
            #expect(report.settings.value(of: key.path) == d.value(of: key.path), "\(key.path)")
            #expect(report.sources[key.path] == .builtIn)
        }
        let missing = ConfigLoader.load(configFile: "/nonexistent/clawchatd.toml", flags: ["env_file": .string("")], environment: Self.withKey)
        #expect(missing.problems.map(\.description) == ["/nonexistent/clawchatd.toml: no such file"])
        let optional = ConfigLoader.load(configFile: "/nonexistent/clawchatd.toml", required: false,
                                         flags: ["env_file": .string("")], environment: Self.withKey)
        #expect(optional.problems == [])
    }

    @Test func environmentFileAndSecrets() {
        let dir = TempDir()
        defer { dir.remove() }
        let envPath = dir.write("clawchatd.env", "CLAWCHAT_BOOTSTRAP_KEY=from-file\nOPENAI_API_KEY=sk-file\nOTHER=x\n", mode: 0o640)
        let text = "env_file = \"\(envPath)\"\n[assistant]\nprovider = \"openai\"\n"
        // The environment has the API key: it wins; the bootstrap key comes from the file.
        let report = ConfigLoader.load(text: text, path: "c.toml", environment: environment(["OPENAI_API_KEY": "sk-env"]))
        #expect(report.problems == [])
        #expect(report.secrets.map(\.description) == [
            "CLAWCHAT_BOOTSTRAP_KEY: set (env file \(envPath))",
            "OPENAI_API_KEY: set (environment)",
            "OTHER: set (env file \(envPath))",
        ])
        #expect(report.variablesToExport.map(\.name) == ["CLAWCHAT_BOOTSTRAP_KEY", "OTHER"])
        for s in report.secrets { #expect(!s.description.contains("sk-") && !s.description.contains("from-file")) }

        // Readable by others: a problem at the file, and nothing from it is used.
        let open = dir.write("open.env", "CLAWCHAT_BOOTSTRAP_KEY=x\n", mode: 0o644)
        let bad = ConfigLoader.load(text: "env_file = \"\(open)\"\n", path: "c.toml", environment: environment([:]))
        #expect(bad.problems.map(\.description) == [
            "\(open): mode 0644 lets every user read or change it: chmod 600 (or 640 for the daemon's group) (so none of its variables is used)",
            "CLAWCHAT_BOOTSTRAP_KEY: not set: put it in the environment or \(open), or set server.bootstrap_key_file (make one with `clawchatd bootstrap-key`)",
        ])
        #expect(bad.variablesToExport == [])

        // A mistake in the environment file: its file and line.
        let broken = dir.write("broken.env", "A=1\nnot a line\n", mode: 0o600)
        let b = ConfigLoader.load(text: "env_file = \"\(broken)\"\n", path: "c.toml", environment: Self.withKey)
        #expect(b.problems.map(\.description) == ["\(broken):2: expected KEY=VALUE"])

        // An explicit file that is missing is a problem; the default one may be absent.
        let gone = ConfigLoader.load(text: "\n\nenv_file = \"\(dir.path)/gone.env\"\n", path: "c.toml", environment: Self.withKey)
        #expect(gone.problems.map(\.description) == ["c.toml:3: env_file: \(dir.path)/gone.env does not exist"])
        let relative = ConfigLoader.load(text: "env_file = \"x.env\"\n", path: "c.toml", environment: Self.withKey)
        #expect(relative.problems.map(\.description) == ["c.toml:1: env_file: \"x.env\" must be an absolute path"])

        // No API key: a warning, not a problem.
        let noKey = ConfigLoader.load(text: "env_file = \"\"\n[assistant]\nprovider = \"anthropic\"\n", path: "c.toml", environment: Self.withKey)
        #expect(noKey.problems == [])
        #expect(noKey.warnings.map(\.key) == ["ANTHROPIC_API_KEY"])
        #expect(noKey.secrets.last == SecretStatus(name: "ANTHROPIC_API_KEY", state: .notSet))
    }

    @Test func bootstrapKeyFile() {
        let dir = TempDir()
        defer { dir.remove() }
        let key = dir.write("bk", "secret\n")
        let ok = ConfigLoader.load(text: "env_file = \"\"\n[server]\nbootstrap_key_file = \"\(key)\"\n", path: "c.toml", environment: environment([:]))
        #expect(ok.problems == [])
        #expect(ok.secrets == [SecretStatus(name: "bootstrap key", state: .file(key))])
        let missing = ConfigLoader.load(text: "env_file = \"\"\n[server]\nbootstrap_key_file = \"\(dir.path)/none\"\n", path: "c.toml", environment: environment([:]))
        #expect(missing.problems.map(\.line) == [3])
        #expect(missing.problems.first?.reason.contains("does not exist") == true)
    }

    @Test func suggestions() {
        #expect(ConfigLoader.suggestion(for: "listn", among: ["listen", "cipher"]) == "listen")
        #expect(ConfigLoader.suggestion(for: "ciphre", among: ["listen", "cipher"]) == "cipher")
        #expect(ConfigLoader.suggestion(for: "zzz", among: ["listen", "cipher"]) == nil)
        #expect(ConfigLoader.suggestion(for: "state-dir", among: SettingKey.all.map(\.name)) == "state_dir")
        #expect(ConfigLoader.suggestion(for: "Server", among: SettingKey.sections) == "server")
    }

    // MARK: the example file

    static func example() throws -> String {
        let bytes = try #require(try AtomicFile.read("\(repositoryRoot)/packaging/clawchatd.toml"))
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test func exampleParsesWithZeroProblems() throws {
        let report = ConfigLoader.load(text: try Self.example(), path: "clawchatd.toml", environment: Self.withKey)
        #expect(report.problems == [])
        #expect(TOMLDocument(parsing: try Self.example()).errors == [])
    }

    /// Uncommented, every documented default is a valid value and the code's default.
    @Test func exampleDocumentsEveryKeyWithItsDefault() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let env = dir.write("clawchatd.env", "", mode: 0o600)
        let key = dir.write("bootstrap.key", "k\n")
        var uncommented: [String] = []
        var documented: Set<String> = []
        var table = ""
        for line in try Self.example().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("[") { table = String(line.dropFirst().dropLast()) }
            if line.hasPrefix("# "), let eq = line.firstRange(of: " = "),
               line.dropFirst(2)[..<eq.lowerBound].allSatisfy({ $0.isLetter || $0 == "_" }) {
                let name = String(line.dropFirst(2)[..<eq.lowerBound])
                documented.insert(table.isEmpty ? name : "\(table).\(name)")
                uncommented.append(String(line.dropFirst(2))
                    .replacingOccurrences("/etc/clawchat/clawchatd.env", env)
                    .replacingOccurrences("/etc/clawchat/bootstrap.key", key))
            } else {
                uncommented.append(String(line))
            }
        }
        #expect(documented == Set(SettingKey.all.map(\.path)))
        let report = ConfigLoader.load(text: uncommented.joined(separator: "\n"), path: "example", environment: Self.withKey)
        #expect(report.problems == [])
        let defaults = DaemonSettings()
        let examples: Set = ["env_file", "server.bootstrap_key_file", "assistant.model", "assistant.base_url",
                             "assistant.api_key_env", "cron.time_zone", "rotation.ports"]
        for key in SettingKey.all where !examples.contains(key.path) {
            #expect(report.settings.value(of: key.path) == defaults.value(of: key.path), "\(key.path)")
            if case .file = report.sources[key.path] {} else { Issue.record("\(key.path) not read from the example") }
        }
    }

    @Test func exampleEnvFileParses() throws {
        let bytes = try #require(try AtomicFile.read("\(repositoryRoot)/packaging/clawchatd.env.example"))
        let env = EnvFile(parsing: String(decoding: bytes, as: UTF8.self))
        #expect(env.errors == [])
        #expect(env.variables.map(\.name) == ["CLAWCHAT_BOOTSTRAP_KEY"])
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: target) {
            out += rest[..<r.lowerBound] + replacement
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
