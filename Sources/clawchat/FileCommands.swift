import ArgumentParser
import ClawClient
import ClawReactor
import Glibc

/// The file manager's one-shot commands (`clawchat ls`, `get`, `put`, ...), for scripts and
/// quick use; the interactive chat has the same as slash commands (`InteractiveFiles`).
/// Remote paths are relative to the daemon's shared folder (a leading `/` is the same root).
var fileSubcommands: [ParsableCommand.Type] {
    [LsCommand.self, StatCommand.self, GetCommand.self, PutCommand.self, RmCommand.self, MvCommand.self, MkdirCommand.self]
}

/// Exit statuses of the file commands, so scripts can tell failures apart.
enum FileExit {
    static let help = """
        Exit status: 0 done; 1 failed (I/O, connection, ...); 3 not found; 4 already exists \
        (use --overwrite); 5 verification failed (size or SHA-256); 6 refused (invalid path, \
        outside the shared folder, read-only, not a directory, not empty, ...); 130 interrupted.
        """

    static func status(for e: FileClientError) -> Int32 {
        switch e.code {
        case "not-found": return 3
        case "exists", "local-exists": return 4
        case "verification", "hash-mismatch": return 5
        case "invalid-path", "outside-sandbox", "read-only", "not-a-directory", "is-a-directory", "not-empty",
             "local-unusable", "too-large":
            return 6
        case "cancelled": return 130
        default: return 1
        }
    }

    /// Reports `e` (stderr, and a JSON object on stdout with --json) and gives the exit status.
    static func fail(_ e: FileClientError, json: Bool, note: String? = nil) -> ExitCode {
        err("clawchat: \(e)" + (note.map { "; " + $0 } ?? ""))
        if json { out("{\"error\":\(jsonQuoted(e.description)),\"code\":\(jsonQuoted(e.code))}\n") }
        return ExitCode(status(for: e))
    }
}

struct FileOptions: ParsableArguments {
    @Flag(help: "Print the result as JSON.") var json = false
    @OptionGroup var identity: IdentityOptions
}

/// A connected session and its file client for one command. The loop outlives everything
/// registered on it: `withFiles` holds it until the body and the session are gone.
struct FileContext {
    let loop: EventLoop
    let session: ClientSession
    let files: FileClient

    /// Runs the loop until `start`'s completion arrives or `timeout` passes (nil then).
    func wait<T>(timeout: Duration = .seconds(60), _ start: (@escaping (T) -> Void) -> Void) -> T? {
        var result: T?
        start { result = $0 }
        loop.run(until: timeout) { result != nil }
        return result
    }
}

func withFiles<T>(_ identity: IdentityOptions, _ body: (FileContext) throws -> T) throws -> T {
    ignoreSIGPIPE()
    let id = try identity.load()
    let loop = try EventLoop()
    return try withExtendedLifetime(loop) {
        let session = try connect(id, loop: loop, timeout: .seconds(30))
        return try body(FileContext(loop: loop, session: session, files: FileClient(session: session)))
    }
}

/// A remote path as typed on the command line, resolved from the root.
func remotePath(_ typed: String, json: Bool) throws -> String {
    guard let p = FileClient.join(cwd: "", typed) else { throw FileExit.fail(.aboveRoot(path: typed), json: json) }
    return p
}

