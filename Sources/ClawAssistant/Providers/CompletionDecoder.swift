import ClawReactor
/// A finished answer.
public struct Completion: Equatable, Sendable {
    public var text: String
    /// `stop`/`end_turn`, or `length`/`max_tokens` when the answer hit the token limit.
    public var stopReason: String?
    public var inputTokens: Int?
    public var outputTokens: Int?

    public init(text: String, stopReason: String? = nil, inputTokens: Int? = nil, outputTokens: Int? = nil) {
        self.text = text
        self.stopReason = stopReason
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }

    public var hitTokenLimit: Bool { stopReason == "length" || stopReason == "max_tokens" }
}

/// Decodes one HTTP response of a provider, streamed or not, as its bytes arrive. Pure: the
/// caller hands it the status, the headers and body chunks, and asks at the end for the outcome.
///
/// - A 2xx `text/event-stream` body goes through ``SSEParser``; each event is read in the
///   provider's dialect (OpenAI chunks up to `[DONE]`; Anthropic `message_start` ...
///   `message_stop`, with `ping` ignored and `error` failing the answer).
/// - A 2xx `application/json` body is a non-streamed completion (servers that ignore `stream`).
/// - Anything else 2xx (an HTML page from a proxy) fails at once.
/// - A non-2xx body is collected (bounded) to extract the provider's error message.
///
/// `progress` counts events that carry the answer forward; comments, blank lines and pings do
/// not count, so an idle timer reset by it cannot be kept alive by keep-alives.
public struct CompletionDecoder {
    public let api: ProviderAPI
    public static let maxText = 4 << 20
    static let maxErrorBody = 64 << 10

    public private(set) var status = 0
    public private(set) var text = ""
    public private(set) var finished = false
    public private(set) var stopReason: String?
    public private(set) var inputTokens: Int?
    public private(set) var outputTokens: Int?
    /// Events that moved the answer forward (see above).
    public private(set) var progress = 0
    /// SSE comment lines seen (`: keep-alive`).
    public var comments: Int { sse.comments }

    private enum Mode { case awaitingHeaders, stream, json, error }
    private var mode = Mode.awaitingHeaders
    private var sse = SSEParser()
    private var collected: [UInt8] = []
    private var events = 0

    public init(api: ProviderAPI) { self.api = api }

    /// The response's status and headers (names in any case).
    public mutating func headers(status: Int, headers: [(String, String)]) throws(LLMError) {
        self.status = status
        let type = headers.first { $0.0.lowercased() == "content-type" }?.1.lowercased() ?? ""
        if !(200..<300).contains(status) {
            mode = .error
        } else if type.hasPrefix("text/event-stream") {
            mode = .stream
        } else if type.hasPrefix("application/json") {
            mode = .json
        } else {
            throw .malformedResponse("HTTP \(status) with content type \"\(sanitized(type, limit: 60))\" instead of an event stream; is the base URL right?")
        }
    }

    /// Set when the response turned out to be unusable (a provider error event, bad JSON, an
    /// answer too large). Pieces decoded before the problem were still returned; the rest of the
    /// body is ignored and ``end()`` throws this.
    public private(set) var failure: LLMError?

    /// A chunk of the body. Returns the pieces of answer text it completed, in order; check
    /// ``failure`` afterwards.
    public mutating func body(_ bytes: some Collection<UInt8>) -> [String] {
        guard failure == nil else { return [] }
        var pieces: [String] = []
        do throws(LLMError) {
            try body(bytes, into: &pieces)
        } catch {
            failure = error
        }
        return pieces
    }

    private mutating func body(_ bytes: some Collection<UInt8>, into pieces: inout [String]) throws(LLMError) {
        switch mode {
        case .awaitingHeaders:
            throw .malformedResponse("a body arrived before the headers")
        case .error:
            let room = Self.maxErrorBody - collected.count
            if room > 0 { collected += bytes.prefix(room) }
        case .json:
            guard collected.count + bytes.count <= Self.maxText else { throw .malformedResponse("the answer exceeds \(Self.maxText) bytes") }
            collected += bytes
            progress += 1
        case .stream:
            let parsed: [SSEEvent]
            do { parsed = try sse.feed(bytes) } catch { throw .malformedResponse(error.description) }
            for e in parsed where !finished {
                events += 1
                if let piece = try decode(e), !piece.isEmpty {
                    guard text.utf8.count + piece.utf8.count <= Self.maxText else {
                        throw .malformedResponse("the answer exceeds \(Self.maxText) bytes")
                    }
                    text += piece
                    pieces.append(piece)
                }
            }
        }
    }

