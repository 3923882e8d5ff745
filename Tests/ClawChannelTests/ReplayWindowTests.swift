import Testing
@testable import ClawChannel

struct ReplayWindowTests {
    @Test func inOrderCountersAreAcceptedOnceEach() {
        var w = ReplayWindow()
        for c in UInt64(0)..<10_000 { #expect(accept(&w, c)) }
        for c in UInt64(9_000)..<10_000 { #expect(!accept(&w, c)) }
    }

    @Test func replayedCounterIsRejectedImmediatelyAndAfterFiveThousandNewer() {
        var w = ReplayWindow()
        #expect(accept(&w, 100))
        #expect(!accept(&w, 100))
        for c in UInt64(101)...5_100 { #expect(accept(&w, c)) }
        #expect(!accept(&w, 100))
        #expect(!accept(&w, 3_000))
    }

    @Test func outOfOrderInsideTheWindowIsAcceptedOnce() {
        var w = ReplayWindow()
        #expect(accept(&w, 10_000))
        #expect(accept(&w, 4_000))   // late but inside the window
        #expect(!accept(&w, 4_000))
        #expect(accept(&w, 10_000 - ReplayWindow.windowSize))
        #expect(!accept(&w, 10_000 - ReplayWindow.windowSize - 1))  // just outside
    }

    @Test func windowIsAtLeast2048() {
        #expect(ReplayWindow.windowSize >= 2048)
    }

    @Test func farJumpClearsTheWholeRing() {
        var w = ReplayWindow()
        for c in UInt64(0)..<64 { #expect(accept(&w, c)) }
        let far = UInt64(1) << 40
        #expect(accept(&w, far))
        // Old bits must not leak into the new window: counters that share a ring slot with an
        // accepted old counter are still fresh.
        #expect(accept(&w, far - 64 * 128 + 64))
        #expect(!accept(&w, 5))
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
            #expect(accept(&w, counter) == expected, "row \(i): counter \(counter)")
        }
    }
}

/// `#expect` cannot call a mutating method on a local; this wrapper can.
private func accept(_ w: inout ReplayWindow, _ c: UInt64) -> Bool { w.accept(c) }

@Suite struct ReplayWindowPeekTests {
    /// `wouldAccept` must agree with `accept` on every input, and never change the window.
    @Test func peekAgreesWithAcceptAndChangesNothing() {
        var w = ReplayWindow()
        var g = SplitMix(seed: 99)
        var base: UInt64 = 0
        for _ in 0..<20_000 {
            let r = g.next()
            base += r % 3 == 0 ? r % 200 : 0
            let c = base &+ (r >> 8) % 9000 &- 4500
            let peek = w.wouldAccept(c)
            let again = w.wouldAccept(c)
            #expect(peek == again)
            #expect(peek == accept(&w, c), "counter \(c)")
        }
    }
}
