import ClawClient
import ClawReactor
import Glibc

/// The file manager inside the interactive chat: `/ls`, `/cd`, `/get`, `/put`, ... Each command
/// is one entry of `commands`. The current remote directory lives here; what the user types is
/// resolved against it (a leading `/` starts from the shared folder's root). Transfers run in
/// the background while the chat goes on, several at once if asked; their progress is drawn
/// through `progressLine`, and their outcome is a notice.
final class InteractiveFiles {
    let files: FileClient
    private unowned let loop: EventLoop
    private let notice: (String) -> Void
    private let progressLine: (String) -> Void
    /// The current remote directory, relative to the shared folder ("" is its root).
    private(set) var cwd = ""
    private var running: [Running] = []
    private var nextNumber = 1
    private var lastDraw: Instant?
    private var listingCache: (dir: String, at: Instant, entries: [RemoteEntry])?

    /// A transfer in the background, with its own meter.
    private final class Running {
        let number: Int
        let verb: String
        let name: String
        var transfer: FileTransfer?
        var meter: ProgressMeter?
        var phase: FileTransfer.Progress.Phase?
        init(number: Int, verb: String, name: String) {
            self.number = number
            self.verb = verb
            self.name = name
        }
        var label: String { "\(verb) #\(number)" }
    }

    /// `notice` prints a line above the prompt; `progressLine` draws one line of progress in
    /// place (plain text, no control characters, at most ten times a second), and gets "" when
    /// no transfer is left, to clear it.
    init(session: ClientSession, notice: @escaping (String) -> Void, progressLine: @escaping (String) -> Void) {
        files = FileClient(session: session)
        loop = session.loop
        self.notice = notice
        self.progressLine = progressLine
    }

    // MARK: The command table

    private struct Command: Sendable {
        let name: String
        let usage: String
        let summary: String
        /// Flags it takes (single letters; `f` is also `--overwrite`).
        let flags: Set<Character>
        let operands: ClosedRange<Int>
        let run: @Sendable (InteractiveFiles, Set<Character>, [String]) -> Void
    }

    private static let commands: [Command] = [
        Command(name: "ls", usage: "/ls [PATH]", summary: "list a remote directory (type, size, modified, name)",
                flags: [], operands: 0...1) { f, _, a in f.list(a.first ?? "") },
        Command(name: "cd", usage: "/cd [PATH]", summary: "change the remote directory (no PATH: the shared folder's root)",
                flags: [], operands: 0...1) { f, _, a in f.changeDirectory(a.first ?? "/") },
        Command(name: "pwd", usage: "/pwd", summary: "show the remote directory",
                flags: [], operands: 0...0) { f, _, _ in f.notice("/" + safeForTerminal(f.cwd)) },
        Command(name: "stat", usage: "/stat PATH", summary: "type, size, permissions, modification time",
                flags: [], operands: 1...1) { f, _, a in f.stat(a[0]) },
        Command(name: "get", usage: "/get [-f] REMOTE [LOCAL]", summary: "download in the background (-f replaces LOCAL; resumes)",
                flags: ["f"], operands: 1...2) { f, fl, a in f.get(a[0], a.count > 1 ? a[1] : nil, overwrite: fl.contains("f")) },
        Command(name: "put", usage: "/put [-f] LOCAL [REMOTE]", summary: "upload in the background (-f replaces REMOTE; resumes)",
                flags: ["f"], operands: 1...2) { f, fl, a in f.put(a[0], a.count > 1 ? a[1] : nil, overwrite: fl.contains("f")) },
        Command(name: "rm", usage: "/rm [-r] PATH", summary: "remove a file or an empty directory (-r: and all in it)",
                flags: ["r"], operands: 1...1) { f, fl, a in f.remove(a[0], recursive: fl.contains("r")) },
        Command(name: "mv", usage: "/mv [-f] FROM TO", summary: "rename or move (TO ending in /: into that directory)",
                flags: ["f"], operands: 2...2) { f, fl, a in f.move(a[0], a[1], overwrite: fl.contains("f")) },
        Command(name: "mkdir", usage: "/mkdir [-p] PATH", summary: "create a directory (-p: with its parents)",
                flags: ["p"], operands: 1...1) { f, fl, a in f.makeDirectory(a[0], parents: fl.contains("p")) },
        Command(name: "transfers", usage: "/transfers", summary: "the downloads and uploads running now",
                flags: [], operands: 0...0) { f, _, _ in f.showTransfers() },
        Command(name: "cancel", usage: "/cancel N|all", summary: "stop a transfer (what arrived is kept for a resume)",
                flags: [], operands: 1...1) { f, _, a in f.cancel(a[0]) },
    ]

