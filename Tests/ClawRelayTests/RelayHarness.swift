import ClawReactor
@testable import ClawRelay

/// A loopback rig: an echo server, a relay in front of it, and a client that sends numbered
/// datagrams (sequence number and send time in the first 16 bytes) and records the replies.
final class RelayHarness {
    struct Arrival {
        let seq: UInt64
        let from: SocketAddress
        let bytes: [UInt8]
    }

    struct Reply {
        let seq: UInt64
        let from: SocketAddress
        let roundTrip: Duration
        let bytes: [UInt8]
    }

    let loop: EventLoop
    // Implicitly unwrapped so `deinit` can release them before the loop they are registered on.
    private(set) var server: UDPSocket!
    private(set) var relay: UDPRelay!
    private(set) var client: UDPSocket!
    private var pacer: Timer!

    /// Whether the server answers what it receives.
    var echo = true
    private(set) var atServer: [Arrival] = []
    private(set) var replies: [Reply] = []
    private(set) var sent: [UInt64: [UInt8]] = [:]

    init(toServer: ImpairmentConfig = .none, toClient: ImpairmentConfig = .none, seed: UInt64 = 1,
         adjust: (inout RelayConfig) -> Void = { _ in }) throws {
        loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        var config = RelayConfig(listen: .loopback(), upstream: server.localAddress,
                                 toServer: toServer, toClient: toClient, seed: seed)
        adjust(&config)
        relay = try UDPRelay(loop: loop, config: config)
        client = try UDPSocket(loop: loop, bindTo: .loopback())
        self.server = server
        for socket in [server, client!] { socket.setBufferSizes(receive: 4 << 20, send: 4 << 20) }
        server.onDatagram = { [unowned self] bytes, from in
            atServer.append(Arrival(seq: Self.sequence(bytes), from: from, bytes: Array(bytes)))
            if echo { self.server.send(bytes, to: from) }
        }
        client.onDatagram = { [unowned self] bytes, from in
            let sentAt = Instant(nanoseconds: bytes.loadUnaligned(fromByteOffset: 8, as: Int64.self))
            replies.append(Reply(seq: Self.sequence(bytes), from: from, roundTrip: loop.clock.now - sentAt,
                                 bytes: Array(bytes)))
        }
    }

    deinit {
        pacer = nil
        client = nil
        relay = nil
        server = nil
    }

    static func sequence(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        bytes.count >= 8 ? bytes.loadUnaligned(as: UInt64.self) : .max
    }

    /// Sends datagram `seq` of `size` bytes (at least 16) from `socket` (default: the client).
    func send(_ seq: UInt64, size: Int = 64, from socket: UDPSocket? = nil) {
        var bytes = [UInt8](repeating: 0, count: max(size, 16))
        withUnsafeBytes(of: seq.littleEndian) { bytes.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: loop.clock.now.nanoseconds.littleEndian) { bytes.replaceSubrange(8..<16, with: $0) }
        for i in 16..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: seq &* 31 &+ UInt64(i)) }
        sent[seq] = bytes
        (socket ?? client).send(bytes, to: relay.listenAddress)
    }

    /// Sends datagrams 0..<count, `perTick` every `interval`, so no socket buffer overflows;
    /// returns once all are sent (or after 20 s).
    func sendPaced(count: Int, perTick: Int = 20, every interval: Duration = .milliseconds(1),
                   size: @escaping (UInt64) -> Int = { _ in 64 }) {
        var next: UInt64 = 0
        pacer = Timer(loop: loop) { [unowned self] in
            for _ in 0..<perTick where next < UInt64(count) {
                send(next, size: size(next))
                next += 1
            }
        }
        pacer.schedulePeriodic(every: interval)
        loop.run(until: .seconds(20)) { next >= UInt64(count) }
        pacer.cancel()
    }

    /// Runs the loop until `condition` holds or `deadline` passes.
    @discardableResult
    func run(until deadline: Duration = .seconds(5), _ condition: () -> Bool) -> Bool {
        loop.run(until: deadline, condition: condition)
    }

    /// Runs the loop for `duration`, for tests that expect nothing more to happen.
    func settle(for duration: Duration) {
        loop.run(until: duration) { false }
    }

    /// Runs until the relay's queue is empty and nothing has arrived anywhere for `quiet`.
    func drain(quiet: Duration = .milliseconds(60), deadline: Duration = .seconds(10)) {
        let end = loop.clock.now + deadline
        var before = (-1, -1)
        while loop.clock.now < end, relay.queuedDatagrams > 0 || before != (atServer.count, replies.count) {
            before = (atServer.count, replies.count)
            settle(for: quiet)
        }
    }
}
