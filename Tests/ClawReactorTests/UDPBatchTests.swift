import Glibc
import Testing
@testable import ClawReactor

/// Datagram `index` of a test run: its index in the first two bytes, then a fill that differs
/// from its neighbours', so a datagram cut at the wrong place or delivered twice shows.
private func datagram(_ index: Int, size: Int) -> [UInt8] {
    precondition(size >= 2)
    return [UInt8(index >> 8), UInt8(index & 0xFF)] + [UInt8](repeating: UInt8(truncatingIfNeeded: index &* 37 &+ 1), count: size - 2)
}

/// Where `got` first differs from `expected` (nil when equal), short enough to read in a failure.
private func firstDifference(_ got: [[UInt8]], _ expected: [[UInt8]]) -> String? {
    for (i, (g, e)) in zip(got, expected).enumerated() where g != e {
        return "datagram \(i): \(g.count) bytes starting \(Array(g.prefix(4))), expected \(e.count) starting \(Array(e.prefix(4)))"
    }
    return got.count == expected.count ? nil : "\(got.count) datagrams, expected \(expected.count)"
}

/// A receiving socket that keeps every datagram it is handed.
private final class Collector {
    let socket: UDPSocket
    var received: [[UInt8]] = []

    init(loop: EventLoop, offload: UDPOffload = .all) throws {
        socket = try UDPSocket(loop: loop, bindTo: .loopback(), offload: offload)
        socket.setBufferSizes(receive: 8 << 20, send: 1 << 20)
        socket.onDatagram = { [unowned self] bytes, _ in self.received.append(Array(bytes)) }
    }
}

private func sender(_ loop: EventLoop, offload: UDPOffload = .all) throws -> UDPSocket {
    let s = try UDPSocket(loop: loop, bindTo: .loopback(), offload: offload)
    s.setBufferSizes(receive: 1 << 20, send: 8 << 20)
    return s
}

@Suite(.serialized) struct UDPBatchTests {
    /// Offloads of sender and receiver: GSO and GRO both on, each alone, both off.
    static let offloadPairs: [(UDPOffload, UDPOffload)] = [(.all, .all), (.all, []), ([], .all), ([], [])]

