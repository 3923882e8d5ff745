import Glibc
import Testing
@testable import ClawReactor

@Suite(.serialized) struct SignalTests {
    @Test(arguments: [SIGTERM, SIGINT, SIGHUP])
    func signalReachesItsHandlerThroughTheLoop(signo: Int32) throws {
        let loop = try EventLoop()
        var received = 0
        let handler = try SignalEvent(loop: loop, signal: signo) { received += 1 }
        // Raise it from a timer callback, i.e. while the loop is running.
        let timer = Timer(loop: loop) { kill(getpid(), signo) }
        timer.schedule(after: .milliseconds(10))
        let ok = loop.run(until: .seconds(2)) { received > 0 }
        #expect(ok)
        #expect(received == 1)
        withExtendedLifetime(handler) {}
    }

    /// A daemon started by a parent that blocks signals (a libdispatch worker spawning it, as
    /// Foundation's Process does) still hears them: the handler unblocks its signal.
    @Test func aSignalBlockedByTheParentIsUnblockedByItsHandler() throws {
        var block = sigset_t(), old = sigset_t()
        sigemptyset(&block)
        sigaddset(&block, SIGUSR2)
        pthread_sigmask(SIG_BLOCK, &block, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        let loop = try EventLoop()
        var received = 0
        let handler = try SignalEvent(loop: loop, signal: SIGUSR2) { received += 1 }
        // To this thread itself: only its own mask decides.
        let timer = Timer(loop: loop) { pthread_kill(pthread_self(), SIGUSR2) }
        timer.schedule(after: .milliseconds(10))
        #expect(loop.run(until: .seconds(2)) { received > 0 }, "the blocked signal never arrived")
        withExtendedLifetime(handler) {}
    }
}
