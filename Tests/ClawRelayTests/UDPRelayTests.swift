import ClawReactor
import Testing
@testable import ClawRelay

/// The balance every direction's counters must keep once its queue is empty.
func countersBalance(_ c: RelayCounters) -> Bool {
    c.received + c.duplicated == c.forwarded + c.dropped
}

/// Each test runs its own loop, relay, echo server and client on loopback, with hard deadlines.
@Suite(.serialized) struct UDPRelayTests {
    @Test func cleanPathRoundTripsEveryDatagramIntact() throws {
        let h = try RelayHarness()
        let n = 1_000
        h.sendPaced(count: n, size: { 1 + Int($0 * 7 % 1_400) + 16 })
        #expect(h.run { h.replies.count == n })
        #expect(h.replies.count == n)
        #expect(h.replies.allSatisfy { $0.bytes == h.sent[$0.seq] })
        #expect(Set(h.replies.map(\.seq)).count == n)
        // The client hears the relay; the server hears the client's upstream socket.
        #expect(h.replies.allSatisfy { $0.from == h.relay.listenAddress })
        let upstream = try #require(h.relay.upstreamSource(for: h.client.localAddress))
        #expect(h.atServer.allSatisfy { $0.from == upstream })
        #expect(upstream.port != h.relay.listenAddress.port)
        for d in RelayDirection.allCases {
            let c = h.relay.counters(d)
            #expect(c.received == n && c.forwarded == n && c.dropped == 0, "\(d): \(c)")
        }
    }

    @Test func twentyPercentLossEachWayLeavesAbout64PercentRoundTrips() throws {
        let loss = ImpairmentConfig(lossPercent: 20)
        let h = try RelayHarness(toServer: loss, toClient: loss, seed: 20)
        let n = 2_000
        h.sendPaced(count: n)
        h.drain()
        // 0.8 x 0.8; the binomial sd over 2000 round trips is 1.1 points.
        let ratio = Double(h.replies.count) / Double(n)
        #expect(abs(ratio - 0.64) < 0.045, "round trips \(ratio)")
        let up = h.relay.counters(.toServer), down = h.relay.counters(.toClient)
        #expect(up.received == n)
        #expect(abs(Double(up.lost) / Double(n) - 0.2) < 0.03, "to-server \(up)")
        #expect(down.received == h.atServer.count)
        #expect(abs(Double(down.lost) / Double(down.received) - 0.2) < 0.035, "to-client \(down)")
        #expect(up.dropped == up.lost && down.dropped == down.lost)
        #expect(countersBalance(up) && countersBalance(down))
        #expect(h.replies.count == down.forwarded)
    }

    @Test func delayOf50msWithJitter10GivesRoundTripsNear100ms() throws {
        let path = ImpairmentConfig(delay: .milliseconds(50), jitter: .milliseconds(10))
        let h = try RelayHarness(toServer: path, toClient: path, seed: 50)
        let n = 100
        h.sendPaced(count: n, perTick: 1, every: .milliseconds(5))
        #expect(h.run { h.replies.count == n })
        let rtts = h.replies.map { $0.roundTrip.seconds * 1000 }
        let mean = rtts.reduce(0, +) / Double(rtts.count)
        // Each way 40...60 ms; the timers never fire early, the loop adds a little on top.
        #expect(rtts.allSatisfy { $0 >= 80 && $0 <= 130 }, "RTTs \(rtts.min() ?? 0)...\(rtts.max() ?? 0) ms")
        #expect(abs(mean - 100) < 5, "mean RTT \(mean) ms")
        #expect(rtts.max()! - rtts.min()! > 10, "jitter should spread the RTTs")
    }

    @Test func reorderingDeliversSomeDatagramsOutOfOrder() throws {
        let h = try RelayHarness(toServer: ImpairmentConfig(reorderPercent: 10), seed: 10)
        h.echo = false
        let n = 500
        h.sendPaced(count: n, perTick: 1, every: .milliseconds(1))
        h.drain()
        let order = h.atServer.map(\.seq)
        #expect(Set(order) == Set(0..<UInt64(n)))
        var highest: UInt64 = 0, late = 0
        for seq in order {
            if seq < highest { late += 1 }
            highest = max(highest, seq)
        }
        let reordered = h.relay.counters(.toServer).reordered
        #expect(late > 0 && late <= reordered, "late \(late), reordered \(reordered)")
        #expect(reordered > 25 && reordered < 80)
    }

    @Test func duplicationDeliversSomeDatagramsTwice() throws {
        let h = try RelayHarness(toServer: ImpairmentConfig(duplicatePercent: 10), seed: 12)
        let n = 1_000
        h.sendPaced(count: n)
        h.drain()
        var seen: [UInt64: Int] = [:]
        for a in h.atServer { seen[a.seq, default: 0] += 1 }
        let twice = seen.values.filter { $0 == 2 }.count
        let up = h.relay.counters(.toServer)
        #expect(seen.count == n)
        #expect(seen.values.allSatisfy { $0 <= 2 })
        #expect(twice == up.duplicated)
        #expect(twice > 60 && twice < 140)
        // The echo of both copies comes back: the client sees the duplicates too.
        #expect(h.replies.count == n + twice)
        #expect(up.forwarded == n + twice && countersBalance(up))
    }

