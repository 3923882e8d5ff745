import ClawChannel
import ClawClient
import ClawReactor
import ClawTransport
import Glibc

/// The interactive session. On a terminal: a line editor with history (raw mode, so Ctrl-C is a
/// key), replies streamed as they arrive, slash commands. Ctrl-C while a reply streams cancels it
/// (the daemon aborts the LLM request); Ctrl-C at an empty prompt, Ctrl-D or /quit leave. When
/// stdin is not a terminal, lines are read as they come and SIGINT plays Ctrl-C's part.
final class InteractiveChat {
    let loop: EventLoop
    let session: ClientSession
    let identityPath: String
    private var input: IOEvent!
    private let terminal: Terminal?
    private var editor: LineEditor
    private let historyPath: String
    private var pendingBytes: [UInt8] = []
    private var confirmingCompromised = false
    /// The chat reply being streamed, if any; lines typed meanwhile wait in `queued`.
    private var current: OutgoingRequest?
    private var queued: [String] = []
    private var streamedText = ""
    private var done = false
    /// stdin reached its end: leave once the replies asked for have come.
    private var inputEnded = false
    private var signals: [SignalEvent] = []
    /// The file manager's commands (/ls, /get, ...) and its transfers in the background.
    private var files: InteractiveFiles!
    /// The transfers' progress, shown before the prompt while any runs.
    private var progressText = ""
    /// fd 0's flags before we made it non-blocking; the shell gets them back.
    private var stdinFlags: Int32 = 0
    var prompt: String { progressText.isEmpty ? "> " : "[\(progressText)] > " }

    init(identity: ClientIdentity, identityPath: String, loop: EventLoop, timers: ChannelTimers) throws {
        self.loop = loop
        self.identityPath = identityPath
        session = try ClientSession(loop: loop, credentials: identity.credentials, servers: identity.servers, timers: timers,
                                    rotation: identity.rotation)
        session.onRotation = { identity.remember($0) }
        terminal = Terminal(fd: 0, output: 1)
        historyPath = LineHistory.defaultPath()
        editor = LineEditor(history: terminal == nil ? [] : LineHistory.load(path: historyPath))
        session.onEvent = { [unowned self] e in self.event(e) }
        session.onPush = { [unowned self] m in self.pushed(m) }
        files = InteractiveFiles(session: session, notice: { [unowned self] in self.notice($0) },
                                 progressLine: { [unowned self] in self.drawProgress($0) })
        stdinFlags = fcntl(0, F_GETFL)
        _ = fcntl(0, F_SETFL, stdinFlags | O_NONBLOCK)
        input = IOEvent(loop: loop, fd: 0) { [unowned self] _ in self.readInput() }
        signals = [
            try SignalEvent(loop: loop, signal: SIGINT) { [unowned self] in self.interrupt() },
            try SignalEvent(loop: loop, signal: SIGTERM) { [unowned self] in self.quit() },
            try SignalEvent(loop: loop, signal: SIGHUP) { [unowned self] in self.quit() },
            try SignalEvent(loop: loop, signal: SIGWINCH) { [unowned self] in self.showPrompt() },
        ]
    }

    func run() {
        if let terminal { _ = terminal.enterRawMode() }
        write("connecting to \(session.server)... (/help for commands)\n")
        session.start()
        input.watch(.readable)
        loop.runUntilStopped()
        terminal?.restore()
    }

    // MARK: Output

    private func write(_ s: String) {
        if let terminal { terminal.write(Array(s.utf8)) } else { out(s) }
    }

    /// A line of status (connection, push, command output) above what the user is typing.
    private func notice(_ text: String) {
        let text = terminal == nil ? text : safeForTerminal(text)
        if current != nil {
            write((streamedText.isEmpty || streamedText.hasSuffix("\n") ? "" : "\n") + text + "\n")
            streamedText = ""
            return
        }
        if let terminal { terminal.printAbove(text, prompt: prompt, editor: editor) } else { out(text + "\n") }
    }

    private func showPrompt() {
        guard current == nil, !done else { return }
        if let terminal { terminal.show(prompt: prompt, editor: editor) }
    }

    // MARK: Input