    /// Lines for /help, one per command.
    var help: String {
        let width = Self.commands.map(\.usage.count).max() ?? 0
        return Self.commands.map { $0.usage + String(repeating: " ", count: width + 2 - $0.usage.count) + $0.summary }
            .joined(separator: "\n")
            + "\nRemote paths are relative to /cd's directory; a leading / starts from the shared folder."
    }

    /// Runs a file command (`"/ls"` or `"ls"`, with its words after the command); false when the
    /// command is not one of these.
    func handle(_ command: String, _ args: [String]) -> Bool {
        let name = command.hasPrefix("/") ? String(command.dropFirst()) : command
        guard let c = Self.commands.first(where: { $0.name == name }) else { return false }
        var flags: Set<Character> = []
        var operands: [String] = []
        var onlyOperands = false
        for a in args {
            if onlyOperands || !a.hasPrefix("-") || a == "-" { operands.append(a); continue }
            if a == "--" { onlyOperands = true; continue }
            if a == "--overwrite", c.flags.contains("f") { flags.insert("f"); continue }
            let letters = Set(a.dropFirst())
            guard !a.hasPrefix("--"), letters.isSubset(of: c.flags) else {
                notice("unknown option \(safeForTerminal(a)); usage: \(c.usage)")
                return true
            }
            flags.formUnion(letters)
        }
        guard c.operands.contains(operands.count) else { notice("usage: \(c.usage)"); return true }
        c.run(self, flags, operands)
        return true
    }

    // MARK: Operations

    /// A typed remote path resolved against the current directory; nil (and a notice) when it
    /// climbs above the root.
    private func resolve(_ typed: String) -> String? {
        guard let p = FileClient.join(cwd: cwd, typed) else {
            notice("[\(safeForTerminal(typed)): above the shared folder]")
            return nil
        }
        return p
    }

    private func failed(_ what: String, _ e: FileClientError) {
        notice("[\(what): \(safeForTerminal(e.description))]")
    }

