import Glibc
import Testing
@testable import ClawReactor

/// Each test runs its own loop on the test's thread, with a hard deadline.
@Suite(.serialized) struct TimerTests {
    @Test func oneShotTimerFiresOnceAfterItsDelay() throws {
        let loop = try EventLoop()
        let start = loop.clock.now
        var fired: [Duration] = []
        let timer = Timer(loop: loop) { fired.append(loop.clock.now - start) }
        timer.schedule(after: .milliseconds(50))
        loop.run(until: .milliseconds(300)) { false }
        #expect(fired.count == 1)
        #expect(fired[0] >= .milliseconds(50))
        #expect(fired[0] < .milliseconds(250))
        #expect(!timer.isPending)
    }

    @Test func periodicTimerKeepsItsPeriodAndCanBeCancelledFromItsOwnCallback() throws {
        let loop = try EventLoop()
        let start = loop.clock.now
        var ticks: [Duration] = []
        var timer: Timer!
        timer = Timer(loop: loop) {
            ticks.append(loop.clock.now - start)
            if ticks.count == 5 { timer.cancel() }
        }
        timer.schedulePeriodic(every: .milliseconds(20))
        loop.run(until: .milliseconds(400)) { false }
        #expect(ticks.count == 5)
        // Ticks land near multiples of the period: no drift, no bunching.
        for (i, t) in ticks.enumerated() {
            #expect(t >= .milliseconds(20 * (i + 1)))
            #expect(t < .milliseconds(20 * (i + 1) + 60))
        }
        #expect(!timer.isPending)
    }

    @Test func rearmingReplacesTheEarlierDeadline() throws {
        let loop = try EventLoop()
        let start = loop.clock.now
        var firedAt: Duration?
        let timer = Timer(loop: loop) { firedAt = loop.clock.now - start }
        timer.schedule(after: .milliseconds(30))
        timer.schedule(after: .milliseconds(120))
        loop.run(until: .milliseconds(400)) { firedAt != nil }
        let at = try #require(firedAt)
        #expect(at >= .milliseconds(120))
    }

    @Test func cancelledTimerNeverFires() throws {
        let loop = try EventLoop()
        var fired = false
        let timer = Timer(loop: loop) { fired = true }
        timer.schedule(after: .milliseconds(20))
        timer.cancel()
        loop.run(until: .milliseconds(100)) { false }
        #expect(!fired)
    }

    @Test func timerFreedInsideItsOwnCallbackDoesNotCrash() throws {
        let loop = try EventLoop()
        var holder: [Timer] = []
        var count = 0
        let periodic = Timer(loop: loop) {
            count += 1
            holder.removeAll()   // drops the last reference to the running timer
        }
        holder.append(periodic)
        periodic.schedulePeriodic(every: .milliseconds(10))
        weak let weakTimer = periodic
        _ = consume periodic
        loop.run(until: .milliseconds(150)) { false }
        #expect(count == 1)
        #expect(weakTimer == nil)
    }

    @Test func ioEventFreedInsideItsOwnCallbackDoesNotCrash() throws {
        let loop = try EventLoop()
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var events: [IOEvent] = []
        var calls = 0
        let ev = IOEvent(loop: loop, fd: fds[0]) { _ in
            calls += 1
            events.removeAll()
        }
        ev.watch(.readable)
        events.append(ev)
        _ = consume ev
        var byte: UInt8 = 1
        _ = write(fds[1], &byte, 1)
        loop.run(until: .milliseconds(100)) { false }
        #expect(calls == 1)
    }

    @Test func fakeClockMovesOnlyWhenAdvanced() {
        let clock = FakeClock()
        let t0 = clock.now
        let u0 = clock.unixTime
        #expect(clock.now == t0)
        clock.advance(by: .seconds(3600))
        #expect(clock.now - t0 == .seconds(3600))
        #expect(clock.unixTime - u0 == 3600)
    }
}
