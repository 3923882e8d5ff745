import ClawAssistant
import ClawChannel
import ClawClient
import ClawDaemon
import ClawReactor
import ClawTransport
import Glibc
import Testing

/// A daemon with the assistant pointed at the mock LLM, and a paired client, in one process.
final class AssistantFixture {
    static let key = "sk-mock-SECRET-0123456789"
    let fixture: Fixture
    let assistant: Assistant
    let session: ClientSession
    var loop: EventLoop { fixture.loop }

    init(_ kind: ProviderKind = .openai, baseURL: String, idle: Duration = .seconds(10), retries: Int = 2,
         configure: (inout AssistantConfig) -> Void = { _ in }) throws {
        fixture = try Fixture()
        var config = AssistantConfig(
            provider: ProviderConfig(kind: kind, model: "mock-model", baseURL: baseURL, apiKeyEnv: "MOCK_LLM_KEY"),
            contextDirectory: "\(fixture.dir)/state/context", journalPath: "\(fixture.dir)/state/conversation.jsonl")
        config.timeouts.idle = idle
        config.maxRetries = retries
        configure(&config)
        assistant = try Assistant(loop: fixture.loop, config: config,
                                  environment: { $0 == "MOCK_LLM_KEY" ? Self.key : nil },
                                  log: Logger("test-assistant", minimum: .error))
        // Fast, exact backoff so the retry tests take a second, not ten.
        assistant.bridge.retry.initialBackoff = .milliseconds(100)
        assistant.bridge.jitter = { 0 }
        fixture.daemon.attach(assistant)
        let id = try fixture.pair()
        session = try fixture.connect(id).0
    }

    struct Answer {
        var pieces: [String] = []
        var pieceTimes: [Double] = []
        var outcome: Result<Message, RequestFailure>?
        var text: String { pieces.joined() }
        var errorCode: String? {
            if case .failure(.server(let code, _))? = outcome { return code }
            return nil
        }
        var errorText: String {
            if case .failure(let f)? = outcome { return f.description }
            return ""
        }
    }

    /// Sends a chat and runs the loop until its answer is complete (or `timeout`).
    func chat(_ text: String, timeout: Duration = .seconds(20), onPiece: @escaping (OutgoingRequest) -> Void = { _ in }) -> Answer {
        var a = Answer()
        let r = session.request("chat", body: Array(text.utf8))
        r.onPartial = { m in
            a.pieces.append(m.text)
            a.pieceTimes.append(wallClock())
            onPiece(r)
        }
        r.onDone = { a.outcome = $0 }
        _ = loop.run(until: timeout) { a.outcome != nil }
        return a
    }

    func request(_ method: String, params: [String: String] = [:]) -> Message? {
        var outcome: Result<Message, RequestFailure>?
        session.request(method, params: params).onDone = { outcome = $0 }
        _ = loop.run(until: .seconds(5)) { outcome != nil }
        if case .success(let m)? = outcome { return m }
        return nil
    }

    /// The journal as stored on disk, reopened from the file.
    func storedExchanges() throws -> [Exchange] {
        try ConversationJournal(path: assistant.config.journalPath).exchanges
    }
}

@Suite(.serialized) struct AssistantTests {
    static let mock = Result { try MockLLM() }

    func mock() throws -> MockLLM { try Self.mock.get() }

    /// Checks the invariant every scenario must keep: history holds only real answers.
    func expectCleanHistory(_ f: AssistantFixture, expected: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let stored = try f.storedExchanges()
        #expect(stored.map(\.user) == expected, sourceLocation: sourceLocation)
        for e in stored {
            #expect(e.assistant == "You said: \(e.user)", "an error or partial answer was stored", sourceLocation: sourceLocation)
        }
    }

