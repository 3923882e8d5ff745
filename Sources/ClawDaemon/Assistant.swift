import ClawAssistant
import ClawReactor
import ClawTransport
import Glibc

/// How the daemon's assistant is set up (flags today; the config file later).
public struct AssistantConfig {
    public var provider: ProviderConfig
    /// SOUL.md, AGENTS.md, USER.md, MEMORY.md and memory/ (created with defaults when missing).
    public var contextDirectory: String
    /// The conversation journal (JSON Lines, append-only).
    public var journalPath: String
    /// Tokens of history (and the new message) sent with each request, system prompt included.
    public var historyBudgetTokens = 8_000
    /// Bytes of context files in the system prompt.
    public var contextBudgetBytes = ContextAssembler.defaultBudgetBytes
    public var timeouts = LLMTimeouts()
    public var maxRetries = 2

    public init(provider: ProviderConfig, contextDirectory: String, journalPath: String) {
        self.provider = provider
        self.contextDirectory = contextDirectory
        self.journalPath = journalPath
    }
}

/// The assistant on the daemon's loop: the request handlers `chat`, `history`, `clear`, `reload`
/// and `assistant-status` (PROTOCOL.md 10.4). A chat request streams the answer back as
/// `partial` messages while the provider produces it; only a complete answer is stored, as one
/// exchange in the journal and one entry in today's daily log. Each request has its own
/// ``LLMCall``, so concurrent chats (and later cron jobs) never share an answer.
public final class Assistant {
    public private(set) var config: AssistantConfig
    public let bridge: LLMBridge
    public let journal: ConversationJournal
    public let context: ContextDirectory
    public private(set) var assembled: AssembledContext
    private let loop: EventLoop
    private let multi: CurlMulti
    private let log: Logger
    /// Chats in progress by device and stream, for cancel and shutdown.
    private var calls: [ObjectIdentifier: LLMCall] = [:]
    private var devices: [ObjectIdentifier: UInt64] = [:]
    private var chatsByDevice: [UInt64: Int] = [:]

    public init(loop: EventLoop, config: AssistantConfig, environment: (String) -> String? = Assistant.processEnvironment,
                log: Logger = Logger("assistant")) throws(DaemonError) {
        self.loop = loop
        self.config = config
        self.log = log
        let problems = config.provider.problems()
        guard problems.isEmpty else { throw .configuration(problems.joined(separator: "; ")) }
        let key: APIKey?
        do { key = try LLMBridge.key(for: config.provider, environment: environment) } catch {
            throw .configuration(error.description)
        }
        do { multi = try CurlMulti(loop: loop) } catch { throw .configuration("cannot start curl: \(error)") }
        bridge = LLMBridge(loop: loop, multi: multi, config: config.provider, key: key)
        bridge.timeouts = config.timeouts
        bridge.retry.maxRetries = config.maxRetries
        do { journal = try ConversationJournal(path: config.journalPath) } catch { throw .storage(error.description) }
        if journal.skippedLines > 0 {
            log.warning("\(config.journalPath): skipped \(journal.skippedLines) damaged line(s): \(journal.firstSkipReason ?? "")")
        }
        if journal.discardedTailBytes > 0 {
            log.notice("\(config.journalPath): dropped \(journal.discardedTailBytes) bytes of an unfinished last record (an earlier crash)")
        }
        context = ContextDirectory(path: config.contextDirectory)
        do {
            let created = try context.ensureDefaults()
            if !created.isEmpty { log.notice("context: created default \(created.joined(separator: ", ")) in \(config.contextDirectory)") }
        } catch {
            throw .storage("cannot prepare the context directory \(config.contextDirectory): \(error)")
        }
        assembled = ContextAssembler.assemble([], budgetBytes: config.contextBudgetBytes)
        reloadContext()
        let model = config.provider.model.isEmpty ? "" : " model \(config.provider.model)"
        log.notice("assistant: provider \(config.provider.kind.rawValue)\(model), \(journal.exchanges.count) exchange(s) of history")
    }

    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The handlers to merge into ``Daemon/handlers``.
    public var handlers: [String: (IncomingRequest) -> Void] { [
        "chat": { [unowned self] in self.chat($0) },
        "history": { [unowned self] in self.history($0) },
        "clear": { [unowned self] in self.clear($0) },
        "reload": { [unowned self] in self.reload($0) },
        "assistant-status": { [unowned self] in self.status($0) },
    ] }

