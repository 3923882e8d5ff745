/// Who said a turn of the conversation. The system prompt is not a turn: it is assembled from the
/// context files for every request and sent in each provider's own place for it.
public enum ChatRole: String, Sendable, Equatable {
    case user
    case assistant
}

/// One turn of a conversation as it is sent to a model.
public struct ChatTurn: Equatable, Sendable {
    public var role: ChatRole
    public var content: String

    public init(_ role: ChatRole, _ content: String) {
        self.role = role
        self.content = content
    }
}

/// One completed exchange: what the user asked and what the assistant answered. The conversation
/// store keeps exchanges, never single turns, so stored history always alternates user,
/// assistant, and a failed or cancelled request leaves no trace in it.
public struct Exchange: Equatable, Sendable {
    /// Unix time (seconds) when the answer completed.
    public var time: Int64
    public var user: String
    public var assistant: String

    public init(time: Int64, user: String, assistant: String) {
        self.time = time
        self.user = user
        self.assistant = assistant
    }
}