    @Test(arguments: [ProviderKind.openai, .deepseek, .openaiCompatible, .anthropic])
    func aStreamedReplyFromEachProviderFormatArrivesInPiecesInOrder(kind: ProviderKind) throws {
        let m = try mock()
        let scenario = "ok,pieces=6,chunk_delay_ms=30,id=\(kind.rawValue)"
        let f = try AssistantFixture(kind, baseURL: m.base(scenario))
        let first = f.chat("hello there, assistant")
        #expect(first.text == "You said: hello there, assistant")
        #expect(first.pieces.count == 6, "one partial message per provider delta")
        #expect((first.pieceTimes.last ?? 0) - (first.pieceTimes.first ?? 0) > 0.1, "pieces arrive as they are produced, not at the end")
        guard case .success(let reply)? = first.outcome else { Issue.record("no reply: \(first.errorText)"); return }
        #expect(reply.params["stored"] == "true" && reply.params["provider"] == kind.rawValue)

        let second = f.chat("and a second question")
        #expect(second.text == "You said: and a second question")
        try expectCleanHistory(f, expected: ["hello there, assistant", "and a second question"])

        // What the provider saw: the key in its header only, the system prompt, valid role order.
        let requests = m.events("request", scenario: scenario)
        #expect(requests.count == 2)
        let last = try #require(requests.last)
        let headers = try #require(last["headers"])
        if kind == .anthropic {
            #expect(headers["x-api-key"]?.stringValue == AssistantFixture.key)
            #expect(headers["anthropic-version"] != nil)
            #expect(last["body"]?["system"]?.stringValue?.contains("## SOUL") == true)
            #expect(last["body"]?["messages"]?.arrayValue?.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant", "user"])
        } else {
            #expect(headers["authorization"]?.stringValue == "Bearer \(AssistantFixture.key)")
            let roles = last["body"]?["messages"]?.arrayValue?.map { $0["role"]?.stringValue ?? "" }
            #expect(roles == ["system", "user", "assistant", "user"])
        }
        #expect(last["path"]?.stringValue?.contains("SECRET") == false)
    }

