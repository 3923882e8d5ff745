import ClawChannel
import ClawClient
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// One side of the load generator: sends echo requests, reports each matching reply.
///
/// The last payload byte is a tag that changes every measurement, so a late reply from an
/// earlier measurement is never counted in the next one. Both servers keep the end of the
/// payload intact (the daemon's diagnostic echo returns it unchanged).
protocol EchoClient: AnyObject {
    var payload: [UInt8] { get set }
    /// Called once per reply that carries the current payload's tag.
    var onReply: () -> Void { get set }
    /// Sends `count` copies of `payload` with one `sendmmsg` per 64.
    func send(count: Int)
}

extension EchoClient {
    /// Sets a payload of `size` bytes whose last byte is `tag`.
    func setPayload(size: Int, tag: UInt8) {
        var p = [UInt8](repeating: 0x61, count: size)
        p[size - 1] = tag
        payload = p
    }
}

/// Raw datagrams to the plain echo server.
final class PlainEchoClient: EchoClient {
    let socket: UDPSocket
    let server: SocketAddress
    var payload: [UInt8] = [0]
    var onReply: () -> Void = {}

    init(loop: EventLoop, server: SocketAddress) throws(ReactorError) {
        self.server = server
        socket = try UDPSocket(loop: loop, bindTo: .loopback(server.family))
        socket.setBufferSizes(receive: 4 << 20, send: 4 << 20)
        socket.onDatagram = { [unowned self] bytes, from in
            if from == self.server, bytes.count == self.payload.count, bytes.last == self.payload.last { self.onReply() }
        }
    }

    func send(count: Int) {
        socket.sendBatch(Array(repeating: (bytes: payload, to: server), count: count))
    }
}

/// A paired device with an established session to the daemon. Requests go through the real
/// `ClientChannel` (sealed with its counter); replies are opened and authenticated by it before
/// they count.
final class ClawChatEchoClient: EchoClient {
    let session: ClientSession
    /// Sent as the daemon's diagnostic echo (PROTOCOL.md 10.1): the probe header replaces the
    /// payload's first bytes, so the datagram keeps the size being measured.
    var payload: [UInt8] = [0] {
        didSet { wire = MessageConnection.echoProbe(Array(payload.dropFirst(MessageConnection.headerSize))) }
    }
    private var wire: [UInt8] = MessageConnection.echoProbe([])
    var onReply: () -> Void = {}

    /// Pairs with the daemon using its security file, then connects as the new device.
    init(loop: EventLoop, securityFile: [UInt8], bootstrapKey: BootstrapKey, identityPath: String) throws(BenchError) {
        let identity: ClientIdentity
        do {
            identity = try Pairing.run(fileBytes: securityFile, bootstrapKey: bootstrapKey, deviceName: "bench",
                                       identityPath: identityPath, loop: loop, timeout: .seconds(10))
        } catch { throw BenchError("pairing with the daemon failed: \(error)") }
        do {
            session = try ClientSession(loop: loop, credentials: identity.credentials, servers: identity.servers)
        } catch { throw BenchError("cannot open the client session: \(error)") }
        var up = false
        session.onEvent = { if case .established = $0 { up = true } }
        session.start()
        guard loop.run(until: .seconds(10), condition: { up }) else {
            throw BenchError("no session with the daemon at \(session.server) within 10 s")
        }
        session.onEvent = { _ in }
        // From here the benchmark drives the channel itself, to batch its sends. The session's
        // own timer still sends keepalives between measurements.
        session.socket.onDatagram = { [unowned self] bytes, from in
            guard from == self.session.server else { return }
            self.receive(bytes)
        }
    }

    private func receive(_ bytes: UnsafeRawBufferPointer) {
        for action in session.channel.receive(bytes, now: session.loop.clock.now) {
            switch action {
            case .deliver(let data):
                if data.last == payload.last { onReply() }
            case .send(let packet):
                session.socket.send(packet, to: session.server)
            default:
                break
            }
        }
    }

    func send(count: Int) {
        let now = session.loop.clock.now
        var batch: [(bytes: [UInt8], to: SocketAddress)] = []
        batch.reserveCapacity(count)
        for _ in 0..<count {
            for case .send(let packet) in session.channel.send(wire, now: now) { batch.append((packet, session.server)) }
        }
        session.socket.sendBatch(batch)
    }
}

