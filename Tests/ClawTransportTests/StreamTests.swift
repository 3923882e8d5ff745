import ClawCrypto
import ClawReactor
import ClawRelay
import Testing
@testable import ClawTransport

@Suite struct StreamTests {
    @Test func silentPeerIsDeclaredDeadWithinTheStatedTime() {
        let pair = SimulatedPair()
        let id = pair.client.openStream()
        pair.client.write(Array(repeating: 9, count: 10_000), to: id)
        pair.run(for: .seconds(1)) { false }
        pair.silent = true
        let silentSince = pair.now
        pair.client.write(Array(repeating: 9, count: 10_000), to: id)
        var closedAt: Instant?
        pair.run(for: .seconds(60)) {
            if pair.clientEvents.contains(where: { if case .closed = $0 { return true }; return false }) { closedAt = pair.now }
            return closedAt != nil
        }
        let after = (closedAt ?? .zero) - silentSince
        #expect(closedAt != nil)
        #expect(after <= pair.client.config.deadPeerTimeout + .seconds(2))
    }

    @Test func ackForPacketsNeverSentClosesTheConnectionCleanly() {
        let c = TransportConnection(isClient: true, now: .zero)
        var p: [UInt8] = Array(repeating: 0, count: 8)
        Frame.ack(ranges: [0...Varint.max], ackDelay: 0).encode(into: &p)
        c.receive(p, now: .zero)
        #expect(c.isClosed)
        #expect(c.takeEvents().contains { if case .closed(let r) = $0 { return r.contains("never sent") }; return false })
    }

    @Test func floodOfBogusAcknowledgementsAfterTheViolationCostsNothing() {
        let c = TransportConnection(isClient: true, now: .zero)
        for i in 0..<100_000 {
            var p: [UInt8] = Array(repeating: 0, count: 8)
            p[7] = UInt8(truncatingIfNeeded: i)
            Frame.ack(ranges: [UInt64(i)...UInt64(i) + 1000], ackDelay: 0).encode(into: &p)
            c.receive(p, now: .zero)
        }
        #expect(c.isClosed)
        #expect(c.takeEvents().count == 1, "one close, nothing else")
        #expect(c.poll(now: .zero).count == 1, "one CONNECTION_CLOSE, then silence")
        #expect(c.poll(now: .zero).isEmpty && c.nextWakeup == nil)
    }

    @Test func duplicateAcknowledgementsOfRealPacketsAreHarmless() {
        let pair = SimulatedPair()
        let id = pair.client.openStream()
        pair.client.write(Array(repeating: 3, count: 50_000), to: id, fin: true)
        pair.run(for: .seconds(2)) { false }
        // Replay the same valid ACK 10,000 times: no state grows, nothing breaks.
        var p: [UInt8] = Array(repeating: 0xFF, count: 8)
        Frame.ack(ranges: [0...3], ackDelay: 0).encode(into: &p)
        for i in 0..<10_000 {
            p[7] = UInt8(truncatingIfNeeded: i); p[6] = UInt8(truncatingIfNeeded: i >> 8); p[0] = 0x01
            pair.client.receive(p, now: pair.now)
        }
        #expect(!pair.client.isClosed)
        #expect(pair.serverEvents.contains(.streamFinished(id)))
    }

    @Test func dataPastFlowControlCreditIsRefusedWithoutBuffering() {
        let s = TransportConnection(isClient: false, now: .zero)
        var p: [UInt8] = Array(repeating: 0, count: 8)
        Frame.stream(id: 0, offset: s.config.streamWindow, data: [1, 2, 3][...], fin: false).encode(into: &p)
        s.receive(p, now: .zero)
        #expect(s.isClosed)
        #expect(s.openStreams == 0)
    }

    @Test func floodOfPeerStreamsIsBounded() {
        let s = TransportConnection(isClient: false, now: .zero)
        var p: [UInt8] = Array(repeating: 0, count: 8)
        Frame.stream(id: 4 * 1_000_000, offset: 0, data: [1][...], fin: false).encode(into: &p)
        s.receive(p, now: .zero)
        #expect(s.isClosed, "opening a million streams at once is a violation, not an allocation")
    }

    @Test func resetStreamStopsDeliveryAndIsReported() {
        let pair = SimulatedPair()
        let id = pair.client.openStream()
        pair.client.write(Array(repeating: 1, count: 5_000), to: id)
        pair.run(for: .seconds(1)) { false }
        pair.client.reset(id)
        pair.run(for: .seconds(1)) { false }
        #expect(pair.serverEvents.contains { if case .streamReset(let s, _) = $0 { return s == id }; return false })
    }
}