    private func list(_ typed: String) {
        guard let p = resolve(typed) else { return }
        files.list(p) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let entries):
                if self.listingCache?.dir == p { self.listingCache = nil }
                let head = "/\(safeForTerminal(p)): " + (entries.isEmpty ? "empty" : "\(entries.count) entr\(entries.count == 1 ? "y" : "ies")")
                self.notice(([head] + ListingText.lines(entries, long: true)).joined(separator: "\n"))
            case .failure(let e):
                self.failed("ls", e)
            }
        }
    }

    private func changeDirectory(_ typed: String) {
        guard let p = resolve(typed) else { return }
        guard !p.isEmpty else { cwd = ""; notice("/"); return }
        files.stat(p) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let e) where e.isDirectory:
                self.cwd = p
                self.notice("/" + safeForTerminal(p))
            case .success:
                self.notice("[cd: /\(safeForTerminal(p)) is not a directory]")
            case .failure(let e):
                self.failed("cd", e)
            }
        }
    }

    private func stat(_ typed: String) {
        guard let p = resolve(typed) else { return }
        files.stat(p) { [weak self] result in
            switch result {
            case .success(let e): self?.notice(StatText.render(e, path: p))
            case .failure(let e): self?.failed("stat", e)
            }
        }
    }

    private func remove(_ typed: String, recursive: Bool) {
        guard let p = resolve(typed) else { return }
        guard !p.isEmpty else { notice("[rm: the shared folder itself cannot be removed]"); return }
        files.remove(p, recursive: recursive) { [weak self] result in
            switch result {
            case .success(let n): self?.notice("removed /\(safeForTerminal(p)) (\(n) entr\(n == 1 ? "y" : "ies"))")
            case .failure(let e): self?.failed("rm", e)
            }
        }
        listingCache = nil
    }

    private func move(_ from: String, _ to: String, overwrite: Bool) {
        guard let f = resolve(from), var t = resolve(to) else { return }
        if to.hasSuffix("/") { t = (t.isEmpty ? "" : t + "/") + FileClient.lastComponent(f) }
        files.move(from: f, to: t, overwrite: overwrite) { [weak self] result in
            switch result {
            case .success: self?.notice("moved /\(safeForTerminal(f)) to /\(safeForTerminal(t))")
            case .failure(let e): self?.failed("mv", e)
            }
        }
        listingCache = nil
    }

    private func makeDirectory(_ typed: String, parents: Bool) {
        guard let p = resolve(typed) else { return }
        files.makeDirectory(p, parents: parents) { [weak self] result in
            switch result {
            case .success: self?.notice("created /\(safeForTerminal(p))")
            case .failure(let e): self?.failed("mkdir", e)
            }
        }
        listingCache = nil
    }

    // MARK: Transfers

    private func get(_ typed: String, _ localTyped: String?, overwrite: Bool) {
        guard let remote = resolve(typed) else { return }
        let name = FileClient.lastComponent(remote)
        guard !name.isEmpty else { notice("[get: name a file, not the shared folder]"); return }
        var local = expandHome(localTyped ?? name)
        if localKind(local) == S_IFDIR { local = (local.hasSuffix("/") ? local : local + "/") + name }
        let job = Running(number: nextNumber, verb: "get", name: name)
        nextNumber += 1
        running.append(job)
        notice("[\(job.label): /\(safeForTerminal(remote)) to \(safeForTerminal(local))]")
        job.transfer = files.download(remote: remote, to: local, overwrite: overwrite, progress: { [weak self] p in
            self?.progress(job, p)
        }, done: { [weak self] result in
            let part = FileClient.partPath(for: local)
            self?.ended(job, result, keptNote: localKind(part) != nil ? "\(part) keeps what arrived: /get it again to resume" : nil,
                        existsHint: "/get -f to replace it")
        })
    }

    private func put(_ localTyped: String, _ typed: String?, overwrite: Bool) {
        let local = expandHome(localTyped)
        let name = FileClient.lastComponent(local)
        guard !name.isEmpty else { notice("[put: name a file]"); return }
        guard let given = resolve(typed ?? name) else { return }
        // A remote directory (by a trailing "/" or by what it is) receives the file inside it.
        if typed == nil || given.isEmpty || typed!.hasSuffix("/") {
            startUpload(local, to: typed == nil ? given : (given.isEmpty ? name : given + "/" + name), name: name, overwrite: overwrite)
            return
        }
        files.stat(given) { [weak self] result in
            var target = given
            if case .success(let e) = result, e.isDirectory { target = given + "/" + name }
            self?.startUpload(local, to: target, name: name, overwrite: overwrite)
        }
    }

    private func startUpload(_ local: String, to remote: String, name: String, overwrite: Bool) {
        let job = Running(number: nextNumber, verb: "put", name: name)
        nextNumber += 1
        running.append(job)
        notice("[\(job.label): \(safeForTerminal(local)) to /\(safeForTerminal(remote))]")
        job.transfer = files.upload(local: local, remote: remote, overwrite: overwrite, progress: { [weak self] p in
            self?.progress(job, p)
        }, done: { [weak self] result in
            self?.ended(job, result, keptNote: "the daemon keeps what arrived: /put it again to resume", existsHint: "/put -f to replace it")
        })
        listingCache = nil
    }

    private func progress(_ job: Running, _ p: FileTransfer.Progress) {
        let now = loop.clock.now
        if case .restarting(let why) = p.phase {
            notice("[\(job.label) \(safeForTerminal(job.name)): \(safeForTerminal(why)); starting again from byte 0]")
            job.meter = nil
            job.phase = nil
            return
        }
        if job.meter == nil || job.phase != p.phase {
            job.meter = ProgressMeter(total: p.total, start: now, isTerminal: true, width: terminalColumns(1),
                                      name: (p.phase == .hashing ? "hashing " : job.verb + " ") + job.name, resumedFrom: p.resumedFrom)
            job.phase = p.phase
        }
        job.meter!.total = p.total
        job.meter!.record(done: p.done, now: now)
        if let last = lastDraw, now - last < ProgressMeter.terminalInterval { return }
        draw(now: now)
    }

    /// One line for every running transfer: the full meter for one, short forms side by side
    /// for several.
    private func draw(now: Instant) {
        lastDraw = now
        let width = terminalColumns(1)
        let shown = running.compactMap { job -> (Running, ProgressMeter)? in job.meter.map { (job, $0) } }
        if shown.isEmpty { progressLine(""); return }
        if shown.count == 1 {
            var m = shown[0].1
            m.width = width
            progressLine(m.statusLine(now: now))
            return
        }
        let line = shown.map { "#\($0.0.number) " + $0.1.compactStatus(now: now, nameWidth: 16) }.joined(separator: "  |  ")
        progressLine(String(line.prefix(max(width - 1, 0))))
    }

    private func ended(_ job: Running, _ result: Result<TransferSummary, FileClientError>, keptNote: String?, existsHint: String) {
        running.removeAll { $0 === job }
        let now = loop.clock.now
        switch result {
        case .success(let s):
            var m = ProgressMeter(total: s.bytes, start: now - .nanoseconds(Int64(s.seconds * 1e9)), isTerminal: false,
                                  width: 200, name: job.name, resumedFrom: s.resumedFrom)
            m.record(done: s.bytes, now: now)
            notice("[\(job.label) done: \(m.summary(now: now))]")
        case .failure(let e):
            var why = e == .cancelled ? "cancelled" : "failed: " + safeForTerminal(e.description)
            if e.code == "exists" { why += "; \(existsHint)" }
            if let keptNote, e == .cancelled || e.code == "connection" { why += "; \(keptNote)" }
            notice("[\(job.label) \(safeForTerminal(job.name)) \(why)]")
        }
        draw(now: now)
    }

    private func showTransfers() {
        let now = loop.clock.now
        guard !running.isEmpty else { notice("no transfers running"); return }
        notice(running.map { job in
            "#\(job.number) " + (job.meter.map { $0.compactStatus(now: now, nameWidth: 48) } ?? "\(job.verb) \(safeForTerminal(job.name)) starting")
        }.joined(separator: "\n"))
    }

    private func cancel(_ which: String) {
        if which == "all" {
            if cancelAll() == 0 { notice("no transfers running") }
            return
        }
        guard let n = Int(which.hasPrefix("#") ? String(which.dropFirst()) : which),
              let job = running.first(where: { $0.number == n }) else {
            notice("no transfer #\(safeForTerminal(which)); /transfers lists them")
            return
        }
        job.transfer?.cancel()
    }

    /// Cancels every transfer (on quit); what arrived is kept, so each resumes when asked
    /// again. Returns how many there were.
    @discardableResult
    func cancelAll() -> Int {
        let jobs = running
        for job in jobs { job.transfer?.cancel() }
        return jobs.count
    }

    var activeTransfers: Int { running.count }

    // MARK: Completion

    /// Tab completion of the path under the cursor, for the file commands: remote paths from a
    /// listing of their directory, local ones (`/put`'s LOCAL, `/get`'s LOCAL) from the local
    /// directory. `done` gets the completed line (the cursor goes to its end), or nil when there
    /// is nothing to add; several candidates are shown as a notice. Asynchronous: when `done`
    /// runs, the caller should use it only if the line is still `line`.
    func complete(line: String, cursor: Int, done: @escaping (String?) -> Void) {
        guard cursor == line.count, let (command, index, start, word) = Self.wordUnderCursor(line),
              let c = Self.commands.first(where: { "/" + $0.name == command }), index >= 1 else { done(nil); return }
        let localOperand = (c.name == "put" && index == 1) || (c.name == "get" && index == 2)
        let remoteOperand = !localOperand && ["ls", "cd", "stat", "get", "put", "rm", "mv", "mkdir"].contains(c.name)
        guard localOperand || remoteOperand else { done(nil); return }
        let slash = word.lastIndex(of: "/")
        let dirPart = slash.map { String(word[...$0]) } ?? ""
        let prefix = slash.map { String(word[word.index(after: $0)...]) } ?? word
        let finish: ([(name: String, isDirectory: Bool)]) -> Void = { [weak self] names in
            let matches = names.filter { $0.name.hasPrefix(prefix) && (prefix.hasPrefix(".") || !$0.name.hasPrefix(".")) }
                .sorted { $0.name < $1.name }
            guard let completion = Self.extend(prefix, with: matches) else {
                if matches.count > 1 {
                    self?.notice(matches.map { safeForTerminal($0.name) + ($0.isDirectory ? "/" : "") }.joined(separator: "  "))
                }
                done(nil)
                return
            }
            done(String(line.prefix(start)) + Self.escaped(dirPart + completion))
        }
        if localOperand {
            finish(Self.localNames(in: dirPart.isEmpty ? "." : expandHome(dirPart)))
            return
        }
        guard let dir = FileClient.join(cwd: cwd, dirPart.isEmpty ? "." : dirPart) else { done(nil); return }
        let now = loop.clock.now
        if let cached = listingCache, cached.dir == dir, now - cached.at < .seconds(10) {
            finish(cached.entries.map { ($0.name, $0.isDirectory) })
            return
        }
        files.list(dir) { [weak self] result in
            guard let self, case .success(let entries) = result else { done(nil); return }
            self.listingCache = (dir, self.loop.clock.now, entries)
            finish(entries.map { ($0.name, $0.isDirectory) })
        }
    }

    /// What to put in place of `prefix`: the only match (with "/" or " " after it), or the
    /// longest prefix the matches share when it is longer than what was typed.
    static func extend(_ prefix: String, with matches: [(name: String, isDirectory: Bool)]) -> String? {
        guard let first = matches.first else { return nil }
        if matches.count == 1 { return first.name + (first.isDirectory ? "/" : " ") }
        var common = Array(first.name)
        for m in matches.dropFirst() {
            let other = Array(m.name)
            var n = 0
            while n < common.count, n < other.count, common[n] == other[n] { n += 1 }
            common = Array(common[..<n])
        }
        return common.count > prefix.count ? String(common) : nil
    }

    /// The command, the index of the word under the cursor (0 is the command; flags do not
    /// count), where that word starts (in characters) and its text so far, quotes and escapes
    /// undone. The line is split as `shellWords` does.
    static func wordUnderCursor(_ line: String) -> (command: String, index: Int, start: Int, word: String)? {
        var words: [String] = []
        var current = ""
        var inWord = false
        var start = 0
        var quote: Character?
        var escapedNext = false
        for (i, ch) in line.enumerated() {
            if escapedNext { current.append(ch); escapedNext = false; continue }
            if ch == "\\" && quote != "'" {
                if !inWord { inWord = true; start = i }
                escapedNext = true
                continue
            }
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
                continue
            }
            if ch == " " || ch == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
                continue
            }
            if !inWord { inWord = true; start = i }
            if ch == "\"" || ch == "'" { quote = ch; continue }
            current.append(ch)
        }
        if !inWord { start = line.count }
        guard let command = words.first else { return nil }
        let index = words.dropFirst().filter { !$0.hasPrefix("-") }.count + 1
        return (command, index, start, current)
    }

    /// A word as typed on the command line: spaces, quotes and backslashes escaped.
    static func escaped(_ s: String) -> String {
        var out = ""
        for (i, ch) in s.enumerated() {
            // The trailing space after a unique completion separates words: it stays bare.
            if ch == " ", i == s.count - 1 { out.append(ch); continue }
            if ch == " " || ch == "\"" || ch == "'" || ch == "\\" { out.append("\\") }
            out.append(ch)
        }
        return out
    }

    private static func localNames(in dir: String) -> [(name: String, isDirectory: Bool)] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [(name: String, isDirectory: Bool)] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            out.append((name, localKind(dir + "/" + name) == S_IFDIR))
            if out.count >= 10_000 { break }
        }
        return out
    }
}

/// `~` and `~/...` as the shell would expand them.
func expandHome(_ path: String) -> String {
    guard path == "~" || path.hasPrefix("~/"), let home = getenv("HOME").map({ String(cString: $0) }), !home.isEmpty else {
        return path
    }
    return home + path.dropFirst()
}