    /// The transfer ended without a transport error: the complete answer, or why there is none.
    public mutating func end() throws(LLMError) -> Completion {
        if let failure { throw failure }
        switch mode {
        case .awaitingHeaders:
            throw .malformedResponse("the server closed the connection without a response")
        case .error:
            throw .http(status: status, message: Self.errorMessage(collected))
        case .json:
            try decodeWhole()
        case .stream:
            if !finished {
                if events == 0 { throw .malformedResponse("the event stream ended without a single event") }
                throw .cutOff(receivedCharacters: text.count)
            }
        }
        return Completion(text: text, stopReason: stopReason, inputTokens: inputTokens, outputTokens: outputTokens)
    }

    // MARK: Dialects

    private mutating func decode(_ e: SSEEvent) throws(LLMError) -> String? {
        switch api {
        case .openAIChat:
            if e.data.hasPrefix("[DONE]") { finished = true; progress += 1; return nil }
            let v = try json(e.data)
            if let err = v["error"] { throw Self.providerError(err) }
            progress += 1
            if let usage = v["usage"], !usage.isNull {
                inputTokens = usage["prompt_tokens"]?.intValue ?? inputTokens
                outputTokens = usage["completion_tokens"]?.intValue ?? outputTokens
            }
            guard let choice = v["choices"]?[0] else { return nil }
            if let reason = choice["finish_reason"]?.stringValue { stopReason = reason }
            return choice["delta"]?["content"]?.stringValue
        case .anthropicMessages:
            if e.type == "ping" { return nil }
            let v = try json(e.data)
            let type = v["type"]?.stringValue ?? e.type
            switch type {
            case "ping":
                return nil
            case "error":
                throw Self.providerError(v["error"] ?? v)
            case "message_start":
                progress += 1
                inputTokens = v["message"]?["usage"]?["input_tokens"]?.intValue
                return nil
            case "content_block_delta":
                progress += 1
                guard v["delta"]?["type"]?.stringValue == "text_delta" else { return nil }
                return v["delta"]?["text"]?.stringValue
            case "message_delta":
                progress += 1
                if let r = v["delta"]?["stop_reason"]?.stringValue { stopReason = r }
                if let n = v["usage"]?["output_tokens"]?.intValue { outputTokens = n }
                return nil
            case "message_stop":
                progress += 1
                finished = true
                return nil
            default:
                progress += 1   // content_block_start/stop and events added later
                return nil
            }
        }
    }

    private mutating func decodeWhole() throws(LLMError) {
        let v: JSONValue
        do { v = try JSONValue.parse(collected) } catch { throw .malformedResponse(error.description) }
        if let err = v["error"] { throw Self.providerError(err) }
        switch api {
        case .openAIChat:
            guard let choice = v["choices"]?[0], let content = choice["message"]?["content"]?.stringValue else {
                throw .malformedResponse("no choices[0].message.content in the answer")
            }
            text = content
            stopReason = choice["finish_reason"]?.stringValue
            inputTokens = v["usage"]?["prompt_tokens"]?.intValue
            outputTokens = v["usage"]?["completion_tokens"]?.intValue
        case .anthropicMessages:
            guard let blocks = v["content"]?.arrayValue else { throw .malformedResponse("no content in the answer") }
            text = blocks.compactMap { $0["type"]?.stringValue == "text" ? $0["text"]?.stringValue : nil }.joined()
            stopReason = v["stop_reason"]?.stringValue
            inputTokens = v["usage"]?["input_tokens"]?.intValue
            outputTokens = v["usage"]?["output_tokens"]?.intValue
        }
        finished = true
    }

    private func json(_ data: String) throws(LLMError) -> JSONValue {
        do { return try JSONValue.parse(data) } catch {
            throw .malformedResponse("a stream event is not valid JSON (\(error))")
        }
    }

    static func providerError(_ err: JSONValue) -> LLMError {
        let type = err["type"]?.stringValue ?? err["code"]?.stringValue ?? "error"
        let message = err["message"]?.stringValue ?? err.stringValue ?? "no message"
        return .provider(type: sanitized(type, limit: 60), message: sanitized(message))
    }

    /// The message of an error body in either vendor's shape (`{"error":{"message":...}}`), else
    /// the start of the body as text.
    static func errorMessage(_ body: [UInt8]) -> String {
        if let v = try? JSONValue.parse(body) {
            if let m = v["error"]?["message"]?.stringValue { return sanitized(m) }
            if let m = v["error"]?.stringValue ?? v["message"]?.stringValue { return sanitized(m) }
        }
        return sanitized(String(decoding: body.prefix(600), as: UTF8.self))
    }
}