    /// Re-reads the context files (`/reload`, SIGHUP) and reassembles the system prompt.
    @discardableResult
    public func reloadContext() -> AssembledContext {
        let files = context.load(now: loop.clock.unixTime)
        for w in context.warnings { log.warning("context: \(w)") }
        assembled = ContextAssembler.assemble(files, budgetBytes: config.contextBudgetBytes)
        for t in assembled.trimmed {
            log.notice("context: \(t.name) cut from \(t.originalBytes) to \(t.keptBytes) bytes to fit the budget of \(config.contextBudgetBytes)")
        }
        return assembled
    }

    /// A completion outside the conversation, for cron jobs: the persona's system prompt and a
    /// single user turn. Nothing of it enters the chat history; it has its own `LLMCall`, so it
    /// runs beside chats and other jobs and answers only its caller.
    @discardableResult
    public func task(_ prompt: String, onDone: @escaping (Result<Completion, LLMError>) -> Void) -> LLMCall {
        bridge.complete(system: assembled.prompt, turns: [ChatTurn(.user, prompt)], onDelta: { _ in }, onDone: onDone)
    }

    /// Applies changed settings (SIGHUP): provider, model, key, budgets, timeouts and retries
    /// take effect for the next request. The context directory and the journal need a restart.
    /// Returns what changed, or throws when the new provider settings cannot work (the old ones
    /// stay).
    public func reconfigure(_ new: AssistantConfig, environment: (String) -> String? = Assistant.processEnvironment) throws(DaemonError) -> [String] {
        let problems = new.provider.problems()
        guard problems.isEmpty else { throw .configuration(problems.joined(separator: "; ")) }
        let key: APIKey?
        do { key = try LLMBridge.key(for: new.provider, environment: environment) } catch { throw .configuration(error.description) }
        var changed: [String] = []
        let p = config.provider, q = new.provider
        if p.kind != q.kind || p.model != q.model || p.baseURL != q.baseURL || p.apiKeyEnv != q.apiKeyEnv || p.maxTokens != q.maxTokens {
            changed.append("provider \(q.kind.rawValue)" + (q.model.isEmpty ? "" : " model \(q.model)"))
        }
        if config.historyBudgetTokens != new.historyBudgetTokens || config.contextBudgetBytes != new.contextBudgetBytes { changed.append("budgets") }
        if config.maxRetries != new.maxRetries || config.timeouts.idle != new.timeouts.idle || config.timeouts.overall != new.timeouts.overall {
            changed.append("retries and timeouts")
        }
        if config.contextDirectory != new.contextDirectory || config.journalPath != new.journalPath {
            changed.append("(the context directory and the journal change only with a restart)")
        }
        var kept = new
        kept.contextDirectory = config.contextDirectory
        kept.journalPath = config.journalPath
        config = kept
        bridge.reconfigure(new.provider, key: key)
        bridge.timeouts = new.timeouts
        bridge.retry.maxRetries = new.maxRetries
        return changed
    }

    /// Stops every call in progress (daemon shutdown).
    public func shutdown() {
        bridge.cancelAll()
    }

    // MARK: Handlers

    /// Chats one device may have waiting for the provider at once (each is a paid request).
    public static let maxChatsPerDevice = 8

    private func chat(_ r: IncomingRequest) {
        guard (chatsByDevice[r.device] ?? 0) < Self.maxChatsPerDevice else {
            r.fail(code: "busy", "\(Self.maxChatsPerDevice) chats are already waiting for the provider; try again when one is answered")
            return
        }
        let text = String(decoding: r.message.body, as: UTF8.self)
        guard !text.allSatisfy({ $0.isWhitespace }) else {
            r.fail(code: "bad-request", "an empty message was not sent to the model")
            return
        }
        let system = assembled.prompt
        let turns = HistoryWindow.turns(history: journal.exchanges, newMessage: text, budgetTokens: config.historyBudgetTokens,
                                        systemTokens: HistoryWindow.estimateTokens(system))
        let started = loop.clock.now
        var firstPiece: Duration?
        let call = bridge.complete(system: system, turns: turns, onDelta: { [unowned self] piece in
            if firstPiece == nil { firstPiece = self.loop.clock.now - started }
            r.partial(Array(piece.utf8))
        }, onDone: { [unowned self] outcome in
            self.finished(r, text: text, outcome: outcome, firstPiece: firstPiece, started: started)
        })
        if !call.isFinished {
            calls[ObjectIdentifier(r)] = call
            chatsByDevice[r.device, default: 0] += 1
            devices[ObjectIdentifier(r)] = r.device
        }
        r.onCancel = { [unowned self] _ in
            self.calls.removeValue(forKey: ObjectIdentifier(r))?.cancel()
        }
    }

