import ClawCrypto
import Glibc
import ClawReactor
import ClawRelay
import Testing
@testable import ClawTransport

/// Messages of random sizes written on streams: each is `[index: 4 bytes][length: 4 bytes][body]`,
/// the body cut from a fixed random pool at a place that depends on the stream and index, and the
/// receiver checks every message's index (exactly once, in order) and SHA-256 (byte-identical).
struct MessageTraffic {
    static let pool: [UInt8] = {
        var rng = SplitMix64(seed: 99)
        return (0..<(512 << 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    }()

    static func message(stream: UInt64, index: Int, size: Int) -> [UInt8] {
        let start = (index &* 7919 &+ Int(stream) &* 104_729) % (pool.count - size)
        var m: [UInt8] = []
        m.reserveCapacity(size + 8)
        for v in [UInt32(index), UInt32(size)] { for s in [24, 16, 8, 0] { m.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
        m += pool[start..<start + size]
        return m
    }

    /// Per stream: hashes of the messages sent, in order.
    var expected: [UInt64: [[UInt8]]] = [:]
    var buffers: [UInt64: [UInt8]] = [:]
    var nextIndex: [UInt64: Int] = [:]
    var received = 0
    var failures: [String] = []

    mutating func absorb(_ events: [TransportEvent]) {
        for case .streamData(let id, let bytes) in events {
            var buf = buffers.removeValue(forKey: id) ?? []
            buf += bytes
            var consumed = 0
            while buf.count - consumed >= 8 {
                let h = buf[consumed..<consumed + 8].map { UInt32($0) }
                let index = Int(h[0] << 24 | h[1] << 16 | h[2] << 8 | h[3])
                let size = Int(h[4] << 24 | h[5] << 16 | h[6] << 8 | h[7])
                guard buf.count - consumed >= 8 + size else { break }
                let want = nextIndex[id, default: 0]
                if index != want { failures.append("stream \(id): message \(index) where \(want) was due") }
                let list = expected[id] ?? []
                if index < list.count {
                    var h = SHA256.Hasher()
                    buf.withUnsafeBytes { h.update(UnsafeRawBufferPointer(rebasing: $0[consumed..<consumed + 8 + size])) }
                    if h.finalize() != list[index] { failures.append("stream \(id): message \(index) differs") }
                } else {
                    failures.append("stream \(id): message \(index) was never sent")
                }
                nextIndex[id] = index + 1
                received += 1
                consumed += 8 + size
            }
            if consumed > 0 { buf.removeFirst(consumed) }
            buffers[id] = buf
        }
    }
}

/// Writes queued messages as fast as flow control and the send buffers allow, each stream's in
/// order.
final class Writer {
    /// Per stream: the sizes of its messages (built only when their turn comes, so the test does
    /// not hold hundreds of megabytes), the next one, and how much of the current one is written.
    private var queues: [UInt64: (sizes: [Int], next: Int, current: [UInt8], offset: Int)] = [:]

    func enqueue(size: Int, on id: UInt64) { queues[id, default: ([], 0, [], 0)].sizes.append(size) }

    func pump(_ c: TransportConnection) {
        for id in queues.keys {
            var q = queues[id]!
            while q.next < q.sizes.count {
                let room = c.writableBytes(id)
                guard room > 0 else { break }
                if q.offset == 0 && q.current.isEmpty { q.current = MessageTraffic.message(stream: id, index: q.next, size: q.sizes[q.next]) }
                let n = c.write(Array(q.current[q.offset..<min(q.current.count, q.offset + room)]), to: id)
                q.offset += n
                guard q.offset == q.current.count else { break }
                q.current = []
                q.next += 1
                q.offset = 0
            }
            queues[id] = q
        }
    }
}

/// Log-uniform sizes from 1 byte to 256 KB: mostly small messages, every scale represented.
struct SizeSource {
    var rng: SplitMix64
    mutating func next() -> Int {
        let u = Double(rng.next() >> 11) * 0x1p-53
        return max(1, min(256 << 10, Int(exp2(u * 18))))
    }
}

func exp2(_ x: Double) -> Double {
    // 2^x for x ≥ 0 without Foundation: integer part by shifts, fraction by a short series.
    let i = Int(x)
    let f = x - Double(i)
    let ln2 = 0.693_147_180_559_945_3
    var term = 1.0, sum = 1.0
    for k in 1...12 { term *= f * ln2 / Double(k); sum += term }
    return Double(1 << i) * sum
}

@Suite struct LossyLinkTests {
    /// The acceptance path: 5 % loss, 50 ms ± 20 ms one way, 1 % duplication, 1 %
    /// reordering, both directions; messages on 8 streams each way.
    @Test(arguments: [10_000])
    func messagesOnEightStreamsBothWaysArriveOnceInOrderThroughALossyLink(total: Int) {
        let imp = ImpairmentConfig(lossPercent: 5, delay: .milliseconds(50), jitter: .milliseconds(20),
                                   duplicatePercent: 1, reorderPercent: 1)
        let pair = SimulatedPair(impairment: imp, seed: 42)
        var sizes = SizeSource(rng: SplitMix64(seed: 7))
        let up = Writer(), down = Writer()
        var upTraffic = MessageTraffic(), downTraffic = MessageTraffic()
        var bytes = 0
        func enqueue(_ streams: [UInt64], _ w: Writer, _ t: inout MessageTraffic, count: Int) {
            for i in 0..<count {
                let id = streams[i % streams.count]
                let size = sizes.next()
                let m = MessageTraffic.message(stream: id, index: t.expected[id, default: []].count, size: size)
                bytes += m.count
                t.expected[id, default: []].append(SHA256.hash(m))
                w.enqueue(size: size, on: id)
            }
        }
        let clientStreams = (0..<8).map { _ in pair.client.openStream() }
        let serverStreams = (0..<8).map { _ in pair.server.openStream() }
        enqueue(clientStreams, up, &upTraffic, count: total / 2)
        enqueue(serverStreams, down, &downTraffic, count: total - total / 2)
        let start = pair.now
        var lastReport = pair.now
        let done = pair.run(for: .seconds(20_000)) {
            if pair.now - lastReport > .seconds(200), getenv("SIMDEBUG") != nil {
                lastReport = pair.now
                for c in [pair.client, pair.server] {
                    print("t=\(Int((pair.now - start).seconds)) up=\(upTraffic.received) down=\(downTraffic.received) cwnd=\(c.congestion.window) inflight=\(c.congestion.bytesInFlight) srtt=\(c.rtt.smoothed.seconds) pto=\(c.stats.ptoCount) lost=\(c.stats.packetsLost) spurious=\(c.stats.spuriousLosses) sent=\(c.stats.packetsSent) thr=\(c.packetThreshold)/\(c.timeThresholdEighths) streams=\(c.openStreams)")
                }
            }
            up.pump(pair.client)
            down.pump(pair.server)
            upTraffic.absorb(pair.serverEvents); pair.serverEvents = []
            downTraffic.absorb(pair.clientEvents); pair.clientEvents = []
            return upTraffic.received + downTraffic.received == total || !upTraffic.failures.isEmpty || !downTraffic.failures.isEmpty
        }
        let elapsed = (pair.now - start).seconds
        print("lossy link: \(total) messages, \(bytes >> 20) MB in \(Int(elapsed)) s simulated "
              + "(\(Int(Double(bytes) / elapsed / 1024)) KB/s), lost \(pair.client.stats.packetsLost)+\(pair.server.stats.packetsLost) packets, "
              + "relay model dropped \(pair.lossStats.toServer.lost)+\(pair.lossStats.toClient.lost), "
              + "duplicated \(pair.lossStats.toServer.duplicated)+\(pair.lossStats.toClient.duplicated), "
              + "reordered \(pair.lossStats.toServer.reordered)+\(pair.lossStats.toClient.reordered)")
        if !done && getenv("SIMDEBUG") != nil {
            for l in pair.client.streamDiagnostics { print("client \(l)") }
            for l in pair.server.streamDiagnostics { print("server \(l)") }
        }
        #expect(done)
        #expect(upTraffic.failures.isEmpty, "\(upTraffic.failures.prefix(5))")
        #expect(downTraffic.failures.isEmpty, "\(downTraffic.failures.prefix(5))")
        #expect(upTraffic.received == total / 2 && downTraffic.received == total - total / 2)
        #expect(pair.lossStats.toServer.lost > 0 && pair.lossStats.toClient.duplicated > 0 && pair.lossStats.toClient.reordered > 0,
                "the model really impaired the path")
    }

    @Test func smallRequestIsAnsweredWithinAFewRoundTripsWhileABulkStreamSaturatesThePath() {
        // A 2 MB/s bottleneck with a 100 ms buffer and a 50 ms round trip: the bulk stream fills
        // the buffer, as a real upload would on a home uplink.
        let imp = ImpairmentConfig(delay: .milliseconds(25), bytesPerSecond: 2_000_000, maxBacklog: .milliseconds(100))
        let pair = SimulatedPair(impairment: imp)
        let bulk = pair.client.openStream()
        let chunk = [UInt8](repeating: 1, count: 1 << 20)
        var requestSentAt: Instant?
        var answeredAfter: Duration?
        var request: UInt64?
        let t0 = pair.now
        pair.run(for: .seconds(60)) {
            if pair.client.writableBytes(bulk) > 0 { pair.client.write(chunk, to: bulk) }
            if request == nil && pair.now - t0 > .seconds(3) {
                let r = pair.client.openStream()
                pair.client.write(Array("ping".utf8), to: r, fin: true)
                request = r
                requestSentAt = pair.now
            }
            for case .streamFinished(let id) in pair.serverEvents where id == request {
                pair.server.write(Array("pong".utf8), to: id, fin: true)
            }
            pair.serverEvents = []
            for case .streamFinished(let id) in pair.clientEvents where id == request {
                answeredAfter = pair.now - requestSentAt!
            }
            pair.clientEvents = []
            return answeredAfter != nil
        }
        let latency = answeredAfter ?? .seconds(999)
        print("small request answered after \(Int(latency.seconds * 1000)) ms behind a saturated 2 MB/s path "
              + "(base RTT 50 ms, 100 ms of buffer; smoothed RTT \(Int(pair.client.rtt.smoothed.seconds * 1000)) ms)")
        #expect(latency <= .milliseconds(50) * 6, "within a few round trips, not behind megabytes of bulk data")
    }
}
