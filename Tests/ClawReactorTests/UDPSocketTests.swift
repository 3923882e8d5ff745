import Glibc
import Testing
@testable import ClawReactor

@Suite(.serialized) struct UDPSocketTests {
    @Test(arguments: [SocketAddress.Family.v4, .v6])
    func datagramWakesTheLoopAndCarriesItsSource(family: SocketAddress.Family) throws {
        let loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback(family))
        let client = try UDPSocket(loop: loop, bindTo: .loopback(family))
        #expect(server.localAddress.port != 0)
        var got: [(bytes: [UInt8], from: SocketAddress)] = []
        server.onDatagram = { bytes, from in got.append((Array(bytes), from)) }
        #expect(client.send([1, 2, 3], to: server.localAddress) == .sent)
        #expect(loop.run(until: .seconds(2)) { !got.isEmpty })
        #expect(got.first?.bytes == [1, 2, 3])
        #expect(got.first?.from == client.localAddress)
    }

    @Test func burstOfTenThousandArrivesCompletelyInBatches() throws {
        let loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        server.setBufferSizes(receive: 8 << 20, send: 8 << 20)
        let client = try UDPSocket(loop: loop, bindTo: .loopback())
        client.setBufferSizes(receive: 1 << 20, send: 8 << 20)
        var seen = Set<UInt32>()
        server.onDatagram = { bytes, _ in seen.insert(bytes.loadUnaligned(as: UInt32.self)) }
        let total = 10_000
        var next = 0
        // Send in slices of 500 from a timer so the receiver's buffer never overflows.
        let sender = Timer(loop: loop) {
            let end = min(next + 500, total)
            let batch = (next..<end).map { i in
                (bytes: withUnsafeBytes(of: UInt32(i)) { Array($0) } + [UInt8](repeating: 7, count: 60),
                 to: server.localAddress)
            }
            #expect(client.sendBatch(batch) == batch.count)
            next = end
        }
        sender.schedulePeriodic(every: .milliseconds(2))
        let ok = loop.run(until: .seconds(10)) { seen.count == total }
        sender.cancel()
        #expect(ok)
        #expect(seen.count == total)
        #expect(server.stats.received == total)
    }

    @Test func sendingToAClosedPortDoesNotBreakTheLoop() throws {
        let loop = try EventLoop()
        // A port that was just free: bind, note it, close.
        let closedPort = try UDPSocket(loop: loop, bindTo: .loopback()).localAddress
        let unconnected = try UDPSocket(loop: loop, bindTo: .loopback())
        let connected = try UDPSocket(loop: loop, bindTo: .loopback())
        try connected.connect(to: closedPort)
        var errors: [Int32] = []
        connected.onError = { errors.append($0) }
        for _ in 0..<5 {
            _ = unconnected.send([9], to: closedPort)
            _ = connected.send([9], to: nil)
        }
        // The loop must still deliver a real datagram afterwards.
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        var delivered = false
        server.onDatagram = { _, _ in delivered = true }
        let later = Timer(loop: loop) { unconnected.send([1], to: server.localAddress) }
        later.schedule(after: .milliseconds(50))
        #expect(loop.run(until: .seconds(2)) { delivered })
        // The connected socket heard about the ICMP port-unreachable as ECONNREFUSED.
        let sawRefused = errors.contains(ECONNREFUSED) || connected.stats.sendErrors > 0
        #expect(sawRefused)
    }

    @Test func oversizedDatagramIsDroppedAndCounted() throws {
        let loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        let client = try UDPSocket(loop: loop, bindTo: .loopback())
        var sizes: [Int] = []
        server.onDatagram = { b, _ in sizes.append(b.count) }
        client.send([UInt8](repeating: 0, count: UDPSocket.maxDatagramSize + 1), to: server.localAddress)
        client.send([UInt8](repeating: 0, count: 100), to: server.localAddress)
        #expect(loop.run(until: .seconds(2)) { !sizes.isEmpty })
        #expect(sizes == [100])
        #expect(server.stats.truncatedDropped == 1)
    }

    @Test func addressesParseAndPrint() throws {
        let a = try SocketAddress(parsing: "127.0.0.1:4242")
        #expect(a.family == .v4 && a.port == 4242 && a.description == "127.0.0.1:4242")
        let b = try SocketAddress(parsing: "[::1]:80")
        #expect(b.family == .v6 && b.isLoopback && b.description == "[::1]:80")
        let c = try SocketAddress(parsing: "2001:db8::1", port: 9)
        #expect(c.description == "[2001:db8::1]:9")
        #expect(SocketAddress.any().isUnspecified)
        #expect(throws: ReactorError.self) { try SocketAddress(parsing: "nonsense:1") }
        #expect(throws: ReactorError.self) { try SocketAddress(parsing: "1.2.3.4") }
    }
}

@Suite(.serialized) struct UDPSocketReentrancyTests {
    /// Replying with `sendBatch` from inside `onDatagram` must not disturb the batch being read.
    @Test func sendBatchInsideTheReceiveHandlerLeavesTheReceivedBatchIntact() throws {
        let loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        let client = try UDPSocket(loop: loop, bindTo: .loopback())
        server.setBufferSizes(receive: 8 << 20, send: 8 << 20)
        client.setBufferSizes(receive: 8 << 20, send: 8 << 20)
        var seen: [UInt8] = []
        var echoed = 0
        server.onDatagram = { [unowned server] bytes, from in
            seen.append(bytes[0])
            // Eight replies: with shared buffers they would overwrite slots not yet handed out.
            server.sendBatch((0..<8).map { _ in (bytes: [UInt8](repeating: 0xEE, count: 1000), to: from) })
        }
        client.onDatagram = { _, _ in echoed += 1 }
        // Queue many datagrams before the server reads, so they arrive in one recvmmsg batch.
        client.sendBatch((0..<50).map { (bytes: [UInt8($0)] + [UInt8](repeating: UInt8($0), count: 500), to: server.localAddress) })
        #expect(loop.run(until: .seconds(3)) { seen.count == 50 && echoed == 400 })
        #expect(seen == (0..<50).map { UInt8($0) })
    }
}
