/// Why a completion failed, in words for the user. None of these is ever stored as an assistant
/// turn. Texts that come from a server are shortened, stripped of control characters and of the
/// API key before they get here.
public enum LLMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No provider, or one that cannot be used (no key, no model); the text says what to set.
    case notConfigured(String)
    /// The provider answered with an HTTP error status.
    case http(status: Int, message: String)
    /// No connection could be made, or it broke before the response began.
    case connection(String)
    /// The connect timeout, the idle timeout or the overall cap expired.
    case timedOut(String)
    /// The response stream ended before its end marker (`[DONE]`, `message_stop`).
    case cutOff(receivedCharacters: Int)
    /// The response was not what the provider's API defines (bad JSON, not an event stream).
    case malformedResponse(String)
    /// The provider reported an error inside the stream (Anthropic's `event: error`, an OpenAI
    /// `error` object).
    case provider(type: String, message: String)
    /// The user cancelled.
    case cancelled

    public var description: String {
        switch self {
        case .notConfigured(let what): return what
        case .http(let status, let message):
            let hint: String
            switch status {
            case 401, 403: hint = " (check the API key)"
            case 404: hint = " (check the base URL and the model name)"
            case 429: hint = " (rate limited; try again later)"
            case 529: hint = " (the provider is overloaded)"
            default: hint = ""
            }
            return "the provider answered HTTP \(status)\(hint)" + (message.isEmpty ? "" : ": \(message)")
        case .connection(let what): return "cannot reach the provider: \(what)"
        case .timedOut(let what): return what
        case .cutOff(let n): return "the provider's stream was cut off after \(n) characters; the partial answer was not kept"
        case .malformedResponse(let what): return "the provider sent a malformed response: \(what)"
        case .provider(let type, let message): return "the provider reported an error (\(type)): \(message)"
        case .cancelled: return "cancelled"
        }
    }

    /// A short machine-readable name, for the message layer's `code` parameter.
    public var code: String {
        switch self {
        case .notConfigured: return "no-provider"
        case .http: return "provider-http"
        case .connection: return "provider-unreachable"
        case .timedOut: return "provider-timeout"
        case .cutOff: return "provider-cut-off"
        case .malformedResponse: return "provider-malformed"
        case .provider: return "provider-error"
        case .cancelled: return "cancelled"
        }
    }
}

/// Makes a server-supplied text fit for an error line: no control characters, at most `limit`
/// characters.
func sanitized(_ text: String, limit: Int = 300) -> String {
    var out = ""
    for ch in text.unicodeScalars {
        if out.unicodeScalars.count >= limit { out += "…"; break }
        out.unicodeScalars.append(ch.value < 0x20 || ch.value == 0x7F ? " " : ch)
    }
    return out.trimmingSpaces
}
