import Testing
@testable import ClawChannel

struct ReplayWindowTests {
    @Test func inOrderCountersAreAcceptedOnceEach() {
        var w = ReplayWindow()
        for c in UInt64(0)..<10_000 { #expect(w.accept(c)) }
        for c in UInt64(9_000)..<10_000 { #expect(!w.accept(c)) }
    }

    @Test func replayedCounterIsRejectedImmediatelyAndAfterFiveThousandNewer() {
        var w = ReplayWindow()
        #expect(w.accept(100))
        #expect(!w.accept(100))
        for c in UInt64(101)...5_100 { #expect(w.accept(c)) }
        #expect(!w.accept(100))
        #expect(!w.accept(3_000))
    }

    @Test func outOfOrderInsideTheWindowIsAcceptedOnce() {
        var w = ReplayWindow()
        #expect(w.accept(5_000))
        #expect(w.accept(4_000))   // late but inside the window
        #expect(!w.accept(4_000))
        #expect(w.accept(5_000 - ReplayWindow.windowSize))
        #expect(!w.accept(5_000 - ReplayWindow.windowSize - 1))  // just outside
    }

    @Test func windowIsAtLeast2048() {
        #expect(ReplayWindow.windowSize >= 2048)
    }

    @Test func farJumpClearsTheWholeRing() {
        var w = ReplayWindow()
        for c in UInt64(0)..<64 { #expect(w.accept(c)) }
        let far = UInt64(1) << 40
        #expect(w.accept(far))
        // Old bits must not leak into the new window: counters that share a ring slot with an
        // accepted old counter are still fresh.
        #expect(w.accept(far - 64 * 128 + 64))
        #expect(!w.accept(5))
    }

    /// A table in the style of the Linux kernel's replay test: (counter, expected).
    @Test func tableOfMixedCounters() {
        var w = ReplayWindow()
        let W = ReplayWindow.windowSize
        let table: [(UInt64, Bool)] = [
            (0, true), (1, true), (1, false), (9, true), (8, true), (7, true), (7, false),
            (W, true), (W - 1, true), (W - 1, false), (W - 2, true), (2, true), (2, false),
            (W + 16, true), (3, false), (W + 16, false), (W * 4, true), (W * 4 - (W - 1), true),
            (10, false), (W * 4 - W, true), (W * 4 - W - 1, false), (0, false),
            (ReplayWindow.rejectAfterMessages, false), (ReplayWindow.rejectAfterMessages - 1, true),
            (0, false), (ReplayWindow.rejectAfterMessages - 1, false),
        ]
        for (i, (counter, expected)) in table.enumerated() {
            #expect(w.accept(counter) == expected, "row \(i): counter \(counter)")
        }
    }
}
