import ClawReactor

/// When to try an LLM request again, as the vendors' own SDKs do (anchors.md 4.4): at most
/// `maxRetries` more attempts; retry 408, 409, 429, every 5xx (529 "overloaded" included) and
/// connection failures; `x-should-retry` overrides the status; a server's hint (`retry-after-ms`,
/// then `retry-after` in seconds) wins when it is positive and at most `maxHint`, and a larger
/// hint means do not retry; otherwise back off `min(0.5 s × 2^n, 8 s)` less up to 25 % jitter.
/// Pure: the caller supplies the jitter draw, so tests are exact.
public struct RetryPolicy: Sendable {
    public var maxRetries = 2
    public var maxHint: Duration = .seconds(60)
    public var initialBackoff: Duration = .milliseconds(500)
    public var maxBackoff: Duration = .seconds(8)

    public init() {}

    public enum Decision: Equatable, Sendable {
        case retry(after: Duration)
        case giveUp
    }

    /// What failed: an HTTP status with its headers (names lower-case), or no response at all.
    public enum Failure: Sendable {
        case status(Int, headers: [String: String])
        case connection
    }

    /// `retriesSoFar` counts the retries already made; `jitter` is a draw in [0, 1).
    public func decide(_ failure: Failure, retriesSoFar: Int, jitter: Double) -> Decision {
        guard retriesSoFar < maxRetries else { return .giveUp }
        var headers: [String: String] = [:]
        switch failure {
        case .connection:
            break
        case .status(let code, let h):
            headers = h
            switch h["x-should-retry"]?.lowercased() {
            case "true": break
            case "false": return .giveUp
            default:
                guard code == 408 || code == 409 || code == 429 || code >= 500 else { return .giveUp }
            }
        }
        if let hint = Self.hint(headers) {
            guard hint > .zero, hint <= maxHint else { return hint > maxHint ? .giveUp : backoff(retriesSoFar, jitter) }
            return .retry(after: hint)
        }
        return backoff(retriesSoFar, jitter)
    }

    private func backoff(_ n: Int, _ jitter: Double) -> Decision {
        var d = initialBackoff
        for _ in 0..<min(n, 16) { d = d * 2 }
        d = min(d, maxBackoff)
        let scale = 1 - 0.25 * min(max(jitter, 0), 1)
        return .retry(after: .nanoseconds(Int64(Double(d.nanoseconds) * scale)))
    }

    /// The server's hint: `retry-after-ms`, else `retry-after` as (possibly fractional) seconds.
    /// An HTTP-date `retry-after` is not used (it would need the server's clock); the backoff applies.
    static func hint(_ h: [String: String]) -> Duration? {
        if let ms = h["retry-after-ms"].flatMap({ Double($0.trimmingSpaces) }), ms.isFinite {
            return .nanoseconds(Int64(max(-1, min(ms, 1e9)) * 1e6))
        }
        if let s = h["retry-after"].flatMap({ Double($0.trimmingSpaces) }), s.isFinite {
            return .nanoseconds(Int64(max(-1, min(s, 1e6)) * 1e9))
        }
        return nil
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return String(s)
    }
}
