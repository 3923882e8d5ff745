import ClawReactor
import ClawRelay
@testable import ClawTransport

/// Two transport connections joined by a simulated network on a fake clock. Each direction runs
/// the impairment relay's own model (`ClawRelay.Impairment`: seeded loss, delay with jitter,
/// duplication, reordering, a bottleneck with a tail-drop buffer), so a run here is what the same
/// settings do through `clawchat-relay`, only in simulated time and reproducible.
final class SimulatedPair {
    var now = Instant(nanoseconds: 1_000_000_000)
    let client: TransportConnection
    let server: TransportConnection
    private var toServer: Impairment
    private var toClient: Impairment
    /// While true, every datagram vanishes (a cut cable).
    var silent = false
    private var queue = TimedHeap()
    var clientEvents: [TransportEvent] = []
    var serverEvents: [TransportEvent] = []
    var datagrams = 0

    init(impairment: ImpairmentConfig = ImpairmentConfig(delay: .milliseconds(10)), seed: UInt64 = 1,
         config: TransportConfig = TransportConfig()) {
        toServer = Impairment(impairment, seed: seed)
        toClient = Impairment(impairment, seed: seed &+ 0x5555)
        client = TransportConnection(isClient: true, config: config, now: now)
        server = TransportConnection(isClient: false, config: config, now: now)
    }

    var lossStats: (toServer: ImpairmentStats, toClient: ImpairmentStats) { (toServer.stats, toClient.stats) }

    private func transmit(_ packets: [[UInt8]], toServer direction: Bool) {
        for p in packets {
            datagrams += 1
            if silent { continue }
            let times = direction ? toServer.decide(now: now, size: p.count) : toClient.decide(now: now, size: p.count)
            for t in times { queue.push(at: t, toServer: direction, bytes: p) }
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
        if let d = queue.earliest { next = min(next, d) }
        if let t = client.nextWakeup { next = min(next, t) }
        if let t = server.nextWakeup { next = min(next, t) }
        now = max(now, next)
        while let p = queue.popDue(now) {
            if p.toServer { server.receive(p.bytes, now: now) } else { client.receive(p.bytes, now: now) }
        }
        if let t = client.nextWakeup, t <= now { client.tick(now: now) }
        if let t = server.nextWakeup, t <= now { server.tick(now: now) }
        flush()
    }

    /// Runs until `done` or `maxTime` of simulated time passes; returns whether `done` held.
    @discardableResult
    func run(for maxTime: Duration, maxSteps: Int = 50_000_000, until done: () -> Bool) -> Bool {
        let end = now + maxTime
        var steps = 0
        while !done() && now < end && steps < maxSteps {
            step(limit: end)
            steps += 1
        }
        return done()
    }
}

/// Datagrams in flight, earliest first (a binary min-heap; equal instants keep their order).
struct TimedHeap {
    struct Entry { let at: Instant; let seq: Int; let toServer: Bool; let bytes: [UInt8] }
    private var heap: [Entry] = []
    private var seq = 0
    var earliest: Instant? { heap.first?.at }
    var count: Int { heap.count }

    private static func before(_ a: Entry, _ b: Entry) -> Bool { a.at != b.at ? a.at < b.at : a.seq < b.seq }

    mutating func push(at: Instant, toServer: Bool, bytes: [UInt8]) {
        heap.append(Entry(at: at, seq: seq, toServer: toServer, bytes: bytes))
        seq += 1
        var c = heap.count - 1
        while c > 0, Self.before(heap[c], heap[(c - 1) / 2]) {
            heap.swapAt(c, (c - 1) / 2)
            c = (c - 1) / 2
        }
    }

    mutating func popDue(_ now: Instant) -> Entry? {
        guard let top = heap.first, top.at <= now else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return top }
        heap[0] = last
        var p = 0
        while true {
            let l = 2 * p + 1, r = l + 1
            var m = p
            if l < heap.count, Self.before(heap[l], heap[m]) { m = l }
            if r < heap.count, Self.before(heap[r], heap[m]) { m = r }
            if m == p { break }
            heap.swapAt(p, m)
            p = m
        }
        return top
    }
}
