import ClawReactor
@testable import ClawTransport

/// Two transport connections joined by a simulated lossy link on a fake clock: seeded loss,
/// delay with jitter, duplication and reordering, so every run is reproducible.
final class SimulatedPair {
    struct Impairment {
        var loss = 0.0, duplicate = 0.0, reorder = 0.0
        var delay: Duration = .milliseconds(10), jitter: Duration = .zero
        /// Bytes per second the link carries (nil = unlimited).
        var rate: Double? = nil
    }

    var now = Instant(nanoseconds: 1_000_000_000)
    let client: TransportConnection
    let server: TransportConnection
    var impairment: Impairment
    var silent = false
    private var rng: UInt64
    private var inFlight: [(at: Instant, toServer: Bool, bytes: [UInt8])] = []
    private var linkFree: [Bool: Instant] = [:]
    var clientEvents: [TransportEvent] = []
    var serverEvents: [TransportEvent] = []
    var datagrams = 0

    init(impairment: Impairment = Impairment(), seed: UInt64 = 1, config: TransportConfig = TransportConfig()) {
        self.impairment = impairment
        rng = seed
        client = TransportConnection(isClient: true, config: config, now: now)
        server = TransportConnection(isClient: false, config: config, now: now)
    }

    func random() -> Double {
        rng &+= 0x9E37_79B9_7F4A_7C15
        var z = rng
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }

    private func transmit(_ packets: [[UInt8]], toServer: Bool) {
        for p in packets {
            datagrams += 1
            if silent || random() < impairment.loss { continue }
            var departure = now
            if let rate = impairment.rate {
                departure = max(now, linkFree[toServer] ?? now)
                linkFree[toServer] = departure + .nanoseconds(Int64(Double(p.count) / rate * 1e9))
            }
            let jitter = impairment.jitter == .zero ? Duration.zero
                : .nanoseconds(Int64((random() * 2 - 1) * Double(impairment.jitter.nanoseconds)))
            var at = departure + impairment.delay + jitter
            if random() < impairment.reorder { at += impairment.delay }
            inFlight.append((at, toServer, p))
            if random() < impairment.duplicate { inFlight.append((at + .milliseconds(1), toServer, p)) }
        }
    }

    /// Lets both sides send what they can now.
    func flush() {
        transmit(client.poll(now: now), toServer: true)
        transmit(server.poll(now: now), toServer: false)
        clientEvents += client.takeEvents()
        serverEvents += server.takeEvents()
    }

    /// Advances to the next thing that happens (a delivery or a timer), bounded by `limit`.
    func step(limit: Instant) {
        flush()
        var next = limit
        if let d = inFlight.map(\.at).min() { next = min(next, d) }
        if let t = client.nextWakeup { next = min(next, t) }
        if let t = server.nextWakeup { next = min(next, t) }
        now = max(now, next)
        var due: [(at: Instant, toServer: Bool, bytes: [UInt8])] = []
        inFlight.removeAll { p in
            if p.at <= now { due.append(p); return true }
            return false
        }
        for p in due.sorted(by: { $0.at < $1.at }) {
            if p.toServer { server.receive(p.bytes, now: now) } else { client.receive(p.bytes, now: now) }
        }
        if let t = client.nextWakeup, t <= now { client.tick(now: now) }
        if let t = server.nextWakeup, t <= now { server.tick(now: now) }
        flush()
    }

    /// Runs until `done` or `maxTime` of simulated time passes; returns whether `done` held.
    @discardableResult
    func run(for maxTime: Duration, maxSteps: Int = 5_000_000, until done: () -> Bool) -> Bool {
        let end = now + maxTime
        var steps = 0
        while !done() && now < end && steps < maxSteps {
            step(limit: end)
            steps += 1
        }
        return done()
    }
}