    private func finished(_ r: IncomingRequest, text: String, outcome: Result<Completion, LLMError>,
                          firstPiece: Duration?, started: Instant) {
        calls[ObjectIdentifier(r)] = nil
        if let d = devices.removeValue(forKey: ObjectIdentifier(r)) {
            chatsByDevice[d, default: 1] -= 1
            if chatsByDevice[d] == 0 { chatsByDevice[d] = nil }
        }
        r.onCancel = nil   // it holds the request: break the cycle
        switch outcome {
        case .success(let completion):
            let now = loop.clock.unixTime
            var params = ["provider": config.provider.kind.rawValue, "stop": completion.stopReason ?? ""]
            if !config.provider.model.isEmpty { params["model"] = config.provider.model }
            if let n = completion.inputTokens { params["input-tokens"] = String(n) }
            if let n = completion.outputTokens { params["output-tokens"] = String(n) }
            if completion.hitTokenLimit { params["truncated"] = "true" }
            if let f = firstPiece { params["first-piece-ms"] = String(f.nanoseconds / 1_000_000) }
            params["total-ms"] = String((loop.clock.now - started).nanoseconds / 1_000_000)
            do {
                try journal.append(Exchange(time: now, user: text, assistant: completion.text))
                params["stored"] = "true"
            } catch {
                log.error("cannot store the exchange: \(error)")
                params["stored"] = "false"
            }
            do { try context.appendDailyLog(user: text, assistant: completion.text, time: now) } catch {
                log.warning("cannot append to the daily log: \(error)")
            }
            if !r.isFinished { r.reply(params: params) }
        case .failure(.cancelled):
            log.info("chat cancelled by the client")
            if !r.isFinished { r.fail(code: "cancelled", "cancelled") }
        case .failure(let error):
            log.warning("chat failed: \(error)")
            if !r.isFinished { r.fail(code: error.code, error.description) }
        }
    }

    /// The newest exchanges as JSON: `{"total":N,"exchanges":[{"time":T,"user":...,"assistant":...}]}`,
    /// oldest first, at most `limit` (default 20) and at most one message body.
    private func history(_ r: IncomingRequest) {
        let limit = max(1, min(Int(r.message.params["limit"] ?? "") ?? 20, 1000))
        var items: [JSONValue] = []
        var size = 64
        for e in journal.exchanges.reversed() {
            guard items.count < limit else { break }
            let item: JSONValue = ["time": .number(Double(e.time)), "user": .string(e.user), "assistant": .string(e.assistant)]
            let n = item.encoded().utf8.count + 1
            guard size + n <= Message.maxBody else { continue }   // one huge exchange must not hide the rest
            size += n
            items.append(item)
        }
        let body: JSONValue = ["total": .number(Double(journal.exchanges.count)), "exchanges": .array(items.reversed())]
        r.reply(Array(body.encoded().utf8), params: ["count": String(items.count)])
    }

    private func clear(_ r: IncomingRequest) {
        let n = journal.exchanges.count
        do {
            try journal.clear(time: loop.clock.unixTime)
            r.reply(Array("history cleared (\(n) exchange(s)); the daily logs are kept".utf8), params: ["cleared": String(n)])
        } catch {
            r.fail(code: "storage", "cannot clear the history: \(error)")
        }
    }

    private func reload(_ r: IncomingRequest) {
        let a = reloadContext()
        var text = "context reloaded: " + (a.included.isEmpty ? "no files (default prompt)" : a.included.joined(separator: ", "))
        text += " (\(a.prompt.utf8.count) bytes)"
        for t in a.trimmed { text += "; \(t.name) cut to \(t.keptBytes) of \(t.originalBytes) bytes" }
        for w in context.warnings { text += "; warning: \(w)" }
        r.reply(Array(text.utf8), params: ["bytes": String(a.prompt.utf8.count)])
    }

    private func status(_ r: IncomingRequest) {
        let c = bridge.counters
        r.reply(params: [
            "provider": config.provider.kind.rawValue, "model": config.provider.model,
            "exchanges": String(journal.exchanges.count), "context-bytes": String(assembled.prompt.utf8.count),
            "llm-requests": String(c.requests), "llm-retries": String(c.retries), "llm-failed": String(c.failed),
            "llm-active": String(bridge.activeCalls),
        ])
    }
}