    private func readInput() {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
        if n == 0 {
            // End of input (a pipe or a file): answer what was asked, then leave.
            input.watch([])
            inputEnded = true
            if current == nil && queued.isEmpty { quit() }
            return
        }
        if n < 0 { return }
        if terminal != nil {
            for action in editor.feed(buf[0..<n]) { perform(action) }
            return
        }
        pendingBytes += buf[0..<n]
        while let nl = pendingBytes.firstIndex(of: 10) {
            let line = String(decoding: pendingBytes[..<nl], as: UTF8.self)
            pendingBytes.removeSubrange(...nl)
            submit(line)
        }
    }

    private func perform(_ action: LineEditor.Action) {
        guard let terminal else { return }
        switch action {
        case .redraw:
            if current == nil { terminal.show(prompt: prompt, editor: editor) }
        case .submit(let line):
            if current == nil { terminal.write(LineEditor.renderSubmitted(prompt: prompt, line: line)) }
            if !line.isEmpty { _ = LineHistory.append(line, path: historyPath) }
            submit(line)
        case .interrupt:
            interrupt()
        case .endOfInput:
            quit()
        case .complete(let line, let cursor):
            files.complete(line: line, cursor: cursor) { [unowned self] new in
                guard let new, self.editor.line == line else { terminal.write([0x07]); return }
                self.editor.replaceLine(new)
                self.showPrompt()
            }
        case .clearScreen:
            terminal.clearScreen()
            showPrompt()
        case .bell:
            terminal.write([0x07])
        }
    }

    /// Ctrl-C: cancels the streaming reply; abandons a half-typed line; at an empty prompt,
    /// leaves.
    private func interrupt() {
        if let r = current {
            r.cancel()   // completes the request with "cancelled", which prints the marker
            return
        }
        if confirmingCompromised {
            confirmingCompromised = false
            notice("not confirmed; nothing changed")
            return
        }
        if let terminal, !editor.interruptedLine.isEmpty {
            terminal.write(Array("^C\n".utf8))
            showPrompt()
            return
        }
        quit()
    }

    private func submit(_ line: String) {
        if confirmingCompromised {
            confirmingCompromised = false
            if line == "COMPROMISED" { session.sendCompromised() } else { notice("not confirmed; nothing changed") }
            return
        }
        let trimmed = line.trimmingCharacters(in: " \t\r")
        if trimmed.isEmpty { showPrompt(); return }
        if trimmed.hasPrefix("/") { command(trimmed); return }
        if current != nil {
            queued.append(line)
            notice("[queued: a reply is still streaming; Ctrl-C cancels it]")
            return
        }
        chat(line)
    }

    // MARK: Chat

    private func chat(_ line: String) {
        guard line.utf8.count <= Message.maxBody else {
            notice("[the message is \(line.utf8.count) bytes; the limit is \(Message.maxBody)]")
            return
        }
        streamedText = ""
        let r = session.request("chat", body: Array(line.utf8))
        current = r
        r.onPartial = { [unowned self] piece in
            let text = self.terminal == nil ? piece.text : safeForTerminal(piece.text)
            self.streamedText += text
            self.write(text)
        }
        r.onDone = { [unowned self] outcome in
            self.current = nil
            let ended = self.streamedText.isEmpty || self.streamedText.hasSuffix("\n") ? "" : "\n"
            switch outcome {
            case .success(let m):
                let text = self.terminal == nil ? m.text : safeForTerminal(m.text)
                if self.streamedText.isEmpty { self.write(text + (text.hasSuffix("\n") ? "" : "\n")) } else { self.write(ended) }
                if m.params["truncated"] == "true" { self.write("[the answer was cut at the token limit]\n") }
                if m.params["stored"] == "false" { self.write("[the daemon could not store this exchange; see its log]\n") }
            case .failure(.reset(let why)) where why == "cancelled":
                self.write(ended + "[cancelled]\n")
            case .failure(let failure):
                self.write(ended + "[error: \(failure)]\n")
            }
            self.streamedText = ""
            guard !self.done else { return }
            if !self.queued.isEmpty { self.chat(self.queued.removeFirst()) } else if self.inputEnded { self.quit() } else { self.showPrompt() }
        }
    }

    // MARK: Commands

