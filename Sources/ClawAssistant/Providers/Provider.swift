import ClawReactor

/// The wire dialect of an LLM provider. DeepSeek and every "OpenAI-compatible" server (Ollama,
/// llama.cpp's server, vLLM, OpenRouter) speak OpenAI's Chat Completions; Anthropic has its own
/// Messages API.
public enum ProviderAPI: String, Sendable {
    case openAIChat
    case anthropicMessages
}

/// Which provider answers chat. `echo` answers locally (tests, demos); `none` means nothing is
/// configured, and chat says so instead of pretending.
public enum ProviderKind: String, Sendable, CaseIterable {
    case openai
    case deepseek
    case anthropic
    case openaiCompatible = "openai-compatible"
    case echo
    case none

    public var api: ProviderAPI? {
        switch self {
        case .openai, .deepseek, .openaiCompatible: return .openAIChat
        case .anthropic: return .anthropicMessages
        case .echo, .none: return nil
        }
    }
}

/// What the daemon needs to talk to one provider. The API key itself is read from the environment
/// variable named here, once, at start; it travels only in a request header.
public struct ProviderConfig: Sendable {
    public var kind: ProviderKind
    public var model: String
    /// Up to and including the API version path (`https://api.openai.com/v1`); the endpoint
    /// (`/chat/completions`, `/messages`) is appended.
    public var baseURL: String
    /// The environment variable holding the key; empty for servers without one (a local Ollama).
    public var apiKeyEnv: String
    public var maxTokens: Int

    public init(kind: ProviderKind, model: String? = nil, baseURL: String? = nil, apiKeyEnv: String? = nil,
                maxTokens: Int? = nil) {
        let d = Self.defaults(kind)
        self.kind = kind
        self.model = model ?? d.model
        self.baseURL = baseURL ?? d.baseURL
        self.apiKeyEnv = apiKeyEnv ?? d.apiKeyEnv
        self.maxTokens = maxTokens ?? 4096
    }

    /// Defaults per provider: the public endpoints, a current inexpensive model, the vendors'
    /// customary key variables. `openai-compatible` has no default URL or model.
    public static func defaults(_ kind: ProviderKind) -> (model: String, baseURL: String, apiKeyEnv: String) {
        switch kind {
        case .openai: return ("gpt-4o-mini", "https://api.openai.com/v1", "OPENAI_API_KEY")
        case .deepseek: return ("deepseek-chat", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY")
        case .anthropic: return ("claude-3-5-haiku-latest", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY")
        case .openaiCompatible: return ("", "", "")
        case .echo, .none: return ("", "", "")
        }
    }

    /// Every problem with this configuration, in words a user can act on; empty when usable.
    public func problems() -> [String] {
        guard kind.api != nil else { return [] }
        var out: [String] = []
        if model.isEmpty { out.append("provider \(kind.rawValue) needs a model name") }
        if baseURL.isEmpty {
            out.append("provider \(kind.rawValue) needs a base URL (for Ollama: http://127.0.0.1:11434/v1)")
        } else if !(baseURL.hasPrefix("https://") || baseURL.hasPrefix("http://")) {
            out.append("the base URL must start with https:// or http://")
        } else if baseURL.contains("?") || baseURL.contains("#") || baseURL.contains("@") {
            out.append("the base URL must not contain a query, a fragment or credentials; the key goes in the environment")
        }
        if maxTokens < 1 || maxTokens > 1_000_000 { out.append("max tokens must be between 1 and 1000000") }
        return out
    }
}

/// An API key kept out of every description, so a stray interpolation cannot log it.
public struct APIKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    let value: String
    public init(_ value: String) { self.value = value }
    public var isEmpty: Bool { value.isEmpty }
    public var description: String { "<api key>" }
    public var debugDescription: String { description }

    /// Removes the key from a text that came back from a server, in case it echoes it.
    func redact(_ text: String) -> String {
        guard value.count >= 8, text.contains(value) else { return text }
        return text.replacing(value, with: "<api key>")
    }
}

/// Builds the HTTP request for one completion. Pure: the same inputs give the same bytes.
public enum ProviderRequest {
    public static func build(_ config: ProviderConfig, key: APIKey?, system: String, turns: [ChatTurn],
                             stream: Bool = true) -> HTTPRequest {
        var headers: [(String, String)] = [("Content-Type", "application/json")]
        if stream { headers.append(("Accept", "text/event-stream")) }
        let base = config.baseURL.hasSuffix("/") ? String(config.baseURL.dropLast()) : config.baseURL
        var body: [String: JSONValue] = ["model": .string(config.model), "stream": .bool(stream)]
        let url: String
        switch config.kind.api ?? .openAIChat {
        case .openAIChat:
            url = base + "/chat/completions"
            if let key, !key.isEmpty { headers.append(("Authorization", "Bearer \(key.value)")) }
            var messages: [JSONValue] = []
            if !system.isEmpty { messages.append(["role": "system", "content": .string(system)]) }
            messages += turns.map { ["role": .string($0.role.rawValue), "content": .string($0.content)] }
            body["messages"] = .array(messages)
            // OpenAI's newer models take only max_completion_tokens; compatible servers know max_tokens.
            body[config.kind == .openai ? "max_completion_tokens" : "max_tokens"] = .number(Double(config.maxTokens))
            if stream && config.kind != .openaiCompatible { body["stream_options"] = ["include_usage": true] }
        case .anthropicMessages:
            url = base + "/messages"
            if let key, !key.isEmpty { headers.append(("x-api-key", key.value)) }
            headers.append(("anthropic-version", "2023-06-01"))
            if !system.isEmpty { body["system"] = .string(system) }
            body["messages"] = .array(turns.map { ["role": .string($0.role.rawValue), "content": .string($0.content)] })
            body["max_tokens"] = .number(Double(config.maxTokens))
        }
        return HTTPRequest(method: "POST", url: url, headers: headers, body: Array(JSONValue.object(body).encoded().utf8))
    }
}
