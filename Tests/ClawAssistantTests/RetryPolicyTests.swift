import Testing
@testable import ClawAssistant

@Suite struct RetryPolicyTests {
    let p = RetryPolicy()

    @Test func retriableStatusesBackOffExponentiallyWithJitter() {
        for code in [408, 409, 429, 500, 502, 503, 529] {
            #expect(p.decide(.status(code, headers: [:]), retriesSoFar: 0, jitter: 0) == .retry(after: .milliseconds(500)))
        }
        #expect(p.decide(.connection, retriesSoFar: 1, jitter: 0) == .retry(after: .seconds(1)))
        // 25 % jitter at most: 1 s × (1 − 0.25 × 1.0) = 750 ms.
        #expect(p.decide(.connection, retriesSoFar: 1, jitter: 1) == .retry(after: .milliseconds(750)))
        var many = RetryPolicy()
        many.maxRetries = 10
        #expect(many.decide(.connection, retriesSoFar: 6, jitter: 0) == .retry(after: .seconds(8)), "capped at 8 s")
    }

    @Test func clientErrorsAndExhaustedRetriesGiveUp() {
        for code in [400, 401, 403, 404, 422] {
            #expect(p.decide(.status(code, headers: [:]), retriesSoFar: 0, jitter: 0) == .giveUp)
        }
        #expect(p.decide(.status(503, headers: [:]), retriesSoFar: 2, jitter: 0) == .giveUp)
    }

    @Test func serverHintsWinWithinTheCap() {
        #expect(p.decide(.status(429, headers: ["retry-after": "3"]), retriesSoFar: 0, jitter: 0.5) == .retry(after: .seconds(3)))
        #expect(p.decide(.status(429, headers: ["retry-after-ms": "250", "retry-after": "9"]), retriesSoFar: 0, jitter: 0)
                == .retry(after: .milliseconds(250)))
        #expect(p.decide(.status(429, headers: ["retry-after": "3600"]), retriesSoFar: 0, jitter: 0) == .giveUp,
                "a hint beyond the cap means do not retry")
        #expect(p.decide(.status(429, headers: ["retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"]), retriesSoFar: 0, jitter: 0)
                == .retry(after: .milliseconds(500)), "a date hint falls back to the backoff")
        #expect(p.decide(.status(429, headers: ["retry-after": "0"]), retriesSoFar: 0, jitter: 0) == .retry(after: .milliseconds(500)))
    }

    @Test func shouldRetryHeaderOverridesTheStatus() {
        #expect(p.decide(.status(400, headers: ["x-should-retry": "true"]), retriesSoFar: 0, jitter: 0) == .retry(after: .milliseconds(500)))
        #expect(p.decide(.status(503, headers: ["x-should-retry": "false"]), retriesSoFar: 0, jitter: 0) == .giveUp)
    }
}
