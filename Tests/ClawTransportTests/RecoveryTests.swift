import ClawReactor
import Testing
@testable import ClawTransport

/// Hand-computed traces of RFC 9002's estimators and NewReno.
struct RecoveryTests {
    @Test func rttEstimatorFollowsRFC9002() {
        var r = RTTEstimator()
        #expect(r.smoothed == .milliseconds(333))
        r.update(sample: .milliseconds(100), ackDelay: .milliseconds(10))
        // First sample: smoothed = sample, variance = sample / 2, ack delay ignored.
        #expect(r.smoothed == .milliseconds(100) && r.variance == .milliseconds(50) && r.minimum == .milliseconds(100))
        r.update(sample: .milliseconds(200), ackDelay: .milliseconds(10))
        // adjusted = 190; variance = 3/4·50 + 1/4·90 = 60; smoothed = 7/8·100 + 1/8·190 = 111.25.
        #expect(r.variance == .milliseconds(60))
        #expect(r.smoothed == .microseconds(111_250))
        r.update(sample: .milliseconds(105), ackDelay: .milliseconds(10))
        // 105 < min (100) + 10: the ack delay is not subtracted. adjusted = 105.
        // variance = 3/4·60 + 1/4·6.25 = 46.5625; smoothed = 7/8·111.25 + 1/8·105 = 110.46875.
        #expect(r.variance == .microseconds(46_562) + .nanoseconds(500))
        #expect(r.smoothed == .microseconds(110_468) + .nanoseconds(750))
        // PTO = smoothed + max(4·variance, 1 ms) + max_ack_delay.
        #expect(r.pto(maxAckDelay: .milliseconds(25), granularity: .milliseconds(1)) == r.smoothed + r.variance * 4 + .milliseconds(25))
    }

    @Test func newRenoSlowStartAvoidanceAndOneReductionPerRoundTrip() {
        let mds = 1167
        var cc = NewReno(maxDatagramSize: mds)
        #expect(cc.window == 11_670)   // min(10·1167, max(14720, 2·1167))
        let t0 = Instant(nanoseconds: 0)
        for _ in 0..<10 { cc.onPacketSent(bytes: mds) }
        #expect(cc.available == 0)
        for _ in 0..<10 { cc.onPacketAcked(bytes: mds, sentAt: t0) }
        #expect(cc.window == 23_340, "slow start doubles per round trip")
        // A loss at t = 1 s: ssthresh = window / 2, window = ssthresh.
        cc.onPacketSent(bytes: mds)
        cc.onPacketsLost(bytes: mds, newestSentAt: t0 + .milliseconds(900), now: t0 + .seconds(1), persistentCongestion: false)
        #expect(cc.window == 11_670 && cc.slowStartThreshold == 11_670)
        // Another loss of a packet sent before recovery began: no second reduction.
        cc.onPacketsLost(bytes: 0, newestSentAt: t0 + .milliseconds(950), now: t0 + .milliseconds(1_100), persistentCongestion: false)
        #expect(cc.window == 11_670)
        // Acks of packets sent before recovery do not grow the window.
        cc.onPacketAcked(bytes: mds, sentAt: t0 + .milliseconds(990))
        #expect(cc.window == 11_670)
        // Congestion avoidance: + mds · acked / window per ack.
        cc.onPacketAcked(bytes: mds, sentAt: t0 + .seconds(2))
        #expect(cc.window == 11_670 + mds * mds / 11_670)
        // A loss after recovery began reduces again; persistent congestion collapses the window.
        cc.onPacketsLost(bytes: 0, newestSentAt: t0 + .seconds(3), now: t0 + .seconds(3), persistentCongestion: true)
        #expect(cc.window == 2 * mds)
    }

    @Test func probeTimeoutBacksOffExponentially() {
        // One packet sent, never acknowledged: PTOs fire at 1×, then 2×, 4× the base period.
        let pair = SimulatedPair()
        pair.silent = true
        let id = pair.client.openStream()
        pair.client.write([1, 2, 3], to: id)
        pair.flush()
        let sentAt = pair.now
        var fired: [Duration] = []
        var last = 0
        pair.run(for: .seconds(9)) {
            if pair.client.stats.ptoCount > last { last = pair.client.stats.ptoCount; fired.append(pair.now - sentAt) }
            return fired.count == 3
        }
        // Base PTO before any sample: 333 + 4·166.5 + 25 = 1024 ms.
        let base = Duration.milliseconds(1024)
        #expect(fired.count == 3)
        guard fired.count == 3 else { return }
        #expect(fired[0] == base)
        // Each probe re-arms from its own send time with the doubled period.
        #expect(fired[1] == base + base * 2)
        #expect(fired[2] == base + base * 2 + base * 4)
    }
}

/// Regressions found by the lossy-link test: both stalled a stream for good.
struct SendStreamTests {
    @Test func retransmissionSkipsOnlyWhatWasAcknowledged() {
        var s = SendStream(peerMaxData: 1 << 20)
        s.write(Array(repeating: 7, count: 3000)[...])
        let a = s.nextChunk(maxLength: 3000, newCredit: 1 << 20)!
        #expect(a.offset == 0 && a.length == 3000 && a.isNew)
        s.onLost(offset: 0, length: 3000, fin: false)
        // A retransmission cut differently: the ends arrive, the middle does not.
        s.onAcked(offset: 0, length: 1000, fin: false)
        s.onAcked(offset: 2000, length: 1000, fin: false)
        let b = s.nextChunk(maxLength: 3000, newCredit: 1 << 20)
        #expect(b?.offset == 1000 && b?.length == 1000 && b?.isNew == false, "the middle is sent again, not dropped")
        #expect(s.nextChunk(maxLength: 3000, newCredit: 1 << 20) == nil)
    }

    @Test func lateAcknowledgementOfOldBytesDoesNotStopTheBaseFromAdvancing() {
        var s = SendStream(peerMaxData: 1 << 20)
        s.write(Array(repeating: 7, count: 4000)[...])
        _ = s.nextChunk(maxLength: 4000, newCredit: 1 << 20)
        s.onAcked(offset: 0, length: 2000, fin: false)
        #expect(s.base == 2000)
        s.onAcked(offset: 500, length: 500, fin: false)   // a duplicate, below the base
        s.onAcked(offset: 2000, length: 2000, fin: false)
        #expect(s.base == 4000 && s.buffered == 0)
    }

    @Test func firstGapFindsUnacknowledgedRuns() {
        var r = RangeSet()
        r.insert(10...19)
        r.insert(30...39)
        #expect(r.firstGap(in: 0, 50) == 0...9)
        #expect(r.firstGap(in: 10, 50) == 20...29)
        #expect(r.firstGap(in: 12, 35) == 20...29)
        #expect(r.firstGap(in: 30, 39) == nil)
        #expect(r.firstGap(in: 35, 45) == 40...45)
    }

    @Test func windowReductionIsUndoneWhenTheLostPacketsTurnUp() {
        var cc = NewReno(maxDatagramSize: 1000)
        let before = cc.window
        cc.onPacketSent(bytes: 1000)
        cc.onPacketsLost(bytes: 1000, newestSentAt: .zero, now: Instant(nanoseconds: 1), persistentCongestion: false)
        #expect(cc.window == before / 2)
        cc.undoReduction(window: before, threshold: Int.max)
        #expect(cc.window == before && cc.inSlowStart)
    }
}