/// `2026-12-01 14:03` in the local time zone.
func localTimeText(_ unix: Int64) -> String {
    var t = time_t(unix)
    var parts = tm()
    guard localtime_r(&t, &parts) != nil else { return "?" }
    var buf = [CChar](repeating: 0, count: 32)
    let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M", &parts)
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Listing lines: type, size, modification time, name (directories with a trailing `/`).
enum ListingText {
    static func lines(_ entries: [RemoteEntry], long: Bool) -> [String] {
        sorted(entries).map { e in
            let name = safeForTerminal(e.name) + (e.isDirectory ? "/" : "")
            guard long else { return name }
            let size = e.isDirectory ? "-" : ProgressMeter.formatBytes(e.size)
            return pad(e.kind.rawValue, 5) + String(repeating: " ", count: max(0, 9 - size.count)) + size
                + "  " + localTimeText(e.mtime) + "  " + name
        }
    }

    static func sorted(_ entries: [RemoteEntry]) -> [RemoteEntry] {
        entries.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }

    static func json(path: String, _ entries: [RemoteEntry]) -> String {
        "{\"path\":\(jsonQuoted(path)),\"entries\":[" + sorted(entries).map(entryJSON).joined(separator: ",") + "]}"
    }

    static func entryJSON(_ e: RemoteEntry) -> String { entryJSON(e, key: "name", e.name) }

    static func entryJSON(_ e: RemoteEntry, key: String, _ name: String) -> String {
        "{\"\(key)\":\(jsonQuoted(name)),\"type\":\"\(e.kind.rawValue)\",\"size\":\(e.size),"
            + "\"mode\":\"\(String(e.mode, radix: 8))\",\"mtime\":\(e.mtime)}"
    }

    private static func pad(_ s: String, _ n: Int) -> String { s + String(repeating: " ", count: max(0, n - s.count)) }
}

struct LsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls", abstract: "List a directory of the daemon's shared folder.", discussion: FileExit.help)
    @Argument(help: "The directory (default: the shared folder's root).") var path: String = ""
    @Flag(name: [.customShort("l"), .customLong("long")], help: "Type, size and modification time too.")
    var long = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let p = try remotePath(path, json: options.json)
        let result = try withFiles(options.identity) { c in c.wait { c.files.list(p, done: $0) } }
        switch result {
        case .success(let entries)?:
            if options.json { out(ListingText.json(path: p, entries) + "\n"); return }
            let lines = ListingText.lines(entries, long: long)
            if !lines.isEmpty { out(lines.joined(separator: "\n") + "\n") }
        case .failure(let e)?: throw FileExit.fail(e, json: options.json)
        case nil: throw FileExit.fail(.connection("no answer within 60 s"), json: options.json)
        }
    }
}

struct StatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stat", abstract: "Type, size, permissions and modification time of a remote path.", discussion: FileExit.help)
    @Argument(help: "The remote path.") var path: String
    @OptionGroup var options: FileOptions

    func run() throws {
        let p = try remotePath(path, json: options.json)
        switch try withFiles(options.identity, { c in c.wait { c.files.stat(p, done: $0) } }) {
        case .success(let e)?:
            if options.json {
                out(ListingText.entryJSON(e, key: "path", p) + "\n")
            } else {
                out(StatText.render(e, path: p) + "\n")
            }
        case .failure(let e)?: throw FileExit.fail(e, json: options.json)
        case nil: throw FileExit.fail(.connection("no answer within 60 s"), json: options.json)
        }
    }
}

enum StatText {
    static func render(_ e: RemoteEntry, path: String) -> String {
        """
        path:     /\(safeForTerminal(path))
        type:     \(e.kind.rawValue)
        size:     \(e.size) bytes (\(ProgressMeter.formatBytes(e.size)))
        mode:     \(e.modeString) (\(String(e.mode, radix: 8)))
        modified: \(localTimeText(e.mtime))
        """
    }
}

/// Progress of a one-shot transfer on stderr: a line redrawn in place on a terminal, plain
/// lines every few seconds otherwise.
final class TransferReporter {
    private let name: String
    private let clock = MonotonicClock()
    private let isTerminal = isatty(2) == 1
    private var meter: ProgressMeter?
    private var phase: FileTransfer.Progress.Phase?
    private var drawn = false

    init(name: String) { self.name = name }

    func progress(_ p: FileTransfer.Progress) {
        let now = clock.now
        if case .restarting(let why) = p.phase {
            clearLine()
            err("\(name): \(why); starting again from byte 0")
            meter = nil
            phase = nil
            return
        }
        if meter == nil || phase != p.phase {
            clearLine()
            meter = ProgressMeter(total: p.total, start: now, isTerminal: isTerminal, width: terminalColumns(2),
                                  name: p.phase == .hashing ? "hashing " + name : name, resumedFrom: p.resumedFrom)
            phase = p.phase
        }
        meter!.total = p.total
        if isTerminal { meter!.width = terminalColumns(2) }
        if let s = meter!.update(done: p.done, now: now) {
            writeErr(s)
            drawn = isTerminal
        }
    }

    func finished(_ s: TransferSummary) {
        guard var m = meter, phase == .transferring else { clearLine(); return }
        m.record(done: s.bytes, now: clock.now)
        writeErr(m.finish(now: clock.now))
        drawn = false
    }

    /// Leaves the progress line so that an error prints on a line of its own.
    func clearLine() {
        if drawn { writeErr("\r\u{1B}[K") }
        drawn = false
    }
}

/// Columns of the terminal on `fd`, 80 if it does not say.
func terminalColumns(_ fd: Int32) -> Int {
    var size = winsize()
    if ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
    return 80
}

