import ClawReactor
import Testing
@testable import ClawRelay

/// Feeds `count` datagrams, one every `spacing`, of sizes cycling through 40...1439 bytes, and
/// returns each one's delays from its arrival (empty for a drop).
func decisions(_ model: inout Impairment, count: Int, spacing: Duration = .milliseconds(1)) -> [[Duration]] {
    var now = Instant(nanoseconds: 1_000_000_000)
    var out: [[Duration]] = []
    out.reserveCapacity(count)
    for i in 0..<count {
        out.append(model.decide(now: now, size: 40 + i % 1400).map { $0 - now })
        now += spacing
    }
    return out
}

let everyKnob = ImpairmentConfig(lossPercent: 10, delay: .milliseconds(30), jitter: .milliseconds(8),
                                 duplicatePercent: 5, reorderPercent: 5)

@Suite struct ImpairmentTests {
    @Test func sameSeedGivesIdenticalDecisions() {
        var a = Impairment(everyKnob, seed: 42)
        var b = Impairment(everyKnob, seed: 42)
        let first = decisions(&a, count: 10_000)
        #expect(first == decisions(&b, count: 10_000))
        #expect(a.stats == b.stats)
        // Something was actually decided, or the comparison proves nothing.
        #expect(a.stats.lost > 0 && a.stats.duplicated > 0 && a.stats.reordered > 0)
    }

    @Test func differentSeedsGiveDifferentDecisions() {
        var a = Impairment(everyKnob, seed: 42)
        var b = Impairment(everyKnob, seed: 43)
        let left = decisions(&a, count: 10_000), right = decisions(&b, count: 10_000)
        let differing = zip(left, right).filter { $0 != $1 }.count
        // With 16 ms of jitter nearly every datagram's delay differs.
        #expect(differing > 9_000)
    }

    @Test func noImpairmentDeliversEachDatagramOnceOnArrival() {
        var model = Impairment(.none, seed: 7)
        let out = decisions(&model, count: 1_000)
        #expect(out.allSatisfy { $0 == [.zero] })
        #expect(model.stats == { var s = ImpairmentStats(); s.offered = 1_000; return s }())
    }

    @Test func lossDuplicateAndReorderRatesMatchTheConfigurationOver100kDatagrams() {
        let config = ImpairmentConfig(lossPercent: 20, delay: .milliseconds(50), jitter: .milliseconds(10),
                                      duplicatePercent: 5, reorderPercent: 3)
        var model = Impairment(config, seed: 2024)
        let n = 100_000
        let out = decisions(&model, count: n)
        let delivered = out.filter { !$0.isEmpty }.count
        let doubled = out.filter { $0.count == 2 }.count
        // Four standard deviations: loss sd is 0.13 points over 100k, duplicates 0.08 over 80k.
        let lossRate = 100 * Double(n - delivered) / Double(n)
        #expect(abs(lossRate - 20) < 0.5, "loss \(lossRate)%")
        let duplicateRate = 100 * Double(doubled) / Double(delivered)
        #expect(abs(duplicateRate - 5) < 0.35, "duplicates \(duplicateRate)%")
        let reorderRate = 100 * Double(model.stats.reordered) / Double(delivered)
        #expect(abs(reorderRate - 3) < 0.3, "reordered \(reorderRate)%")
        #expect(model.stats.offered == n)
        #expect(model.stats.lost == n - delivered)
        #expect(model.stats.duplicated == doubled)
    }

    @Test func delaysStayWithinDelayPlusOrMinusJitterPlusTheReorderHoldBack() {
        let config = ImpairmentConfig(delay: .milliseconds(50), jitter: .milliseconds(10), duplicatePercent: 2,
                                      reorderPercent: 5, reorderExtra: .milliseconds(100))
        var model = Impairment(config, seed: 99)
        let delays = decisions(&model, count: 100_000).flatMap { $0 }
        let plain = delays.filter { $0 <= .milliseconds(60) }
        let held = delays.filter { $0 > .milliseconds(60) }
        #expect(plain.allSatisfy { $0 >= .milliseconds(40) })
        #expect(held.allSatisfy { $0 >= .milliseconds(140) && $0 <= .milliseconds(160) })
        #expect(held.count == model.stats.reordered)
        // The jitter spans its whole range, uniformly: extremes reached, mean in the middle.
        #expect(plain.min()! < .milliseconds(40.1) && plain.max()! > .milliseconds(59.9))
        let meanMs = plain.reduce(0.0) { $0 + $1.seconds * 1000 } / Double(plain.count)
        #expect(abs(meanMs - 50) < 0.1, "mean delay \(meanMs) ms")
    }

    @Test func jitterLargerThanTheDelayNeverDeliversBeforeArrival() {
        var model = Impairment(ImpairmentConfig(delay: .milliseconds(5), jitter: .milliseconds(20)), seed: 1)
        let delays = decisions(&model, count: 10_000).flatMap { $0 }
        #expect(delays.allSatisfy { $0 >= .zero })
        #expect(delays.contains(.zero))
    }

    @Test func aReorderedDatagramIsOvertakenByTheOnesBehindIt() {
        // Zero delay and jitter: only the hold-back (default 10 ms) can change the order.
        var model = Impairment(ImpairmentConfig(reorderPercent: 10), seed: 5)
        let out = decisions(&model, count: 1_000, spacing: .milliseconds(1))
        let arrivals = out.enumerated().map { i, d in (i, Int64(i) * 1_000_000 + d[0].nanoseconds) }
        let order = arrivals.sorted { $0.1 != $1.1 ? $0.1 < $1.1 : $0.0 < $1.0 }.map(\.0)
        #expect(order != Array(0..<1_000))
        #expect(Set(order).count == 1_000)
        #expect(model.stats.reordered > 50 && model.stats.reordered < 150)
    }

    @Test func changingLossLeavesTheSurvivorsDecisionsAlone() {
        let base = ImpairmentConfig(delay: .milliseconds(20), jitter: .milliseconds(5))
        var lossless = Impairment(base, seed: 11)
        var lossy = Impairment({ var c = base; c.lossPercent = 30; return c }(), seed: 11)
        let all = decisions(&lossless, count: 5_000), some = decisions(&lossy, count: 5_000)
        let survivors = zip(all, some).filter { !$0.1.isEmpty }
        #expect(survivors.count > 3_000 && survivors.count < 4_000)
        #expect(survivors.allSatisfy { $0.0 == $0.1 })
    }

    @Test func bandwidthSpacesDatagramsBySerialisationTimeAndTailDrops() {
        // 100 kB/s: a 1000-byte datagram takes 10 ms; the buffer holds 50 ms of backlog.
        let config = ImpairmentConfig(bytesPerSecond: 100_000, maxBacklog: .milliseconds(50))
        var model = Impairment(config, seed: 3)
        let now = Instant(nanoseconds: 5_000_000_000)
        let burst = (0..<10).map { _ in model.decide(now: now, size: 1_000).map { $0 - now } }
        #expect(Array(burst.prefix(6)) == (1...6).map { [.milliseconds(10 * $0)] })
        #expect(burst.dropFirst(6).allSatisfy { $0.isEmpty })
        #expect(model.stats.overBacklog == 4)
        // Once the link has drained, a datagram goes straight through again.
        let later = now + .seconds(1)
        #expect(model.decide(now: later, size: 500) == [later + .milliseconds(5)])
    }
}