    @Test func a429WithRetryAfterIsRetriedAfterTheHintThenSucceeds() throws {
        let m = try mock()
        let scenario = "status-429-then-ok,retry_after=1"
        let f = try AssistantFixture(.anthropic, baseURL: m.base(scenario))
        let a = f.chat("are you there")
        #expect(a.text == "You said: are you there")
        let times = m.events("request", scenario: scenario).compactMap { $0["t"]?.doubleValue }
        #expect(times.count == 2)
        if times.count == 2 { #expect(times[1] - times[0] >= 0.95, "retry-after: 1 was honoured (waited \(times[1] - times[0]) s)") }
        try expectCleanHistory(f, expected: ["are you there"])
    }

    @Test(arguments: [500, 503, 529])
    func serverErrorsAreRetriedThenGivenUpWithAClearErrorAndTheDaemonKeepsServing(status: Int) throws {
        let m = try mock()
        let scenario = "status-\(status),times=3"
        let f = try AssistantFixture(.openai, baseURL: m.base(scenario), retries: 2)
        let failed = f.chat("first")
        #expect(failed.errorCode == "provider-http")
        #expect(failed.errorText.contains("HTTP \(status)"))
        #expect(!failed.errorText.contains("SECRET"))
        #expect(m.events("request", scenario: scenario).count == 3, "one attempt and two retries")
        let ok = f.chat("second")
        #expect(ok.text == "You said: second", "the daemon keeps serving")
        try expectCleanHistory(f, expected: ["second"])
    }

    @Test func aClientErrorIsNotRetried() throws {
        let m = try mock()
        let scenario = "status-401,times=1"
        let f = try AssistantFixture(.openai, baseURL: m.base(scenario))
        let a = f.chat("x")
        #expect(a.errorText.contains("HTTP 401") && a.errorText.contains("check the API key"))
        #expect(m.events("request", scenario: scenario).count == 1)
    }

    /// Failures inside a 200 response: the client sees what it got, then a clear error; nothing
    /// of it is stored, and the next chat works.
    @Test(arguments: [("cut,after=2,times=1", "provider-cut-off"), ("bad-json,times=1", "provider-malformed"),
                      ("bad-sse,times=1", "provider-malformed"), ("html-200,times=1", "provider-malformed"),
                      ("mid-error,times=1", "provider-error")])
    func brokenResponsesGiveAClearErrorAndNothingIsStored(scenario: String, code: String) throws {
        for kind in [ProviderKind.openai, .anthropic] {
            let m = try mock()
            let unique = scenario + ",k=\(kind.rawValue)"
            let f = try AssistantFixture(kind, baseURL: m.base(unique))
            let a = f.chat("tell me something long")
            #expect(a.errorCode == code, "\(kind) \(scenario): \(a.errorText)")
            #expect(!a.errorText.isEmpty && !a.errorText.contains("SECRET"))
            let b = f.chat("again")
            #expect(b.text == "You said: again", "\(kind) \(scenario): the daemon keeps serving")
            try expectCleanHistory(f, expected: ["again"])
        }
    }

    @Test func keepAliveCommentsDoNotHoldOffTheIdleTimeout() throws {
        let m = try mock()
        let scenario = "keepalive-only,interval_ms=100,times=1"
        let f = try AssistantFixture(.deepseek, baseURL: m.base(scenario), idle: .seconds(1))
        let start = wallClock()
        let a = f.chat("hello?")
        let took = wallClock() - start
        #expect(a.errorCode == "provider-timeout" && a.errorText.contains("idle"))
        #expect(took >= 0.9 && took < 3, "the idle timeout fired after \(took) s although comments came every 100 ms")
        #expect(m.events("request", scenario: scenario).count == 1, "an idle timeout is not retried")
        #expect(f.chat("now?").text == "You said: now?")
        try expectCleanHistory(f, expected: ["now?"])
    }

    @Test func aSlowFirstByteWithinTheLimitSucceeds() throws {
        let m = try mock()
        let f = try AssistantFixture(.openai, baseURL: m.base("slow-first-byte,delay_ms=1200"), idle: .seconds(3))
        let a = f.chat("take your time")
        #expect(a.text == "You said: take your time")
        if case .success(let reply)? = a.outcome { #expect(Int(reply.params["first-piece-ms"] ?? "") ?? 0 >= 1100) }
    }

    @Test func connectionRefusedIsAClearErrorAndTheDaemonKeepsServing() throws {
        // A port that nobody listens on: bind one, note it, close it.
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        close(s)
        let port = UInt16(bigEndian: addr.sin_port)
        let f = try AssistantFixture(.openai, baseURL: "http://127.0.0.1:\(port)/v1", retries: 1)
        let a = f.chat("anyone?")
        #expect(a.errorCode == "provider-unreachable", "\(a.errorText)")
        #expect(a.errorText.contains("cannot reach the provider"))
        #expect(f.assistant.bridge.counters.retries == 1, "connection errors are retried")
        #expect(f.request("history") != nil, "the daemon keeps serving")
        try expectCleanHistory(f, expected: [])
    }

    @Test func cancelClosesTheProvidersConnectionWithinAHundredMilliseconds() throws {
        let m = try mock()
        let scenario = "ok,chunk_delay_ms=200,pieces=50,id=cancel"
        let f = try AssistantFixture(.openai, baseURL: m.base(scenario))
        var cancelledAt = 0.0
        let a = f.chat("a long story please") { r in
            if cancelledAt == 0 { cancelledAt = wallClock(); r.cancel() }
        }
        #expect(a.pieces.count == 1)
        #expect(a.outcome == .failure(.reset("cancelled")))
        // Give the daemon time to see the reset, then the mock time to notice.
        _ = f.loop.run(until: .seconds(2)) { !m.events("closed", scenario: scenario).isEmpty }
        let closed = try #require(m.events("closed", scenario: scenario).first?["t"]?.doubleValue)
        let delay = closed - cancelledAt
        print("cancel: the mock saw the connection closed \(Int(delay * 1000)) ms after the client cancelled")
        #expect(delay < promptLimit(.milliseconds(100)).seconds, "closed \(delay) s after the cancel")
        #expect(f.assistant.bridge.activeCalls == 0 && f.assistant.bridge.counters.cancelled == 1)
        #expect(f.chat("short one").text == "You said: short one")
        try expectCleanHistory(f, expected: ["short one"])
    }

    @Test func historyClearAndReloadWorkAsCommands() throws {
        let m = try mock()
        let f = try AssistantFixture(.openai, baseURL: m.base("ok,id=commands"))
        _ = f.chat("one")
        _ = f.chat("two")
        let h = try #require(f.request("history", params: ["limit": "1"]))
        let parsed = try JSONValue.parse(h.body)
        #expect(parsed["total"] == 2 && parsed["exchanges"]?[0]?["user"] == "two")
        // /reload picks up an edited USER.md.
        let user = "\(f.assistant.config.contextDirectory)/USER.md"
        try AtomicFile.write(Array("The owner is called Ada.\n".utf8), to: user)
        #expect(f.request("reload")?.text.contains("USER.md") == true)
        #expect(f.assistant.assembled.prompt.contains("The owner is called Ada."))
        #expect(f.request("clear")?.params["cleared"] == "2")
        #expect(try f.storedExchanges().isEmpty)
        _ = f.chat("three")
        let roles = m.events("request", scenario: "ok,id=commands").last?["body"]?["messages"]?.arrayValue?.map { $0["role"]?.stringValue ?? "" }
        #expect(roles == ["system", "user"], "after /clear no history is sent")
        #expect(f.request("assistant-status")?.params["exchanges"] == "1")
    }

    @Test func withoutAProviderChatSaysSoAndStoresNothing() throws {
        let f = try AssistantFixture(.none, baseURL: "")
        let a = f.chat("hello")
        #expect(a.errorCode == "no-provider" && a.errorText.contains("--provider"))
        try expectCleanHistory(f, expected: [])
    }

    @Test func aDeviceCannotPileUpMoreChatsThanTheLimit() throws {
        let m = try mock()
        let f = try AssistantFixture(.openai, baseURL: m.base("never,id=busy"), idle: .seconds(30))
        var busy = 0
        var requests: [OutgoingRequest] = []
        for i in 0..<(Assistant.maxChatsPerDevice + 2) {
            let r = f.session.request("chat", body: Array("waiting \(i)".utf8))
            r.onDone = { if case .failure(.server("busy", _)) = $0 { busy += 1 } }
            requests.append(r)
        }
        _ = f.loop.run(until: .seconds(5)) { busy == 2 }
        #expect(busy == 2, "the chats over the limit are refused at once, the others wait")
        #expect(f.assistant.bridge.activeCalls == Assistant.maxChatsPerDevice)
        for r in requests { r.cancel() }
        _ = f.loop.run(until: .seconds(2)) { f.assistant.bridge.activeCalls == 0 }
        #expect(f.assistant.bridge.activeCalls == 0)
        let again = f.session.request("chat", body: Array("and now".utf8))
        var refused = false
        again.onDone = { if case .failure(.server("busy", _)) = $0 { refused = true } }
        _ = f.loop.run(until: .milliseconds(500)) { refused }
        #expect(!refused, "the slots come back when chats end")
        again.cancel()
    }

    @Test func concurrentChatsEachGetTheirOwnAnswer() throws {
        let m = try mock()
        let f = try AssistantFixture(.openai, baseURL: m.base("ok,chunk_delay_ms=20,pieces=4,id=concurrent"))
        var answers: [Int: String] = [:]
        var done = 0
        for i in 0..<4 {
            let r = f.session.request("chat", body: Array("question \(i)".utf8))
            r.onPartial = { answers[i, default: ""] += $0.text }
            r.onDone = { _ in done += 1 }
        }
        _ = f.loop.run(until: .seconds(10)) { done == 4 }
        #expect(answers == [0: "You said: question 0", 1: "You said: question 1", 2: "You said: question 2", 3: "You said: question 3"])
        #expect(try f.storedExchanges().count == 4)
    }
}
