/// Which stored history goes to the model with a new message: the newest whole exchanges that
/// fit a token budget, oldest first, then the new message.
///
/// The result always starts with a user turn, strictly alternates user and assistant, and ends
/// with the new user turn, which both OpenAI's and Anthropic's APIs accept. Exchanges are taken
/// whole (never a question without its answer) and contiguously from the newest: an older short
/// exchange is not pulled in past a newer one that did not fit, so the model never sees a gap.
/// Pure.
public enum HistoryWindow {
    /// Tokens charged per turn for the role and message framing.
    public static let turnOverheadTokens = 4

    /// An estimate of the tokens in `s`: its UTF-8 bytes / 4, rounded up. Providers' tokenizers
    /// differ (English prose runs about 4 bytes a token, code and other scripts fewer), so keep a
    /// margin below the model's real limit.
    public static func estimateTokens(_ s: String) -> Int {
        (s.utf8.count + 3) / 4
    }

    /// The estimate for one turn of `content`: its text plus ``turnOverheadTokens``.
    public static func turnTokens(_ content: String) -> Int {
        estimateTokens(content) + turnOverheadTokens
    }

    /// The turns to send. `budgetTokens` covers everything: `systemTokens` (the assembled context,
    /// e.g. `estimateTokens(prompt)`), the history and `newMessage`. If the new message alone does
    /// not fit, the result is just the new message and the caller decides what to do.
    public static func turns(history: [Exchange], newMessage: String, budgetTokens: Int, systemTokens: Int = 0) -> [ChatTurn] {
        var remaining = budgetTokens - systemTokens - turnTokens(newMessage)
        var taken: [Exchange] = []
        for exchange in history.reversed() where !isBlank(exchange.user) && !isBlank(exchange.assistant) {
            let cost = turnTokens(exchange.user) + turnTokens(exchange.assistant)
            guard cost <= remaining else { break }
            remaining -= cost
            taken.append(exchange)
        }
        var turns: [ChatTurn] = []
        turns.reserveCapacity(taken.count * 2 + 1)
        for exchange in taken.reversed() {
            turns.append(ChatTurn(.user, exchange.user))
            turns.append(ChatTurn(.assistant, exchange.assistant))
        }
        turns.append(ChatTurn(.user, newMessage))
        return turns
    }

    /// Anthropic rejects text content that is empty or only whitespace.
    private static func isBlank(_ s: String) -> Bool {
        s.unicodeScalars.allSatisfy { $0.properties.isWhitespace }
    }
}