func writeErr(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// Runs a transfer to its end; Ctrl-C (or SIGTERM) cancels it, keeping what arrived.
func runTransfer(_ c: FileContext, reporter: TransferReporter,
                 _ start: (@escaping (Result<TransferSummary, FileClientError>) -> Void) -> FileTransfer)
    throws -> (Result<TransferSummary, FileClientError>, interrupted: Bool) {
    var result: Result<TransferSummary, FileClientError>?
    let transfer = start { result = $0 }
    var interrupted = false
    let stop = { interrupted = true; transfer.cancel() }
    let signals = [try SignalEvent(loop: c.loop, signal: SIGINT, handler: stop),
                   try SignalEvent(loop: c.loop, signal: SIGTERM, handler: stop)]
    defer { withExtendedLifetime(signals) {} }
    // No time limit: a dead connection fails the request by itself (PROTOCOL.md 10.2, liveness).
    c.loop.run(until: .seconds(100 * 365 * 86_400)) { result != nil }
    if interrupted { c.loop.run(until: .milliseconds(200)) { false } }   // lets the reset reach the daemon
    reporter.clearLine()
    return (result ?? .failure(.cancelled), interrupted)
}

func summaryJSON(path: String, remote: String, _ s: TransferSummary) -> String {
    "{\"path\":\(jsonQuoted(path)),\"remote\":\(jsonQuoted(remote)),\"bytes\":\(s.bytes),\"transferred\":\(s.transferred),"
        + "\"resumedFrom\":\(s.resumedFrom),\"seconds\":\(secondsText(s.seconds)),\"sha256\":\"\(s.sha256)\"}"
}

/// Seconds with three decimals, for JSON.
func secondsText(_ seconds: Double) -> String {
    let ms = Int((seconds * 1000).rounded())
    let frac = String(ms % 1000)
    return "\(ms / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
}

struct GetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a file; an interrupted download resumes where it stopped.",
        discussion: """
            Bytes arrive in LOCAL.clawchat-part beside the destination, and only a complete file whose \
            SHA-256 matches the daemon's is renamed onto LOCAL. If the download is interrupted (Ctrl-C, \
            a lost connection), run the same command again: it sends only the rest.

            """ + FileExit.help)
    @Argument(help: "The remote file.") var remote: String
    @Argument(help: "Where to save it (default: its name, in the current directory; a directory: inside it).")
    var local: String?
    @Flag(help: "Replace LOCAL if it exists.") var overwrite = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let r = try remotePath(remote, json: options.json)
        let name = FileClient.lastComponent(r)
        guard !name.isEmpty else { throw FileExit.fail(.localUnusable(path: remote, reason: "is the shared folder itself, not a file"), json: options.json) }
        var dest = local ?? name
        if let k = localKind(dest), k == S_IFDIR { dest = (dest.hasSuffix("/") ? dest : dest + "/") + name }
        let reporter = TransferReporter(name: name)
        let (result, interrupted) = try withFiles(options.identity) { c in
            try runTransfer(c, reporter: reporter) { done in
                c.files.download(remote: r, to: dest, overwrite: overwrite, progress: reporter.progress, done: done)
            }
        }
        switch result {
        case .success(let s):
            reporter.finished(s)
            if options.json { out(summaryJSON(path: dest, remote: r, s) + "\n") }
        case .failure(let e):
            let part = FileClient.partPath(for: dest)
            let kept = localKind(part) != nil
            let note = kept && (interrupted || e.code == "connection") ? "\(part) keeps what arrived: run the same command again to resume" : nil
            throw FileExit.fail(interrupted ? .cancelled : e, json: options.json, note: note)
        }
    }
}

