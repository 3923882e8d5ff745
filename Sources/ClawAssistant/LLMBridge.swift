import ClawReactor

/// Time limits of one completion (anchors.md 4.4). The idle timer is reset only by events that
/// carry the answer forward (see ``CompletionDecoder/progress``), never by SSE comments, blank
/// lines or pings, so a provider that only sends keep-alives cannot hold a request forever.
public struct LLMTimeouts: Sendable {
    /// Name resolution, TCP and TLS (curl's connect timeout).
    public var connect: Duration = .seconds(10)
    /// Longest wait for the response to start or for the next real event.
    public var idle: Duration = .seconds(90)
    /// Cap on the whole request, retries and their waits included.
    public var overall: Duration = .seconds(600)
    public init() {}
}

/// Counters for `status` lines and the benchmark.
public struct LLMCounters: Sendable {
    public var requests = 0
    public var attempts = 0
    public var retries = 0
    public var completed = 0
    public var failed = 0
    public var cancelled = 0
}

/// The LLM bridge: completions from the configured provider on the daemon's curl multi handle,
/// streamed piece by piece, with the vendors' retry rules and the timeouts above. Every call is
/// independent and answers only its own caller, so chat and cron can never take each other's
/// answers.
public final class LLMBridge {
    public let loop: EventLoop
    public let multi: CurlMulti
    public private(set) var config: ProviderConfig
    private(set) var key: APIKey?
    public var retry = RetryPolicy()
    public var timeouts = LLMTimeouts()
    public var counters = LLMCounters()
    /// Draws the backoff jitter; tests may fix it.
    public var jitter: () -> Double = { Double.random(in: 0..<1) }
    /// Calls in progress (a call removes itself when it ends).
    var active: [ObjectIdentifier: LLMCall] = [:]

    public init(loop: EventLoop, multi: CurlMulti, config: ProviderConfig, key: APIKey?) {
        self.loop = loop
        self.multi = multi
        self.config = config
        self.key = key
    }

    /// Reads the key from the environment variable the config names. Nil when none is named;
    /// an error when one is named but unset or empty.
    public static func key(for config: ProviderConfig, environment: (String) -> String?) throws(LLMError) -> APIKey? {
        guard config.kind.api != nil, !config.apiKeyEnv.isEmpty else { return nil }
        guard let v = environment(config.apiKeyEnv), !v.isEmpty else {
            throw .notConfigured("the API key variable \(config.apiKeyEnv) is not set (put it in the daemon's environment file)")
        }
        return APIKey(v)
    }

    public var activeCalls: Int { active.count }

    /// New provider settings (SIGHUP): later attempts use them; calls in progress keep going.
    public func reconfigure(_ config: ProviderConfig, key: APIKey?) {
        self.config = config
        self.key = key
    }

    /// Starts a completion. `onDelta` receives each piece of the answer as it arrives; `onDone`
    /// runs exactly once, never inside this call, with the whole answer or the reason there is
    /// none. Cancel with ``LLMCall/cancel()``.
    @discardableResult
    public func complete(system: String, turns: [ChatTurn], onDelta: @escaping (String) -> Void,
                         onDone: @escaping (Result<Completion, LLMError>) -> Void) -> LLMCall {
        counters.requests += 1
        let call = LLMCall(bridge: self, system: system, turns: turns, onDelta: onDelta, onDone: onDone)
        active[ObjectIdentifier(call)] = call
        call.begin()
        return call
    }

    /// Cancels every call in progress (shutdown).
    public func cancelAll() {
        for c in Array(active.values) { c.cancel() }
    }

    func ended(_ call: LLMCall, _ outcome: Result<Completion, LLMError>) {
        active[ObjectIdentifier(call)] = nil
        switch outcome {
        case .success: counters.completed += 1
        case .failure(.cancelled): counters.cancelled += 1
        case .failure: counters.failed += 1
        }
    }
}

/// One completion in progress: attempts, the waits between them, the idle and overall timers.
public final class LLMCall {
    private unowned let bridge: LLMBridge
    private let system: String
    private let turns: [ChatTurn]
    private var onDelta: (String) -> Void
    private var onDone: (Result<Completion, LLMError>) -> Void
    private var transfer: HTTPTransfer?
    private var decoder: CompletionDecoder?
    private var responseHeaders: [String: String] = [:]
    private var attempt = 0
    /// Once a piece reached the caller, a retry would repeat it: failures are final from then on.
    private var forwarded = 0
    private var lastProgress = 0
    private var failure: LLMError?
    private var finished = false
    private var idleTimer: Timer!
    private var overallTimer: Timer!
    private var retryTimer: Timer!
    private var echoTimer: Timer?

