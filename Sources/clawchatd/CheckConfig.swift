// `clawchatd check-config`: every problem of the configuration at its location, or the settings
// in force and where each came from. Secrets show only as set or not set.
import ArgumentParser
import ClawConfig

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check the configuration: list every problem (exit 1), or show the settings in force (exit 0).",
        discussion: "Takes the same options as `run`, so it checks exactly what `run` would use.")

    @OptionGroup var state: StateOptions
    @OptionGroup var options: RunOptions

    func run() throws {
        let report = state.load(flags: options.flags)
        for w in report.warnings { print("warning: \(w)") }
        guard report.isValid else {
            print(ConfigProblems(report.problems).description)
            throw ExitCode.failure
        }
        print("configuration OK" + (report.configFile.map { " (\($0))" } ?? " (no configuration file: flags and built-in defaults)"))
        print("")
        let rows: [(String, String)] = SettingKey.all.map { key in
            let source = report.sources[key.path] ?? .builtIn
            guard let value = report.settings.value(of: key.path) else {
                return ("\(key.path) (not set)", "# default: \(DaemonSettings.derivedDefault(of: key.path) ?? "none")")
            }
            var note = source.description
            if source == .builtIn, let derived = DaemonSettings.derivedDefault(of: key.path) { note += " (\(derived))" }
            if key.path == "env_file" {
                note += report.settings.envFile.isEmpty ? " (none)" : report.envFile == nil ? " (absent: none read)" : ""
            }
            return ("\(key.path) = \(value)", "# \(note)")
        }
        let width = min(rows.map(\.0.count).max() ?? 0, 60)
        for (setting, note) in rows {
            print(setting.padding(to: width) + "  " + note)
        }
        print("")
        print("secrets:")
        for secret in report.secrets { print("  \(secret)") }
    }
}

/// Problems one a line, with a count: what `run` and `check-config` print.
struct ConfigProblems: CustomStringConvertible {
    let problems: [ConfigProblem]
    init(_ problems: [ConfigProblem]) { self.problems = problems }
    var description: String {
        let n = problems.count
        return problems.map(\.description).joined(separator: "\n")
            + "\n\(n) configuration problem\(n == 1 ? "" : "s")"
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
