import ArgumentParser
import ClawAssistant
import ClawClient
import ClawReactor
import ClawTransport
import Glibc

/// `clawchat cron ...`: the scheduler's jobs, from scripts. Every subcommand takes `--json`.
struct CronCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cron", abstract: "List, run, add, remove, enable or disable the daemon's CRON.md jobs.",
        subcommands: [List.self, Run.self, Reload.self, Add.self, Remove.self, Enable.self, Disable.self, Results.self],
        defaultSubcommand: List.self)

    struct Common: ParsableArguments {
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup var identity: IdentityOptions
    }

    /// Prints a reply: the daemon's JSON or text, or `{"ok":true,"message":...}` with --json.
    static func show(_ m: Message, json: Bool, render: ((Message) -> String)? = nil) {
        if let render { out(json ? m.text + "\n" : render(m)); return }
        out(json ? "{\"ok\":true,\"message\":\(jsonQuoted(m.text))}\n" : m.text + "\n")
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Jobs with their schedule, next run, last result.")
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-list", identity: common.identity), json: common.json) { CronText.list($0.body) }
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run a job now (its result is pushed; see `cron results`).")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-run", params: ["name": name], identity: common.identity), json: common.json)
        }
    }

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-read CRON.md now.")
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-reload", identity: common.identity), json: common.json)
        }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a job to CRON.md (the rest of the file is left as it is).")
        @Option(help: "A unique name.") var name: String
        @Option(help: "A cron expression, e.g. \"0 9 * * 1-5\" or @daily.") var schedule: String
        @Option(help: "The task for the assistant, one line.") var command: String
        @Option(help: "Free text the assistant gets with the task.") var context: String = ""
        @Flag(help: "Add it disabled.") var disabled = false
        @OptionGroup var common: Common
        func run() throws {
            let m = try oneShot("cron-add", params: ["name": name, "schedule": schedule, "command": command,
                                                     "enabled": disabled ? "false" : "true"],
                                body: Array(context.utf8), identity: common.identity)
            CronCommand.show(m, json: common.json)
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a job from CRON.md.")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-remove", params: ["name": name], identity: common.identity), json: common.json)
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a job (edits its **Enabled** line).")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-enable", params: ["name": name], identity: common.identity), json: common.json)
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a job (edits its **Enabled** line).")
        @Argument(help: "The job's name.") var name: String
        @OptionGroup var common: Common
        func run() throws {
            CronCommand.show(try oneShot("cron-disable", params: ["name": name], identity: common.identity), json: common.json)
        }
    }

    struct Results: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Results of runs this device has not seen yet (or --all of the recent ones).")
        @Flag(help: "The recent results, seen or not.") var all = false
        @OptionGroup var common: Common
        func run() throws {
            let cursor = CronCursor()
            let m = try oneShot("cron-results", params: ["after": all ? "0" : String(cursor.seen)], identity: common.identity)
            let (texts, last) = CronText.results(m.body)
            if common.json { out(m.text + "\n") } else if texts.isEmpty { out("no new cron results\n") } else {
                out(texts.joined(separator: "\n\n") + "\n")
            }
            if last > cursor.seen { cursor.save(last) }
        }
    }
}

/// The newest cron result this device has shown, kept beside the identity, so a client that was
/// away asks for exactly what it missed.
struct CronCursor {
    let path: String
    let seen: Int

    init(path: String = AtomicFile.directory(of: defaultIdentityPath()) + "/cron-seen") {
        self.path = path
        seen = (try? AtomicFile.read(path)).flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: " \n")) } ?? 0
    }

    func save(_ seq: Int) {
        try? AtomicFile.write(Array("\(seq)\n".utf8), to: path, mode: 0o600)
    }
}
