// A userspace stand-in for a bad network between clients and one server, needing no root: clients
// send to the relay's listening socket; for each client address the relay opens its own upstream
// socket towards the server, as a NAT would, so the server sees one source port per client and
// its replies find their way back. Each direction passes through its own `Impairment`; datagrams
// then wait in one delay queue served by one timer armed for the earliest.
//
// Ownership follows the reactor's rules: the relay owns its sockets, timers and flows, every
// handler captures it `unowned`, and the loop must outlive it. Dropping the relay closes
// everything; datagrams still queued are discarded.
import ClawReactor

/// One client as the relay sees it: its address, and the socket that speaks for it upstream.
final class Flow {
    let client: SocketAddress
    var upstream: UDPSocket

    init(client: SocketAddress, upstream: UDPSocket) {
        self.client = client
        self.upstream = upstream
    }
}

/// A UDP relay that impairs traffic between clients and one upstream server.
public final class UDPRelay {
    /// Where clients send.
    public var listenAddress: SocketAddress { listener.localAddress }
    /// The server.
    public let upstreamAddress: SocketAddress
    /// While true, everything is dropped in both directions, including datagrams already queued
    /// when they fall due: a cut cable, for testing dead-peer detection.
    public var blackhole = false
    /// How many times `remapPorts()` has replaced the upstream sockets.
    public private(set) var remaps = 0
    /// Datagrams waiting in the delay queue (both directions).
    public var queuedDatagrams: Int { queue.count }

    private unowned let loop: EventLoop
    private let config: RelayConfig
    private let log: Logger?
    private let listener: UDPSocket
    private var flows: [SocketAddress: Flow] = [:]
    private var impairments: [RelayDirection: Impairment]
    private var tallies: [RelayDirection: RelayCounters] = [.toServer: RelayCounters(), .toClient: RelayCounters()]
    private var queue = DeliveryQueue<(direction: RelayDirection, flow: Flow)>()
    private lazy var deliveryTimer = Timer(loop: loop) { [unowned self] in deliverDue() }
    /// The instant `deliveryTimer` is armed for, so that a datagram due later does not re-arm it.
    private var armedFor: Instant?
    private var remapTimer: Timer?

    /// Kernel buffers asked for on every socket: bursts wait here while the loop is busy.
    static let socketBufferBytes = 4 << 20

    public init(loop: EventLoop, config: RelayConfig, log: Logger? = nil) throws(ReactorError) {
        self.loop = loop
        self.config = config
        self.log = log
        upstreamAddress = config.upstream
        var seeds = SplitMix64(seed: config.seed)
        impairments = [.toServer: Impairment(config.toServer, seed: config.seed),
                       .toClient: Impairment(config.toClient, seed: seeds.next())]
        listener = try UDPSocket(loop: loop, bindTo: config.listen)
        listener.setBufferSizes(receive: Self.socketBufferBytes, send: Self.socketBufferBytes)
        listener.onDatagram = { [unowned self] bytes, from in fromClient(bytes, from: from) }
        if let every = config.remapEvery {
            let timer = Timer(loop: loop) { [unowned self] in remapExpired() }
            timer.schedulePeriodic(every: every)
            remapTimer = timer
        }
    }

    /// The counters of one direction so far.
    public func counters(_ direction: RelayDirection) -> RelayCounters {
        var c = tallies[direction]!
        let model = impairments[direction]!.stats
        c.lost = model.lost
        c.overBacklog = model.overBacklog
        c.duplicated = model.duplicated
        c.reordered = model.reordered
        return c
    }

    /// The impairment of one direction; changing it applies to datagrams arriving from now on.
    public func impairment(_ direction: RelayDirection) -> ImpairmentConfig {
        impairments[direction]!.config
    }

    public func setImpairment(_ config: ImpairmentConfig, for direction: RelayDirection) {
        impairments[direction]!.config = config
    }

    /// The client addresses seen so far.
    public var clients: [SocketAddress] { Array(flows.keys) }

    /// The source address the server sees for `client`'s traffic, if the client has sent any.
    public func upstreamSource(for client: SocketAddress) -> SocketAddress? {
        flows[client]?.upstream.localAddress
    }

    /// Gives every client a fresh upstream socket (a new source port), as a NAT that forgot its
    /// mappings would. The old sockets close, so server datagrams still addressed to them are
    /// lost; queued client datagrams leave from the new ones. All or nothing: if a socket cannot
    /// be opened, no client is remapped.
    public func remapPorts() throws(ReactorError) {
        var fresh: [(Flow, UDPSocket)] = []
        for flow in flows.values {
            fresh.append((flow, try openUpstream()))
        }
        for (flow, socket) in fresh {
            flow.upstream = socket
            attach(socket, to: flow)
        }
        remaps += 1
    }

