import ClawReactor
import Testing
@testable import ClawAssistant

@Suite struct CompletionDecoderTests {
    static let sse = [("Content-Type", "text/event-stream; charset=utf-8")]

    static func openAIChunk(_ content: String?, finish: String? = nil) -> String {
        var delta: [String: JSONValue] = [:]
        if let content { delta["content"] = .string(content) }
        let choice: JSONValue = ["index": 0, "delta": .object(delta), "finish_reason": finish.map { .string($0) } ?? .null]
        let v: JSONValue = ["id": "c", "object": "chat.completion.chunk", "choices": [choice]]
        return "data: \(v.encoded())\n\n"
    }

    static let openAIStream = openAIChunk("") + openAIChunk("Hel") + openAIChunk("lo, ") + openAIChunk("wörld")
        + openAIChunk(nil, finish: "stop")
        + "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n"
        + "data: [DONE]\n\n"

    static func anthropicEvent(_ type: String, _ json: String) -> String { "event: \(type)\ndata: \(json)\n\n" }

    static let anthropicStream =
        anthropicEvent("message_start", #"{"type":"message_start","message":{"id":"m","type":"message","role":"assistant","content":[],"usage":{"input_tokens":12,"output_tokens":1}}}"#)
        + anthropicEvent("content_block_start", #"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#)
        + anthropicEvent("ping", #"{"type": "ping"}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Bonjour"}}"#)
        + anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":" à toi"}}"#)
        + anthropicEvent("content_block_stop", #"{"type":"content_block_stop","index":0}"#)
        + anthropicEvent("message_delta", #"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#)
        + anthropicEvent("message_stop", #"{"type":"message_stop"}"#)

    /// Feeds `text` split at `cut` and returns the pieces and the outcome.
    func run(_ api: ProviderAPI, _ text: String, cut: Int? = nil, status: Int = 200,
             headers: [(String, String)] = sse) -> (pieces: [String], outcome: Result<Completion, LLMError>, decoder: CompletionDecoder) {
        var d = CompletionDecoder(api: api)
        var pieces: [String] = []
        do {
            try d.headers(status: status, headers: headers)
            let bytes = Array(text.utf8)
            let c = cut ?? bytes.count / 2
            pieces += d.body(bytes[..<c])
            pieces += d.body(bytes[c...])
            return (pieces, .success(try d.end()), d)
        } catch {
            return (pieces, .failure(error), d)
        }
    }

    @Test func openAIStreamGivesPiecesInOrderAtEverySplit() throws {
        for cut in stride(from: 0, through: Self.openAIStream.utf8.count, by: 7) {
            let r = run(.openAIChat, Self.openAIStream, cut: cut)
            #expect(r.pieces.joined() == "Hello, wörld")
            let c = try r.outcome.get()
            #expect(c.text == "Hello, wörld" && c.stopReason == "stop" && c.inputTokens == 7 && c.outputTokens == 3)
        }
        #expect(run(.openAIChat, Self.openAIStream).pieces == ["Hel", "lo, ", "wörld"])
    }

    @Test func anthropicStreamWithPingsGivesTextStopReasonAndUsage() throws {
        let r = run(.anthropicMessages, Self.anthropicStream)
        #expect(r.pieces == ["Bonjour", " à toi"])
        let c = try r.outcome.get()
        #expect(c == Completion(text: "Bonjour à toi", stopReason: "end_turn", inputTokens: 12, outputTokens: 5))
    }

    @Test func pingsAndCommentsAreNotProgress() throws {
        var d = CompletionDecoder(api: .anthropicMessages)
        try d.headers(status: 200, headers: Self.sse)
        _ = d.body(Array((": keep-alive\n\n" + Self.anthropicEvent("ping", #"{"type":"ping"}"#) + "\n\n").utf8))
        #expect(d.progress == 0 && d.comments == 1)
        _ = d.body(Array(Self.anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#).utf8))
        #expect(d.progress == 1)
    }

    @Test func anthropicMidStreamErrorFailsWithTheProvidersMessage() {
        let text = Self.anthropicEvent("message_start", #"{"type":"message_start","message":{"usage":{"input_tokens":1}}}"#)
            + Self.anthropicEvent("content_block_delta", #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#)
            + Self.anthropicEvent("error", #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#)
        let r = run(.anthropicMessages, text, cut: text.utf8.count)
        #expect(r.pieces == ["Hi"])
        #expect(r.outcome == .failure(.provider(type: "overloaded_error", message: "Overloaded")))
    }

    @Test func openAIErrorObjectInTheStreamFails() {
        let text = Self.openAIChunk("a") + #"data: {"error":{"message":"The server had an error","type":"server_error"}}"# + "\n\n"
        #expect(run(.openAIChat, text).outcome == .failure(.provider(type: "server_error", message: "The server had an error")))
    }

    @Test func malformedJSONInAnEventFails() {
        let r = run(.openAIChat, Self.openAIChunk("a") + "data: {\"choices\":[{\"delta\":{\"content\":\"x\"\n\n")
        guard case .failure(.malformedResponse(let why)) = r.outcome else { Issue.record("\(r.outcome)"); return }
        #expect(why.contains("not valid JSON"))
    }

    @Test func aStreamWithoutItsEndMarkerIsCutOff() {
        let cut = Self.openAIChunk("") + Self.openAIChunk("Hel") + Self.openAIChunk("lo")
        #expect(run(.openAIChat, cut).outcome == .failure(.cutOff(receivedCharacters: 5)))
        let anthropic = String(Self.anthropicStream.prefix(Self.anthropicStream.count - 60))
        guard case .failure(.cutOff) = run(.anthropicMessages, anthropic).outcome else { Issue.record("not cut off"); return }
    }

    @Test func keepAlivesOnlyOrNonSSEBodyIsMalformed() {
        for text in [": keep-alive\n\n: keep-alive\n\n", "<html><body>502 Bad Gateway</body></html>\n"] {
            let r = run(.openAIChat, text)
            #expect(r.outcome == .failure(.malformedResponse("the event stream ended without a single event")))
        }
    }

    @Test func anHTMLPageInsteadOfAStreamFailsAtTheHeaders() {
        let r = run(.openAIChat, "<html></html>", headers: [("content-type", "text/html")])
        guard case .failure(.malformedResponse(let why)) = r.outcome else { Issue.record("\(r.outcome)"); return }
        #expect(why.contains("text/html") && why.contains("base URL"))
    }

    @Test func errorStatusBodiesGiveTheProvidersMessage() {
        let openAI = #"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        #expect(run(.openAIChat, openAI, status: 429, headers: [("content-type", "application/json")]).outcome
                == .failure(.http(status: 429, message: "Rate limit reached for requests")))
        let anthropic = #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
        let r = run(.anthropicMessages, anthropic, status: 529, headers: [("content-type", "application/json")])
        #expect(r.outcome == .failure(.http(status: 529, message: "Overloaded")))
        #expect(LLMError.http(status: 529, message: "Overloaded").description.contains("overloaded"))
        let html = run(.openAIChat, "<h1>Bad\ngateway</h1>", status: 502, headers: [("content-type", "text/html")])
        #expect(html.outcome == .failure(.http(status: 502, message: "<h1>Bad gateway</h1>")))
    }

    @Test func nonStreamedJSONCompletionsAreAccepted() throws {
        let openAI = #"{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#
        let c = try run(.openAIChat, openAI, headers: [("Content-Type", "application/json")]).outcome.get()
        #expect(c.text == "Hi there" && c.hitTokenLimit && c.outputTokens == 2)
        let anthropic = #"{"type":"message","role":"assistant","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}],"stop_reason":"end_turn","usage":{"input_tokens":4,"output_tokens":1}}"#
        #expect(try run(.anthropicMessages, anthropic, headers: [("Content-Type", "application/json")]).outcome.get().text == "AB")
    }

    @Test func eventsAfterTheEndMarkerAreIgnored() throws {
        let r = run(.openAIChat, Self.openAIStream + Self.openAIChunk("late"))
        #expect(try r.outcome.get().text == "Hello, wörld")
    }
}

@Suite struct ProviderRequestTests {
    let turns = [ChatTurn(.user, "hi"), ChatTurn(.assistant, "hello"), ChatTurn(.user, "and now?")]

    @Test func openAIRequestCarriesTheSystemPromptFirstAndTheKeyOnlyInAHeader() throws {
        let key = APIKey("sk-test-secret-123456")
        let r = ProviderRequest.build(ProviderConfig(kind: .openai), key: key, system: "Be brief.", turns: turns)
        #expect(r.url == "https://api.openai.com/v1/chat/completions")
        #expect(r.headers.contains { $0 == ("Authorization", "Bearer sk-test-secret-123456") })
        #expect(!r.url.contains("sk-") && !r.description.contains("sk-") && !"\(key)".contains("sk-"))
        let body = try JSONValue.parse(r.body ?? [])
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue ?? "" } == ["system", "user", "assistant", "user"])
        #expect(messages[0]["content"] == "Be brief." && body["stream"] == true && body["model"] == "gpt-4o-mini")
        #expect(body["max_completion_tokens"] == 4096 && body["stream_options"]?["include_usage"] == true)
    }

    @Test func compatibleServersGetMaxTokensAndNoKeyWhenNoneIsSet() throws {
        let c = ProviderConfig(kind: .openaiCompatible, model: "llama3", baseURL: "http://127.0.0.1:11434/v1/", maxTokens: 100)
        let r = ProviderRequest.build(c, key: nil, system: "", turns: [ChatTurn(.user, "x")])
        #expect(r.url == "http://127.0.0.1:11434/v1/chat/completions")
        #expect(!r.headers.contains { $0.0 == "Authorization" })
        let body = try JSONValue.parse(r.body ?? [])
        #expect(body["max_tokens"] == 100 && body["stream_options"] == nil)
        #expect(body["messages"]?.arrayValue?.count == 1)
    }

    @Test func anthropicRequestPutsTheSystemPromptApartAndVersionsTheAPI() throws {
        let r = ProviderRequest.build(ProviderConfig(kind: .anthropic, maxTokens: 512), key: APIKey("sk-ant-xyz-0000000"),
                                      system: "Persona", turns: turns)
        #expect(r.url == "https://api.anthropic.com/v1/messages")
        #expect(r.headers.contains { $0 == ("x-api-key", "sk-ant-xyz-0000000") })
        #expect(r.headers.contains { $0 == ("anthropic-version", "2023-06-01") })
        let body = try JSONValue.parse(r.body ?? [])
        #expect(body["system"] == "Persona" && body["max_tokens"] == 512)
        #expect(body["messages"]?.arrayValue?.map { $0["role"]?.stringValue ?? "" } == ["user", "assistant", "user"])
    }

    @Test func configurationProblemsAreNamed() throws {
        #expect(ProviderConfig(kind: .openai).problems().isEmpty)
        #expect(ProviderConfig(kind: .openaiCompatible).problems().count == 2)
        #expect(ProviderConfig(kind: .openai, baseURL: "ftp://x").problems() == ["the base URL must start with https:// or http://"])
        #expect(!ProviderConfig(kind: .openai, baseURL: "https://u:p@x/v1").problems().isEmpty)
        #expect(throws: LLMError.self) { try LLMBridge.key(for: ProviderConfig(kind: .openai), environment: { _ in nil }) }
        #expect(try LLMBridge.key(for: ProviderConfig(kind: .openaiCompatible, apiKeyEnv: ""), environment: { _ in nil }) == nil)
    }

    @Test func aKeyEchoedByTheServerIsRedacted() {
        let key = APIKey("sk-abcdefgh12345")
        #expect(key.redact("Incorrect API key provided: sk-abcdefgh12345.") == "Incorrect API key provided: <api key>.")
    }
}
