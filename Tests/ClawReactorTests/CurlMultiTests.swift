import Glibc
import Testing
@testable import ClawReactor

/// Everything one transfer delivered, in order, with the loop clock's arrival times.
final class TransferLog {
    var headerCalls: [(status: Int, headers: [(String, String)])] = []
    var chunks: [(at: Instant, bytes: [UInt8])] = []
    var completions: [HTTPResult] = []
    var order: [String] = []

    init(_ transfer: HTTPTransfer, clock: MonotonicClock) {
        transfer.onHeaders = { [unowned self] status, headers in
            headerCalls.append((status, headers))
            order.append("headers")
        }
        transfer.onBody = { [unowned self] bytes in
            chunks.append((clock.now, Array(bytes)))
            if order.last != "body" { order.append("body") }
        }
        transfer.onComplete = { [unowned self] result in
            completions.append(result)
            order.append("complete")
        }
    }

    var body: [UInt8] { chunks.flatMap(\.bytes) }
    var bodyText: String { String(decoding: body, as: UTF8.self) }
    var isDone: Bool { !completions.isEmpty }

    func header(_ name: String) -> String? {
        headerCalls.last?.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on: bound, then closed.
func closedLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #expect(fd >= 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    #expect(ok)
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Each test runs its own loop on the test's thread with a hard deadline, against its own
/// Python server, which is killed when the test ends.
@Suite(.serialized) final class CurlMultiTests {
    let server: TestHTTPServer

    init() throws { server = try TestHTTPServer() }

    deinit { server.stop() }

    @Test func getReturns200AndTheExactBody() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let transfer = try multi.start(HTTPRequest(url: server.url("/hello"), timeout: .seconds(5)))
        let log = TransferLog(transfer, clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.completions == [HTTPResult(status: 200, error: nil)])
        #expect(log.headerCalls.count == 1)
        #expect(log.headerCalls.first?.status == 200)
        #expect(log.header("Content-Length") == String(TestHTTPServer.helloBody.utf8.count))
        #expect(log.bodyText == TestHTTPServer.helloBody)
        #expect(log.order == ["headers", "body", "complete"])
        #expect(transfer.status == 200)
        #expect(multi.activeTransfers == 0)
    }

    @Test func postedJSONIsEchoedWithItsContentType() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let json = #"{"message":"héllo, claw","numbers":[1,2,3],"nested":{"ok":true}}"#
        let request = HTTPRequest(method: "POST", url: server.url("/echo"),
                                  headers: [("Content-Type", "application/json"), ("Authorization", "Bearer test-secret")],
                                  body: Array(json.utf8), timeout: .seconds(5))
        let log = TransferLog(try multi.start(request), clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.completions == [HTTPResult(status: 200, error: nil)])
        #expect(log.header("Content-Type") == "application/json")
        #expect(log.body == Array(json.utf8))
    }

    @Test func interimContinueBlockIsSkippedAndHeadersArriveOnce() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let body = (0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let request = HTTPRequest(method: "POST", url: server.url("/echo"),
                                  headers: [("Content-Type", "application/octet-stream"), ("Expect", "100-continue")],
                                  body: body, timeout: .seconds(5))
        let log = TransferLog(try multi.start(request), clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.headerCalls.count == 1)
        #expect(log.headerCalls.first?.status == 200)
        #expect(log.header("Content-Type") == "application/octet-stream")
        #expect(log.order == ["headers", "body", "complete"])
        #expect(log.body == body)
    }