    @Test(arguments: offloadPairs)
    func aRunOfSameSizeDatagramsAndAShortTailArriveIntactAndInOrder(sending: UDPOffload, receiving: UDPOffload) throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop, offload: receiving)
        let tx = try sender(loop, offload: sending)
        let expected = (0..<40).map { datagram($0, size: 1200) } + [datagram(40, size: 300)]
        for d in expected { tx.enqueue(d, to: rx.socket.localAddress) }
        #expect(tx.queuedDatagrams == expected.count)
        tx.flush()
        #expect(tx.queuedDatagrams == 0)
        #expect(tx.stats.sent == expected.count)
        #expect(tx.stats.sendCalls == 1)
        // Granted GSO carries the run as segmented messages (64 KB at most: two of them here).
        if tx.offload.contains(.segmentation) {
            #expect(tx.stats.segmentedSends == 1 || tx.stats.segmentedSends == 2)
        } else {
            #expect(tx.stats.segmentedSends == 0)
        }
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= expected.count })
        #expect(firstDifference(rx.received, expected) == nil)
        #expect(rx.socket.stats.received == expected.count)
        #expect(rx.socket.stats.truncatedDropped == 0)
    }

    /// On loopback a GSO send reaches a GRO socket as one buffer; the socket must cut it at the
    /// segment size again, the short last datagram included.
    @Test func aCoalescedReceiveIsSplitAtTheSegmentSize() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        let expected = (0..<64).map { datagram($0, size: 1000) } + [datagram(64, size: 10)]
        for d in expected { tx.enqueue(d, to: rx.socket.localAddress) }
        tx.flush()
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= expected.count })
        #expect(firstDifference(rx.received, expected) == nil)
        if tx.offload.contains(.segmentation) && rx.socket.offload.contains(.receiveCoalescing) {
            #expect(rx.socket.stats.coalescedReceives >= 1)
            #expect(rx.socket.stats.coalescedReceives < expected.count)
        }
    }

    @Test(arguments: [UDPOffload.all, []])
    func mixedDestinationsAndSizesInOneFlushKeepEachDestinationsOrder(sending: UDPOffload) throws {
        let loop = try EventLoop()
        let a = try Collector(loop: loop), b = try Collector(loop: loop)
        let tx = try sender(loop, offload: sending)
        // Runs broken by the other destination, by a size change, by a short datagram, and a
        // longer one after a run (which must not join it).
        let plan: [(Collector, Int)] = [(a, 1200), (a, 1200), (a, 1200), (b, 1200), (b, 1200), (a, 500), (a, 1200),
                                        (a, 1200), (b, 100), (b, 1200), (a, 1200), (a, 1300), (b, 2), (b, 2), (a, 1200)]
        var expectA: [[UInt8]] = [], expectB: [[UInt8]] = []
        for (i, (to, size)) in plan.enumerated() {
            let d = datagram(i, size: size)
            if to === a { expectA.append(d) } else { expectB.append(d) }
            tx.enqueue(d, to: to.socket.localAddress)
        }
        tx.flush()
        #expect(tx.stats.sent == plan.count)
        #expect(tx.stats.sendCalls == 1)
        #expect(loop.run(until: .seconds(3)) { a.received.count >= expectA.count && b.received.count >= expectB.count })
        #expect(firstDifference(a.received, expectA) == nil)
        #expect(firstDifference(b.received, expectB) == nil)
    }

    /// The queue holds 64 datagrams; more flush by themselves, in order.
    @Test func aFullQueueFlushesByItselfAndKeepsOrder() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        let expected = (0..<300).map { datagram($0, size: 200 + $0 % 3) }
        for d in expected { tx.enqueue(d, to: rx.socket.localAddress) }
        #expect(tx.queuedDatagrams < 64)
        tx.flush()
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= expected.count })
        #expect(firstDifference(rx.received, expected) == nil)
    }

    @Test func anImmediateSendGoesAfterWhatIsQueued() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        for i in 0..<3 { tx.enqueue(datagram(i, size: 100), to: rx.socket.localAddress) }
        #expect(tx.send(datagram(3, size: 100), to: rx.socket.localAddress) == .sent)
        #expect(tx.queuedDatagrams == 0)
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= 4 })
        #expect(firstDifference(rx.received, (0..<4).map { datagram($0, size: 100) }) == nil)
    }

    /// What a timer handler queues leaves in the same loop pass: nothing waits for a later event.
    @Test func datagramsQueuedInATimerLeaveBeforeTheLoopWaitsAgain() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        var fired = false
        let timer = Timer(loop: loop) {
            for i in 0..<10 { tx.enqueue(datagram(i, size: 500), to: rx.socket.localAddress) }
            fired = true
        }
        timer.schedule(after: .milliseconds(1))
        #expect(loop.run(until: .seconds(3)) { fired })
        // The pass that ran the timer is over, and so must the queue be.
        #expect(tx.queuedDatagrams == 0)
        #expect(tx.stats.sent == 10)
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= 10 })
        #expect(firstDifference(rx.received, (0..<10).map { datagram($0, size: 500) }) == nil)
    }

    /// Answers queued in `onDatagram` leave when the receive batch is handed out, together, and
    /// before the loop waits again; `flush()` inside the handler waits for the batch too.
    @Test func answersQueuedWhileReceivingLeaveTogetherAtTheEndOfTheBatch() throws {
        let loop = try EventLoop()
        let server = try sender(loop)
        let client = try Collector(loop: loop)
        var requests = 0
        var queuedInHandler: [Int] = []
        server.onDatagram = { [unowned server] bytes, from in
            requests += 1
            server.enqueue(Array(bytes), to: from)
            server.flush()
            queuedInHandler.append(server.queuedDatagrams)
        }
        let expected = (0..<50).map { datagram($0, size: 700) }
        // All 50 are in the server's buffer before it reads: one or a few receive batches.
        for d in expected { client.socket.enqueue(d, to: server.localAddress) }
        client.socket.flush()
        #expect(loop.run(until: .seconds(3)) { requests >= expected.count })
        #expect(server.queuedDatagrams == 0)
        #expect(queuedInHandler.first == 1)
        #expect(server.stats.sent == expected.count)
        #expect(server.stats.sendCalls < expected.count / 4)
        #expect(loop.run(until: .seconds(3)) { client.received.count >= expected.count })
        #expect(firstDifference(client.received, expected) == nil)
    }

    /// The kernel refuses UDP_SEGMENT on a socket without UDP checksums (SO_NO_CHECK): the
    /// datagrams must still arrive, one by one, and the socket stops asking.
    @Test func aRefusedSegmentedSendFallsBackToSingleDatagramsForGood() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        guard tx.offload.contains(.segmentation) else { return }   // no GSO here: nothing to fall back from
        var on: Int32 = 1
        #expect(setsockopt(tx.fd, SOL_SOCKET, SO_NO_CHECK, &on, socklen_t(MemoryLayout<Int32>.size)) == 0)
        let first = (0..<20).map { datagram($0, size: 1000) }
        for d in first { tx.enqueue(d, to: rx.socket.localAddress) }
        tx.flush()
        #expect(!tx.offload.contains(.segmentation))
        #expect(tx.stats.sent == first.count)
        #expect(tx.stats.sendErrors == 0)
        #expect(tx.stats.segmentedSends == 0)
        let second = (20..<40).map { datagram($0, size: 1000) }
        for d in second { tx.enqueue(d, to: rx.socket.localAddress) }
        tx.flush()
        #expect(tx.stats.segmentedSends == 0)
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= 40 })
        #expect(firstDifference(rx.received, first + second) == nil)
    }

    /// With GRO the receive buffers are larger, but the datagram limit is the same.
    @Test func anOversizedDatagramIsStillDroppedWithCoalescingOn() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop)
        let tx = try sender(loop)
        tx.enqueue([UInt8](repeating: 1, count: UDPSocket.maxDatagramSize + 1), to: rx.socket.localAddress)
        tx.enqueue(datagram(0, size: 100), to: rx.socket.localAddress)
        tx.flush()
        #expect(loop.run(until: .seconds(3)) { !rx.received.isEmpty })
        #expect(firstDifference(rx.received, [datagram(0, size: 100)]) == nil)
        #expect(rx.socket.stats.truncatedDropped == 1)
    }

    /// Without GSO every queued datagram is its own message; still one call per flush.
    @Test func withoutSegmentationAFlushIsOneSendmmsg() throws {
        let loop = try EventLoop()
        let rx = try Collector(loop: loop, offload: [])
        let tx = try sender(loop, offload: [])
        #expect(tx.offload.isEmpty && rx.socket.offload.isEmpty)
        let expected = (0..<64).map { datagram($0, size: 1200) }
        for d in expected { tx.enqueue(d, to: rx.socket.localAddress) }
        tx.flush()
        #expect(tx.stats.sendCalls == 1 && tx.stats.segmentedSends == 0)
        #expect(loop.run(until: .seconds(3)) { rx.received.count >= expected.count })
        #expect(firstDifference(rx.received, expected) == nil)
        #expect(rx.socket.stats.coalescedReceives == 0)
    }
}