    @Test func remapPortsGivesTheServerANewSourcePortAndRepliesStillArrive() throws {
        let h = try RelayHarness()
        h.send(0)
        #expect(h.run { h.replies.count == 1 })
        let before = try #require(h.atServer.last?.from)
        try h.relay.remapPorts()
        let after = try #require(h.relay.upstreamSource(for: h.client.localAddress))
        #expect(after != before)
        h.send(1)
        #expect(h.run { h.replies.count == 2 })
        #expect(h.atServer.map(\.from) == [before, after])
        #expect(h.replies.map(\.seq) == [0, 1])
        #expect(h.replies.allSatisfy { $0.from == h.relay.listenAddress })
        #expect(h.relay.remaps == 1)
        // The old mapping is gone: the server's datagram to it reaches nobody.
        h.server.send([9, 9, 9, 9, 9, 9, 9, 9], to: before)
        h.settle(for: .milliseconds(100))
        #expect(h.replies.count == 2)
    }

    @Test func remapEveryRebindsThePortsPeriodically() throws {
        let h = try RelayHarness { $0.remapEvery = .milliseconds(40) }
        h.sendPaced(count: 60, perTick: 1, every: .milliseconds(5))
        #expect(h.run { h.replies.count >= 55 })
        let ports = Set(h.atServer.map(\.from.port))
        #expect(ports.count >= 4, "server saw \(ports.count) source ports")
        #expect(h.relay.remaps >= 4)
    }

    @Test func blackholeDropsEverythingInBothDirections() throws {
        let h = try RelayHarness(toClient: ImpairmentConfig(delay: .milliseconds(30)))
        h.send(0)
        #expect(h.run { h.replies.count == 1 })
        let upstream = try #require(h.atServer.last?.from)

        // A reply already on its way when the cable is cut is lost too.
        h.send(1)
        #expect(h.run { h.atServer.count == 2 && h.relay.queuedDatagrams == 1 })
        h.relay.blackhole = true
        for seq in 2..<52 { h.send(UInt64(seq)) }
        h.server.send(Array(repeating: 8, count: 16), to: upstream)
        h.settle(for: .milliseconds(150))
        #expect(h.atServer.count == 2)
        #expect(h.replies.count == 1)
        #expect(h.relay.counters(.toServer).silenced == 50)
        #expect(h.relay.counters(.toClient).silenced == 2)

        h.relay.blackhole = false
        h.send(99)
        #expect(h.run { h.replies.last?.seq == 99 })
        #expect(countersBalance(h.relay.counters(.toServer)) && countersBalance(h.relay.counters(.toClient)))
    }

    @Test func eachClientGetsItsOwnUpstreamPort() throws {
        let h = try RelayHarness()
        let other = try UDPSocket(loop: h.loop, bindTo: .loopback())
        var otherReplies: [UInt64] = []
        other.onDatagram = { bytes, _ in otherReplies.append(RelayHarness.sequence(bytes)) }
        h.send(1)
        h.send(2, from: other)
        #expect(h.run { h.replies.count == 1 && otherReplies.count == 1 })
        #expect(h.replies.map(\.seq) == [1] && otherReplies == [2])
        let mine = try #require(h.relay.upstreamSource(for: h.client.localAddress))
        let theirs = try #require(h.relay.upstreamSource(for: other.localAddress))
        #expect(mine != theirs)
        #expect(Set(h.atServer.map(\.from)) == [mine, theirs])
        #expect(Set(h.relay.clients) == [h.client.localAddress, other.localAddress])
    }

    @Test func aFullQueueDropsAndCountsTheExcess() throws {
        let h = try RelayHarness(toServer: ImpairmentConfig(delay: .milliseconds(50))) {
            $0.maxQueuedDatagrams = 10
        }
        h.echo = false
        for seq in 0..<30 { h.send(UInt64(seq)) }
        #expect(h.run { h.relay.counters(.toServer).received == 30 })
        #expect(h.relay.queuedDatagrams == 10)
        #expect(h.relay.counters(.toServer).queueFull == 20)
        #expect(h.run { h.atServer.count == 10 })
        #expect(h.atServer.map(\.seq) == Array(0..<10))
    }

    @Test func aChangedImpairmentAppliesToLaterDatagrams() throws {
        let h = try RelayHarness()
        h.send(0)
        #expect(h.run { h.replies.count == 1 })
        h.relay.setImpairment(ImpairmentConfig(lossPercent: 100), for: .toClient)
        #expect(h.relay.impairment(.toClient).lossPercent == 100)
        h.send(1)
        #expect(h.run { h.atServer.count == 2 })
        h.settle(for: .milliseconds(50))
        #expect(h.replies.count == 1)
        #expect(h.relay.counters(.toClient).lost == 1)
    }
}