    init(bridge: LLMBridge, system: String, turns: [ChatTurn], onDelta: @escaping (String) -> Void,
         onDone: @escaping (Result<Completion, LLMError>) -> Void) {
        self.bridge = bridge
        self.system = system
        self.turns = turns
        self.onDelta = onDelta
        self.onDone = onDone
        idleTimer = Timer(loop: bridge.loop) { [unowned self] in self.expired("idle") }
        overallTimer = Timer(loop: bridge.loop) { [unowned self] in self.expired("overall") }
        retryTimer = Timer(loop: bridge.loop) { [unowned self] in self.startAttempt() }
    }

    /// Whether the call has ended (answered, failed or cancelled).
    public var isFinished: Bool { finished }

    /// Aborts the call: the HTTP transfer is cancelled at once (curl closes its connection as
    /// soon as control returns to the loop), and `onDone` gets `.cancelled` before this returns.
    /// A no-op once the call has ended.
    public func cancel() {
        guard !finished else { return }
        finish(.failure(.cancelled))
    }

    func begin() {
        switch bridge.config.kind {
        case .none:
            deferFinish(.failure(.notConfigured(
                "no LLM provider is configured: start clawchatd with --provider openai|deepseek|anthropic|openai-compatible (or echo to test)")))
        case .echo:
            startEcho()
        default:
            let problems = bridge.config.problems()
            if !problems.isEmpty { deferFinish(.failure(.notConfigured(problems.joined(separator: "; ")))); return }
            overallTimer.schedule(after: bridge.timeouts.overall)
            startAttempt()
        }
    }

    /// Reports an outcome from the loop, not from inside `complete`.
    private func deferFinish(_ outcome: Result<Completion, LLMError>) {
        let t = Timer(loop: bridge.loop) { [unowned self] in self.finish(outcome) }
        echoTimer = t
        t.schedule(after: .zero)
    }

    /// The local `echo` provider: the last user turn back, a word per loop turn, so clients see a
    /// real stream.
    private func startEcho() {
        let text = "echo: " + (turns.last?.content ?? "")
        var pieces: [String] = []
        var current = ""
        for ch in text {
            current.append(ch)
            if ch == " " { pieces.append(current); current = "" }
        }
        if !current.isEmpty || pieces.isEmpty { pieces.append(current) }
        var next = 0
        let t = Timer(loop: bridge.loop) { [unowned self] in
            guard !self.finished else { return }
            if next < pieces.count {
                self.forwarded += 1
                self.onDelta(pieces[next])
                next += 1
                self.echoTimer?.schedule(after: .zero)
            } else {
                self.finish(.success(Completion(text: text, stopReason: "stop")))
            }
        }
        echoTimer = t
        t.schedule(after: .zero)
    }

    private func startAttempt() {
        guard !finished else { return }
        attempt += 1
        bridge.counters.attempts += 1
        failure = nil
        responseHeaders = [:]
        lastProgress = 0
        guard let api = bridge.config.kind.api else { return }
        decoder = CompletionDecoder(api: api)
        var request = ProviderRequest.build(bridge.config, key: bridge.key, system: system, turns: turns)
        request.connectTimeout = bridge.timeouts.connect
        let t: HTTPTransfer
        do { t = try bridge.multi.start(request) } catch {
            finish(.failure(.connection(error.description)))
            return
        }
        transfer = t
        t.onHeaders = { [unowned self] status, headers in
            for (k, v) in headers { self.responseHeaders[k.lowercased()] = v }
            do throws(LLMError) { try self.decoder?.headers(status: status, headers: headers) } catch { self.abort(error) }
        }
        t.onBody = { [unowned self] bytes in self.received(bytes) }
        t.onComplete = { [unowned self] result in self.transferEnded(result) }
        idleTimer.schedule(after: bridge.timeouts.idle)
    }

