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
}