struct PutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put",
        abstract: "Upload a file; an interrupted upload resumes where it stopped.",
        discussion: """
            The file is hashed first (SHA-256); the daemon keeps what arrives beside the target and \
            renames it into place only when the whole file matches. If the upload is interrupted, run \
            the same command again: it sends only the rest.

            """ + FileExit.help)
    @Argument(help: "The local file.") var local: String
    @Argument(help: "Where to put it (default: its name, at the root; a directory, or a path ending in /: inside it).")
    var remote: String?
    @Flag(help: "Replace REMOTE if it exists.") var overwrite = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let name = FileClient.lastComponent(local)
        guard !name.isEmpty else { throw FileExit.fail(.localUnusable(path: local, reason: "names no file"), json: options.json) }
        let reporter = TransferReporter(name: name)
        let json = options.json
        var target = ""
        let (result, interrupted) = try withFiles(options.identity) { c in
            target = try uploadTarget(c, name: name, json: json)
            let t = target
            return try runTransfer(c, reporter: reporter) { done in
                c.files.upload(local: local, remote: t, overwrite: overwrite, progress: reporter.progress, done: done)
            }
        }
        switch result {
        case .success(let s):
            reporter.finished(s)
            if json { out(summaryJSON(path: target, remote: target, s) + "\n") }
        case .failure(let e):
            throw FileExit.fail(interrupted ? .cancelled : e, json: json,
                                note: interrupted || e.code == "connection" ? "the daemon keeps what arrived: run the same command again to resume" : nil)
        }
    }

    /// REMOTE, or the local name at the root; inside REMOTE when it ends in `/` or is a directory.
    private func uploadTarget(_ c: FileContext, name: String, json: Bool) throws -> String {
        guard let typed = remote else { return name }
        let p = try remotePath(typed, json: json)
        if typed.hasSuffix("/") || p.isEmpty { return p.isEmpty ? name : p + "/" + name }
        if case .success(let e)? = c.wait(timeout: .seconds(30), { c.files.stat(p, done: $0) }), e.isDirectory {
            return p + "/" + name
        }
        return p
    }
}

struct RmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove a file, a symlink or an empty directory (-r: a directory and all in it).",
        discussion: FileExit.help)
    @Argument(help: "The remote path.") var path: String
    @Flag(name: [.customShort("r"), .customLong("recursive")], help: "Remove a directory and everything in it.")
    var recursive = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let p = try remotePath(path, json: options.json)
        guard !p.isEmpty else { throw FileExit.fail(.localUnusable(path: "/", reason: "the shared folder itself cannot be removed"), json: options.json) }
        switch try withFiles(options.identity, { c in c.wait { c.files.remove(p, recursive: recursive, done: $0) } }) {
        case .success(let n)?:
            out(options.json ? "{\"ok\":true,\"path\":\(jsonQuoted(p)),\"removed\":\(n)}\n" : "removed /\(safeForTerminal(p)) (\(n) entr\(n == 1 ? "y" : "ies"))\n")
        case .failure(let e)?: throw FileExit.fail(e, json: options.json)
        case nil: throw FileExit.fail(.connection("no answer within 60 s"), json: options.json)
        }
    }
}

struct MvCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mv", abstract: "Rename or move a remote file or directory.", discussion: FileExit.help)
    @Argument(help: "The remote path to move.") var from: String
    @Argument(help: "The new remote path (ending in /: into that directory, keeping the name).") var to: String
    @Flag(help: "Replace TO if it exists.") var overwrite = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let f = try remotePath(from, json: options.json)
        var t = try remotePath(to, json: options.json)
        if to.hasSuffix("/") { t = (t.isEmpty ? "" : t + "/") + FileClient.lastComponent(f) }
        switch try withFiles(options.identity, { c in c.wait { c.files.move(from: f, to: t, overwrite: overwrite, done: $0) } }) {
        case .success?:
            out(options.json ? "{\"ok\":true,\"from\":\(jsonQuoted(f)),\"to\":\(jsonQuoted(t))}\n"
                             : "moved /\(safeForTerminal(f)) to /\(safeForTerminal(t))\n")
        case .failure(let e)?: throw FileExit.fail(e, json: options.json)
        case nil: throw FileExit.fail(.connection("no answer within 60 s"), json: options.json)
        }
    }
}

struct MkdirCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mkdir", abstract: "Create a remote directory (-p: with its parents).", discussion: FileExit.help)
    @Argument(help: "The remote directory.") var path: String
    @Flag(name: [.customShort("p"), .customLong("parents")], help: "Create missing parents; no error if it exists.")
    var parents = false
    @OptionGroup var options: FileOptions

    func run() throws {
        let p = try remotePath(path, json: options.json)
        switch try withFiles(options.identity, { c in c.wait { c.files.makeDirectory(p, parents: parents, done: $0) } }) {
        case .success?:
            out(options.json ? "{\"ok\":true,\"path\":\(jsonQuoted(p))}\n" : "created /\(safeForTerminal(p))\n")
        case .failure(let e)?: throw FileExit.fail(e, json: options.json)
        case nil: throw FileExit.fail(.connection("no answer within 60 s"), json: options.json)
        }
    }
}

/// What is at a local path (`S_IFMT` bits, following symlinks), nil when nothing is.
func localKind(_ path: String) -> mode_t? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return st.st_mode & S_IFMT
}