    private func received(_ bytes: UnsafeRawBufferPointer) {
        guard !finished, failure == nil, decoder != nil else { return }
        let pieces = decoder!.body(bytes)
        if decoder!.progress != lastProgress {
            lastProgress = decoder!.progress
            idleTimer.schedule(after: bridge.timeouts.idle)
        }
        for p in pieces where !finished {
            forwarded += 1
            onDelta(p)
        }
        if let problem = decoder?.failure { abort(problem) }
    }

    /// Stops the current attempt because of what its response said; `transferEnded` decides.
    private func abort(_ error: LLMError) {
        guard failure == nil else { return }
        failure = error
        transfer?.cancel()
    }

    private func expired(_ which: String) {
        guard !finished else { return }
        let limit = which == "idle" ? bridge.timeouts.idle : bridge.timeouts.overall
        let error = LLMError.timedOut(which == "idle"
            ? "the provider sent nothing for \(Self.seconds(limit)) s (idle timeout)"
            : "the provider did not finish within \(Self.seconds(limit)) s (overall limit)")
        if which == "overall" || transfer == nil { finish(.failure(error)); return }
        abort(error)
    }

    private func transferEnded(_ result: HTTPResult) {
        guard !finished else { return }
        transfer = nil
        idleTimer.cancel()
        let outcome: LLMError
        if let failure {
            outcome = failure
        } else if let error = result.error {
            switch error {
            case .connectFailed: outcome = .connection("connection refused or unreachable (\(bridge.config.baseURL))")
            case .timedOut: outcome = .timedOut("no connection to the provider within \(Self.seconds(bridge.timeouts.connect)) s")
            case .cancelled: outcome = .cancelled
            case .invalidRequest(let what): outcome = .notConfigured("invalid provider request: \(what)")
            case .other(let code, let message):
                if forwarded > 0 || (decoder?.text.isEmpty == false) {
                    outcome = .cutOff(receivedCharacters: decoder?.text.count ?? 0)
                } else if result.status == 0 {
                    outcome = .connection(bridge.key?.redact(message) ?? message)
                } else {
                    outcome = .malformedResponse("the transfer failed (curl \(code)): \(message)")
                }
            }
        } else {
            do {
                guard var d = decoder else { return }
                let completion = try d.end()
                decoder = d
                finish(.success(completion))
                return
            } catch {
                outcome = error
            }
        }
        if forwarded == 0, let retryable = retryable(outcome, status: result.status) {
            let decision = bridge.retry.decide(retryable, retriesSoFar: attempt - 1, jitter: bridge.jitter())
            if case .retry(let delay) = decision {
                bridge.counters.retries += 1
                retryTimer.schedule(after: max(delay, .milliseconds(1)))
                return
            }
        }
        finish(.failure(redacted(outcome)))
    }

    /// What the retry policy is asked about: HTTP errors and broken connections, as the SDKs do.
    private func retryable(_ e: LLMError, status: Int) -> RetryPolicy.Failure? {
        switch e {
        case .http(let code, _): return .status(code, headers: responseHeaders)
        case .connection: return .connection
        default: return nil
        }
    }

    private func redacted(_ e: LLMError) -> LLMError {
        guard let key = bridge.key else { return e }
        switch e {
        case .http(let s, let m): return .http(status: s, message: key.redact(m))
        case .provider(let t, let m): return .provider(type: t, message: key.redact(m))
        case .malformedResponse(let m): return .malformedResponse(key.redact(m))
        case .connection(let m): return .connection(key.redact(m))
        default: return e
        }
    }

    private func finish(_ outcome: Result<Completion, LLMError>) {
        guard !finished else { return }
        finished = true
        idleTimer.cancel()
        overallTimer.cancel()
        retryTimer.cancel()
        echoTimer?.cancel()
        if let t = transfer {
            // The transfer outlives this call inside curl until its cancellation is delivered;
            // its callbacks must not reach back into a call that is gone.
            t.onHeaders = { _, _ in }
            t.onBody = { _ in }
            t.onComplete = { _ in }
            t.cancel()
        }
        transfer = nil
        let done = onDone
        onDelta = { _ in }
        onDone = { _ in }
        bridge.ended(self, outcome)
        done(outcome)
    }

    private static func seconds(_ d: Duration) -> String {
        let ms = d.nanoseconds / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)" : "\(Double(ms) / 1000)"
    }
}