/// What one timed measurement saw.
struct EchoSample {
    var repliesPerSecond: Double
    /// CPU time of the server process over wall time (1.0 = one core saturated).
    var serverCPU: Double
    /// The same for this process, the load generator.
    var clientCPU: Double
    /// Requests of this measurement never answered (loopback drops them only under overload).
    var lost: Int

    /// Server CPU time per reply, in µs: what one echo costs the server, whichever side limits
    /// the rate. (On loopback the sender's CPU also runs the receiver's network stack.)
    var serverMicrosPerReply: Double { serverCPU / repliesPerSecond * 1e6 }
}

/// Keeps `window` requests in flight: every reply is replaced by a new request. Replacements are
/// sent from a zero-delay timer, i.e. once per loop pass after the receive batch is handled,
/// so they go out in `sendmmsg` batches (and never from inside a receive callback, where
/// `UDPSocket.sendBatch` would reuse the buffers being read).
final class WindowedLoad {
    private let loop: EventLoop
    private let client: EchoClient
    private let window: Int
    private var running = false
    private var inFlight = 0
    private var owed = 0
    private var sent = 0
    private var replies = 0
    private var repliesAtLastCheck = 0
    private var tag: UInt8 = 0
    private var refill: Timer!
    private var watchdog: Timer!
    private let interruption: Interruption

    init(loop: EventLoop, client: EchoClient, window: Int, interruption: Interruption) {
        self.loop = loop
        self.client = client
        self.window = window
        self.interruption = interruption
        refill = Timer(loop: loop) { [unowned self] in self.sendOwed() }
        watchdog = Timer(loop: loop) { [unowned self] in self.checkProgress() }
        client.onReply = { [unowned self] in self.replyArrived() }
    }

    /// Warms up, then counts replies for `duration`; drains what is still in flight afterwards.
    func measure(payloadSize: Int, warmup: Duration, duration: Duration, server: ChildProcess) -> EchoSample {
        tag = tag &+ 1
        client.setPayload(size: payloadSize, tag: tag)
        running = true
        sent = 0
        replies = 0
        repliesAtLastCheck = 0
        inFlight = 0
        owed = window
        sendOwed()
        watchdog.schedulePeriodic(every: .milliseconds(100))
        loop.run(until: warmup) { self.interruption.requested }

        let t0 = loop.clock.now, r0 = replies, c0 = CPUUsage.now(), s0 = server.cpuSeconds
        loop.run(until: duration) { self.interruption.requested }
        let t1 = loop.clock.now, r1 = replies, c1 = CPUUsage.now(), s1 = server.cpuSeconds

        running = false
        watchdog.cancel()
        refill.cancel()
        loop.run(until: .milliseconds(500)) { self.inFlight <= 0 }
        let wall = (t1 - t0).seconds
        let serverCPU = s0.flatMap { a in s1.map { ($0 - a) / wall } } ?? .nan
        return EchoSample(repliesPerSecond: Double(r1 - r0) / wall, serverCPU: serverCPU,
                          clientCPU: (c1 - c0).total / wall, lost: sent - replies)
    }

    private func replyArrived() {
        replies += 1
        inFlight -= 1
        guard running else { return }
        owed += 1
        if !refill.isPending { refill.schedule(after: .zero) }
    }

    private func sendOwed() {
        guard running, owed > 0 else { return }
        let n = owed
        owed = 0
        inFlight += n
        sent += n
        client.send(count: n)
    }

    /// A whole window lost (a burst dropped somewhere) would stall the loop forever: after
    /// 100 ms without a reply, write the window off and send a fresh one.
    private func checkProgress() {
        guard running else { return }
        if replies == repliesAtLastCheck {
            inFlight = 0
            owed = window
            sendOwed()
        }
        repliesAtLastCheck = replies
    }
}

/// SIGINT or SIGTERM while the load runs ends the measurement early, so that the caller can
/// throw, and its cleanup (children killed, temporary directory removed) still happens.
final class Interruption {
    private(set) var requested = false
    private var signals: [SignalEvent] = []

    init(loop: EventLoop) throws(ReactorError) {
        signals = try [SIGINT, SIGTERM].map { (signal) throws(ReactorError) in
            try SignalEvent(loop: loop, signal: signal) { [unowned self] in self.requested = true }
        }
    }
}