    // MARK: - Arrival

    private func fromClient(_ bytes: UnsafeRawBufferPointer, from client: SocketAddress) {
        tallies[.toServer]!.received += 1
        if blackhole {
            tallies[.toServer]!.silenced += 1
            return
        }
        guard let flow = flows[client] ?? newFlow(for: client) else {
            tallies[.toServer]!.unrouted += 1
            return
        }
        schedule(bytes, direction: .toServer, flow: flow)
    }

    private func fromServer(_ bytes: UnsafeRawBufferPointer, flow: Flow) {
        tallies[.toClient]!.received += 1
        if blackhole {
            tallies[.toClient]!.silenced += 1
            return
        }
        schedule(bytes, direction: .toClient, flow: flow)
    }

    private func newFlow(for client: SocketAddress) -> Flow? {
        guard flows.count < config.maxClients else { return nil }
        let socket: UDPSocket
        do { socket = try openUpstream() } catch {
            log?.warning("no upstream socket for client \(client): \(error)")
            return nil
        }
        let flow = Flow(client: client, upstream: socket)
        attach(socket, to: flow)
        flows[client] = flow
        log?.info("client \(client) relayed from \(socket.localAddress)")
        return flow
    }

    /// A socket on an ephemeral port, connected to the server so the kernel lets only the
    /// server's replies in (a port-restricted NAT mapping).
    private func openUpstream() throws(ReactorError) -> UDPSocket {
        let family = config.upstream.family
        let bindTo: SocketAddress = config.upstream.isLoopback ? .loopback(family) : .any(family)
        let socket = try UDPSocket(loop: loop, bindTo: bindTo)
        socket.setBufferSizes(receive: Self.socketBufferBytes, send: Self.socketBufferBytes)
        try socket.connect(to: config.upstream)
        return socket
    }

    private func attach(_ socket: UDPSocket, to flow: Flow) {
        socket.onDatagram = { [unowned self, unowned flow] bytes, _ in fromServer(bytes, flow: flow) }
    }

    // MARK: - Delay queue

    private func schedule(_ bytes: UnsafeRawBufferPointer, direction: RelayDirection, flow: Flow) {
        let now = loop.clock.now
        let instants = impairments[direction]!.decide(now: now, size: bytes.count)
        guard !instants.isEmpty else { return }
        let copy = Array(bytes)
        for at in instants {
            // Due now and nothing queued is due before it: send at once, skipping a loop pass.
            if at <= now, queue.earliest.map({ $0 > now }) ?? true {
                deliver(copy, direction: direction, flow: flow)
                continue
            }
            guard queue.count < config.maxQueuedDatagrams, queue.totalBytes + copy.count <= config.maxQueuedBytes else {
                tallies[direction]!.queueFull += 1
                continue
            }
            queue.insert(at: at, bytes: copy, payload: (direction, flow))
        }
        armDeliveryTimer(now: now)
    }

    /// Runs when the earliest queued datagram falls due.
    private func deliverDue() {
        armedFor = nil
        let now = loop.clock.now
        while let entry = queue.popDue(now: now) {
            deliver(entry.bytes, direction: entry.payload.direction, flow: entry.payload.flow)
        }
        armDeliveryTimer(now: now)
    }

    private func armDeliveryTimer(now: Instant) {
        guard let earliest = queue.earliest else {
            if armedFor != nil { deliveryTimer.cancel() }
            armedFor = nil
            return
        }
        if armedFor == earliest { return }
        deliveryTimer.schedule(after: max(earliest - now, .zero))
        armedFor = earliest
    }

    private func deliver(_ bytes: [UInt8], direction: RelayDirection, flow: Flow) {
        if blackhole {
            tallies[direction]!.silenced += 1
            return
        }
        let result: SendResult
        switch direction {
        case .toServer: result = flow.upstream.send(bytes, to: nil)
        case .toClient: result = listener.send(bytes, to: flow.client)
        }
        if result == .sent {
            tallies[direction]!.forwarded += 1
        } else {
            tallies[direction]!.sendFailed += 1
        }
    }

    // MARK: - Timers

    /// Runs every `remapEvery`.
    private func remapExpired() {
        do {
            try remapPorts()
            log?.info("remapped \(flows.count) client(s) to new upstream ports")
        } catch {
            log?.warning("port remap failed, keeping the old ports: \(error)")
        }
    }
}