    @Test func chunkedResponseStreamsEachChunkAsItArrives() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let n = 5, delay = 200
        let log = TransferLog(try multi.start(HTTPRequest(url: server.url("/chunked?n=\(n)&delay_ms=\(delay)"))),
                              clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.completions == [HTTPResult(status: 200, error: nil)])
        #expect(log.header("Transfer-Encoding") == "chunked")
        #expect(log.chunks.count >= n)
        #expect(log.bodyText == (0..<n).map { "chunk \($0)\n" }.joined())
        let spread = try #require(log.chunks.last).at - (try #require(log.chunks.first)).at
        #expect(spread >= .milliseconds((n - 1) * delay / 2))
    }

    @Test func twentyTransfersRunInParallel() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let count = 20, chunks = 3, delay = 150
        let single = Duration.milliseconds(chunks * delay)
        let start = loop.clock.now
        let logs = try (0..<count).map { _ in
            TransferLog(try multi.start(HTTPRequest(url: server.url("/chunked?n=\(chunks)&delay_ms=\(delay)"),
                                                    timeout: .seconds(10))), clock: loop.clock)
        }
        #expect(multi.activeTransfers == count)
        #expect(loop.run(until: .seconds(10)) { logs.allSatisfy(\.isDone) })
        let elapsed = loop.clock.now - start
        let expected = (0..<chunks).map { "chunk \($0)\n" }.joined()
        for log in logs {
            #expect(log.completions == [HTTPResult(status: 200, error: nil)])
            #expect(log.bodyText == expected)
        }
        // Serially this would take 20 x 450 ms = 9 s.
        #expect(elapsed < single * 5)
        #expect(multi.activeTransfers == 0)
    }

    @Test func cancelAfterTheFirstChunkCompletesOnceAndStopsTheBody() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let transfer = try multi.start(HTTPRequest(url: server.url("/chunked?n=5&delay_ms=150")))
        let log = TransferLog(transfer, clock: loop.clock)
        var bodyAfterCancel = false
        var cancelled = false
        let record = transfer.onBody
        transfer.onBody = { bytes in
            record(bytes)
            if cancelled { bodyAfterCancel = true }
            cancelled = true
            transfer.cancel()
            transfer.cancel()
        }
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        // Give the remaining chunks time to arrive, were the transfer still running.
        loop.run(until: .milliseconds(900)) { false }
        #expect(log.completions == [HTTPResult(status: 200, error: .cancelled)])
        #expect(log.chunks.count == 1)
        #expect(!bodyAfterCancel)
        #expect(log.order == ["headers", "body", "complete"])
        #expect(multi.activeTransfers == 0)
    }

    @Test func cancelOutsideCallbacksCompletesFromTheLoopExactlyOnce() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let transfer = try multi.start(HTTPRequest(url: server.url("/slow_headers")))
        let log = TransferLog(transfer, clock: loop.clock)
        loop.run(until: .milliseconds(200)) { false }
        #expect(!log.isDone)
        transfer.cancel()
        #expect(log.completions.isEmpty, "the completion must not run inside cancel()")
        #expect(multi.activeTransfers == 0, "the easy handle is freed at once")
        transfer.cancel()
        #expect(loop.run(until: .seconds(2)) { log.isDone })
        loop.run(until: .milliseconds(100)) { false }
        #expect(log.completions == [HTTPResult(status: 0, error: .cancelled)])
        #expect(log.headerCalls.isEmpty)
    }

    @Test func cancelFromAnotherTransfersCallback() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let victim = try multi.start(HTTPRequest(url: server.url("/stall")))
        let victimLog = TransferLog(victim, clock: loop.clock)
        let killer = try multi.start(HTTPRequest(url: server.url("/chunked?n=2&delay_ms=300")))
        let killerLog = TransferLog(killer, clock: loop.clock)
        let record = killer.onBody
        killer.onBody = { bytes in
            record(bytes)
            victim.cancel()
        }
        #expect(loop.run(until: .seconds(5)) { victimLog.isDone && killerLog.isDone })
        #expect(victimLog.completions == [HTTPResult(status: 200, error: .cancelled)])
        #expect(victimLog.chunks.isEmpty)
        #expect(killerLog.completions == [HTTPResult(status: 200, error: nil)])
        #expect(killerLog.bodyText == "chunk 0\nchunk 1\n")
    }

    @Test func transferStartedInsideACallbackRuns() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let first = try multi.start(HTTPRequest(url: server.url("/hello")))
        let firstLog = TransferLog(first, clock: loop.clock)
        var secondLog: TransferLog?
        let record = first.onHeaders
        first.onHeaders = { [server] status, headers in
            record(status, headers)
            let second = try? multi.start(HTTPRequest(url: server.url("/hello")))
            secondLog = second.map { TransferLog($0, clock: loop.clock) }
        }
        #expect(loop.run(until: .seconds(5)) { firstLog.isDone && secondLog?.isDone == true })
        #expect(firstLog.completions == [HTTPResult(status: 200, error: nil)])
        #expect(secondLog?.completions == [HTTPResult(status: 200, error: nil)])
        #expect(secondLog?.bodyText == TestHTTPServer.helloBody)
    }

    @Test func refusedConnectionIsConnectFailed() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let port = try closedLoopbackPort()
        let log = TransferLog(try multi.start(HTTPRequest(url: "http://127.0.0.1:\(port)/", timeout: .seconds(5))),
                              clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.completions == [HTTPResult(status: 0, error: .connectFailed)])
        #expect(log.headerCalls.isEmpty)
        #expect(log.chunks.isEmpty)
    }

    @Test func stalledServerTimesOutWhileTimersKeepFiring() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        var ticks = 0
        let ticker = Timer(loop: loop) { ticks += 1 }
        ticker.schedulePeriodic(every: .milliseconds(50))
        let start = loop.clock.now
        let log = TransferLog(try multi.start(HTTPRequest(url: server.url("/stall"), timeout: .seconds(1))),
                              clock: loop.clock)
        var ticksAtCompletion = 0
        var completedAfter = Duration.zero
        #expect(loop.run(until: .seconds(5)) {
            if log.isDone && completedAfter == .zero {
                ticksAtCompletion = ticks
                completedAfter = loop.clock.now - start
            }
            return log.isDone
        })
        ticker.cancel()
        #expect(log.completions == [HTTPResult(status: 200, error: .timedOut)])
        #expect(log.headerCalls.count == 1)
        #expect(completedAfter >= .milliseconds(950))
        #expect(completedAfter < .seconds(3))
        #expect(ticksAtCompletion >= 10)
    }

    @Test func serverThatNeverAnswersTimesOutWithoutHeaders() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let log = TransferLog(try multi.start(HTTPRequest(url: server.url("/slow_headers"), timeout: .milliseconds(500))),
                              clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { log.isDone })
        #expect(log.completions == [HTTPResult(status: 0, error: .timedOut)])
        #expect(log.headerCalls.isEmpty)
    }

    @Test func cancellingInsideOnBodyAndFreeingEverythingLeavesTheLoopUsable() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        var doomed: CurlMulti? = try CurlMulti(loop: loop)
        var transfers: [HTTPTransfer] = []
        var otherCallbacks = 0
        for path in ["/stall", "/slow_headers", "/chunked?n=20&delay_ms=50"] {
            let transfer = try #require(doomed).start(HTTPRequest(url: server.url(path)))
            transfer.onComplete = { _ in otherCallbacks += 1 }
            transfers.append(transfer)
        }
        var freed = false
        transfers[2].onBody = { _ in
            transfers[2].cancel()
            transfers.removeAll()
            doomed = nil
            freed = true
        }
        #expect(loop.run(until: .seconds(5)) { freed })
        loop.run(until: .milliseconds(300)) { false }
        #expect(otherCallbacks == 0, "no callback runs once the CurlMulti is gone")

        // The loop still works: a timer fires and a new client on the same loop completes a GET.
        var timerFired = false
        let timer = Timer(loop: loop) { timerFired = true }
        timer.schedule(after: .milliseconds(20))
        let log = TransferLog(try multi.start(HTTPRequest(url: server.url("/hello"), timeout: .seconds(5))),
                              clock: loop.clock)
        #expect(loop.run(until: .seconds(5)) { timerFired && log.isDone })
        #expect(log.completions == [HTTPResult(status: 200, error: nil)])
        #expect(log.bodyText == TestHTTPServer.helloBody)
    }

    @Test func freeingTheMultiWithTransfersRunningIsSilentAndSafe() throws {
        let loop = try EventLoop()
        var doomed: CurlMulti? = try CurlMulti(loop: loop)
        var callbacks = 0
        var kept: [HTTPTransfer] = []
        for path in ["/stall", "/slow_headers", "/chunked?n=10&delay_ms=50", "/hello"] {
            let transfer = try #require(doomed).start(HTTPRequest(url: server.url(path)))
            transfer.onComplete = { _ in callbacks += 1 }
            kept.append(transfer)
        }
        loop.run(until: .milliseconds(120)) { false }
        let beforeFree = callbacks
        doomed = nil
        // cancel() on a transfer that outlived its CurlMulti is a no-op.
        for transfer in kept { transfer.cancel() }
        loop.run(until: .milliseconds(200)) { false }
        #expect(callbacks == beforeFree)
    }

    @Test func headerInjectionIsRejectedWithoutEchoingTheValue() throws {
        let loop = try EventLoop()
        let multi = try CurlMulti(loop: loop)
        let secret = "sk-very-secret\r\nX-Evil: 1"
        #expect(throws: HTTPError.self) {
            _ = try multi.start(HTTPRequest(url: self.server.url("/hello"), headers: [("Authorization", secret)]))
        }
        do {
            _ = try multi.start(HTTPRequest(url: server.url("/hello"), headers: [("Authorization", secret)]))
        } catch {
            #expect(!error.description.contains("sk-very-secret"))
            #expect(error == .invalidRequest("value of header Authorization contains control characters"))
        }
        #expect(multi.activeTransfers == 0)
    }
}