    static let help = """
        /status           connection, round-trip time, provider and history size
        /history [N]      the last N exchanges (default 10)
        /clear            forget the conversation history (daily logs stay)
        /reload           make the daemon re-read SOUL.md, AGENTS.md, USER.md, MEMORY.md
        /cron [list]      scheduled jobs: schedule, next run, last result
        /cron run NAME    run a job now; /cron reload re-reads CRON.md; /cron results shows missed results
        /cron add "NAME" "SCHEDULE" "COMMAND" ["CONTEXT"]   add a job to CRON.md
        /cron remove|enable|disable NAME
        /compromised      destroy every key on both sides (asks for confirmation)
        /help             this list
        /quit             leave (also Ctrl-D, or Ctrl-C at an empty prompt)
        Anything else is sent to the assistant. Ctrl-C while a reply streams cancels it.
        """

    private func command(_ line: String) {
        let parts = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        switch parts[0] {
        case "/quit", "/exit":
            quit()
        case "/help":
            notice(Self.help + "\n" + files.help)
        case "/status":
            status()
        case "/history":
            let n = parts.count > 1 ? Int(parts[1]) : 10
            guard let n, n > 0 else { notice("usage: /history [N]"); return }
            simple("history", params: ["limit": String(n)]) { HistoryText.render($0.body).trimmingCharacters(in: "\n") }
        case "/clear":
            simple("clear") { $0.text }
        case "/reload":
            simple("reload") { $0.text }
        case "/cron":
            cron(Array(parts.dropFirst()), line: line)
        case "/compromised":
            notice("This destroys every key, revokes EVERY paired device and deletes this identity.\nType COMPROMISED and Enter to confirm (anything else cancels):")
            confirmingCompromised = true
        default:
            if files.handle(parts[0], Array(shellWords(line).dropFirst())) { return }
            notice("unknown command \(parts[0]); /help lists them")
        }
    }

    /// A request whose reply is shown as one notice.
    private func simple(_ method: String, params: [String: String] = [:], render: @escaping (Message) -> String) {
        session.request(method, params: params).onDone = { [unowned self] outcome in
            switch outcome {
            case .success(let m): self.notice(render(m))
            case .failure(let f): self.notice("[error: \(f)]")
            }
        }
    }

    private func status() {
        var rtt = session.channel.rtt.map { format3($0.seconds * 1000) + " ms" } ?? "unknown"
        if let t = session.requests.connection?.transport, t.rtt.hasSample {
            rtt = "\(format3(t.rtt.smoothed.seconds * 1000)) ms (min \(format3(t.rtt.minimum.seconds * 1000)) ms)"
        }
        let line = "\(session.channel.state) to \(session.server), rtt \(rtt), \(session.channel.handshakesCompleted) handshake(s)"
        simple("assistant-status") { m in
            let p = m.params
            let model = (p["model"] ?? "").isEmpty ? "" : " \(p["model"]!)"
            return line + "\nassistant: \(p["provider"] ?? "?")\(model), \(p["exchanges"] ?? "?") exchange(s) in history, "
                + "context \(p["context-bytes"] ?? "?") bytes, \(p["llm-requests"] ?? "?") LLM request(s) (\(p["llm-failed"] ?? "0") failed)"
        }
    }

    /// Transfers report progress here; on a terminal it shows in the prompt, redrawn in place.
    private func drawProgress(_ text: String) {
        guard terminal != nil else { return }
        progressText = text
        showPrompt()
    }

    // MARK: Cron

    private var cronCursor = CronCursor()

    private func pushed(_ m: Message) {
        guard m.method == "cron-result" else { notice("[\(m.method)] \(safeForTerminal(m.text))"); return }
        notice(safeForTerminal(CronText.result(job: m.params["job"] ?? "?", ok: m.params["ok"] == "true",
                                               reason: m.params["reason"] ?? "", text: m.text)))
        if let seq = Int(m.params["seq"] ?? ""), seq > cronCursor.seen {
            cronCursor.save(seq)
            cronCursor = CronCursor()
        }
    }

    /// After each (re)connection: the results of runs that finished while this device was away.
    private func fetchMissedCronResults() {
        session.request("cron-results", params: ["after": String(cronCursor.seen)]).onDone = { [unowned self] outcome in
            guard case .success(let m) = outcome else { return }
            let (texts, last) = CronText.results(m.body)
            if !texts.isEmpty {
                self.notice("[\(texts.count) cron result(s) while you were away]")
                for t in texts { self.notice(safeForTerminal(t)) }
            }
            if last > self.cronCursor.seen {
                self.cronCursor.save(last)
                self.cronCursor = CronCursor()
            }
        }
    }

