import ClawReactor

/// The two directions through the relay, each with its own impairment model and counters.
public enum RelayDirection: String, Sendable, CaseIterable {
    /// From a client, into the relay's listening socket, out of that client's upstream socket.
    case toServer = "to-server"
    /// From the server, into a client's upstream socket, out of the listening socket.
    case toClient = "to-client"
}

/// Everything a `UDPRelay` needs to start.
public struct RelayConfig: Sendable {
    /// Where clients send (port 0 picks a free port; read `UDPRelay.listenAddress`).
    public var listen: SocketAddress
    /// The server every client is relayed to.
    public var upstream: SocketAddress
    public var toServer: ImpairmentConfig
    public var toClient: ImpairmentConfig
    /// Seeds both directions' models (the to-client one with a value derived from it), so a run
    /// with the same seed and the same traffic makes the same decisions.
    public var seed: UInt64
    /// Replace every client's upstream socket this often (nil: never), like a NAT rebinding.
    public var remapEvery: Duration?
    /// Bounds on the delay queue of both directions together; beyond them datagrams are dropped
    /// and counted as `queueFull`.
    public var maxQueuedDatagrams: Int
    public var maxQueuedBytes: Int
    /// Bound on distinct client addresses (each costs a socket); datagrams from further clients
    /// are dropped and counted as `unrouted`.
    public var maxClients: Int

    public init(listen: SocketAddress, upstream: SocketAddress,
                toServer: ImpairmentConfig = .none, toClient: ImpairmentConfig = .none,
                seed: UInt64 = 0, remapEvery: Duration? = nil,
                maxQueuedDatagrams: Int = 100_000, maxQueuedBytes: Int = 256 << 20, maxClients: Int = 1024) {
        self.listen = listen
        self.upstream = upstream
        self.toServer = toServer
        self.toClient = toClient
        self.seed = seed
        self.remapEvery = remapEvery
        self.maxQueuedDatagrams = maxQueuedDatagrams
        self.maxQueuedBytes = maxQueuedBytes
        self.maxClients = maxClients
    }

    /// The same impairment both ways.
    public init(listen: SocketAddress, upstream: SocketAddress, bothWays impairment: ImpairmentConfig,
                seed: UInt64 = 0, remapEvery: Duration? = nil) {
        self.init(listen: listen, upstream: upstream, toServer: impairment, toClient: impairment,
                  seed: seed, remapEvery: remapEvery)
    }
}

/// What happened to the datagrams of one direction. Drops after the model has decided count
/// copies, so the books balance as `received + duplicated == forwarded + dropped + (copies still
/// queued)`.
public struct RelayCounters: Sendable, Equatable, CustomStringConvertible {
    /// Datagrams that entered this direction.
    public var received = 0
    /// Copies handed to the kernel (duplicates count twice).
    public var forwarded = 0
    /// Dropped by the loss model.
    public var lost = 0
    /// Dropped by the bandwidth model's full buffer.
    public var overBacklog = 0
    /// Dropped because the delay queue hit its cap.
    public var queueFull = 0
    /// Dropped while the relay was a blackhole (on arrival or when due).
    public var silenced = 0
    /// The kernel refused to send the copy (buffer full, unreachable).
    public var sendFailed = 0
    /// From a new client when no upstream socket could be opened for it (cap or error).
    public var unrouted = 0
    /// Datagrams sent twice.
    public var duplicated = 0
    /// Datagrams held back to be overtaken.
    public var reordered = 0

    public init() {}

    /// Datagrams and copies that will never arrive, whatever the reason.
    public var dropped: Int { lost + overBacklog + queueFull + silenced + sendFailed + unrouted }

    public var description: String {
        "received \(received), forwarded \(forwarded), dropped \(dropped) (lost \(lost), over backlog \(overBacklog), "
            + "queue full \(queueFull), silenced \(silenced), send failed \(sendFailed), unrouted \(unrouted)), "
            + "duplicated \(duplicated), reordered \(reordered)"
    }
}