    private func cron(_ words: [String], line: String) {
        let args = shellWords(line).dropFirst(2).map { $0 }
        let sub = words.first ?? "list"
        let name = args.joined(separator: " ")
        switch sub {
        case "list": simple("cron-list") { CronText.list($0.body).trimmingCharacters(in: "\n") }
        case "reload": simple("cron-reload") { $0.text }
        case "results":
            session.request("cron-results", params: ["after": "0", "limit": "10"]).onDone = { [unowned self] outcome in
                guard case .success(let m) = outcome else { self.notice("[error: cannot fetch the results]"); return }
                let texts = CronText.results(m.body).text
                self.notice(texts.isEmpty ? "no cron results yet" : safeForTerminal(texts.joined(separator: "\n\n")))
            }
        case "run", "remove", "enable", "disable":
            guard !name.isEmpty else { notice("usage: /cron \(sub) NAME"); return }
            simple("cron-\(sub)", params: ["name": name]) { $0.text }
        case "add":
            guard args.count >= 3 else {
                notice("usage: /cron add \"NAME\" \"SCHEDULE\" \"COMMAND\" [\"CONTEXT\"]   e.g. /cron add \"Standup\" \"0 9 * * 1-5\" \"Summarise my day\"")
                return
            }
            let body = Array((args.count > 3 ? args[3...].joined(separator: " ") : "").utf8)
            guard body.count <= 64 << 10, args[0].utf8.count + args[1].utf8.count + args[2].utf8.count <= 2048 else {
                notice("[a job's context is limited to 64 KB and its name, schedule and command to 2 KB]")
                return
            }
            session.request("cron-add", params: ["name": args[0], "schedule": args[1], "command": args[2]], body: body).onDone = {
                [unowned self] outcome in
                switch outcome {
                case .success(let m): self.notice(m.text)
                case .failure(let f): self.notice("[error: \(f)]")
                }
            }
        default:
            notice("unknown /cron command \(sub); /help lists them")
        }
    }

    // MARK: Channel events

    private func event(_ e: ClientChannel.Action) {
        switch e {
        case .established:
            notice("[connected to \(session.server)]")
            fetchMissedCronResults()
        case .connectionLost(let why):
            notice("[reconnecting: \(why)]")
        case .compromisedConfirmed:
            AtomicFile.remove(identityPath)
            notice("[server confirmed: all keys destroyed, all devices revoked; identity deleted]")
            quit()
        case .compromisedUnconfirmed:
            AtomicFile.remove(identityPath)
            notice("[no confirmation from the server; local keys and identity destroyed anyway]")
            quit()
        default:
            break
        }
    }

    func quit() {
        guard !done else { return }
        done = true
        current?.cancel()
        files.cancelAll()
        if let terminal { terminal.write(Array("\r\n".utf8)); terminal.restore() }
        _ = fcntl(0, F_SETFL, stdinFlags)
        input.watch([])
        signals = []
        loop.stop()
    }
}

/// Splits a command line into words: spaces separate, double or single quotes group, a backslash
/// escapes the next character.
func shellWords(_ line: String) -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quote: Character?
    var escaped = false
    for ch in line {
        if escaped { current.append(ch); escaped = false; inWord = true; continue }
        if ch == "\\" && quote != "'" { escaped = true; continue }
        if let q = quote {
            if ch == q { quote = nil } else { current.append(ch) }
            continue
        }
        if ch == "\"" || ch == "'" { quote = ch; inWord = true; continue }
        if ch == " " || ch == "\t" {
            if inWord { words.append(current); current = ""; inWord = false }
            continue
        }
        current.append(ch)
        inWord = true
    }
    if inWord { words.append(current) }
    return words
}

/// A model's text with terminal control sequences made harmless: ESC and the other C0/C1
/// controls (but newline and tab) become U+FFFD, so an answer cannot move the cursor, retitle
/// the window or rewrite the screen.
func safeForTerminal(_ text: String) -> String {
    var out = String.UnicodeScalarView()
    for u in text.unicodeScalars {
        let v = u.value
        if v == 0x0A || v == 0x09 || (v >= 0x20 && v != 0x7F && !(0x80...0x9F).contains(v)) {
            out.append(u)
        } else {
            out.append("\u{FFFD}")
        }
    }
    return String(out)
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
