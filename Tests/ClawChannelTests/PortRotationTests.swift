import Testing
@testable import ClawChannel

/// Port rotation on a fake clock: plain UNIX seconds.
@Suite struct PortRotationTests {
    static let secret = (0..<32).map { UInt8($0 * 7 % 256) }
    static func rotation(period: Int64 = 3600, grace: Int64 = 900) throws -> PortRotation {
        try PortRotation(secret: secret, range: 40000...40999, period: period, grace: grace)
    }
    static let t0: Int64 = 1_796_133_600   // an epoch boundary (a multiple of 3600)

    @Test func portsAreDeterministicInRangeAndChangeEachEpoch() throws {
        let r = try Self.rotation()
        var seen: Set<UInt16> = []
        for e in 0..<200 {
            let t = Self.t0 + Int64(e) * 3600
            let p = r.port(at: t)
            #expect(r.range.contains(p))
            #expect(p == r.port(at: t + 3599), "one port for the whole epoch")
            #expect(p == (try Self.rotation()).port(at: t), "the device computes what the server computes")
            seen.insert(p)
        }
        #expect(seen.count > 150, "ports spread over the range: \(seen.count) distinct in 200 epochs")
        let other = try PortRotation(secret: Array(repeating: 1, count: 32), range: 40000...40999)
        #expect((Int64(0)..<20).filter { other.port(at: Self.t0 + $0 * 3600) == r.port(at: Self.t0 + $0 * 3600) }.count < 3,
                "another secret gives other ports")
    }

    @Test func theOldPortStaysOpenForTheGraceThenCloses() throws {
        let r = try Self.rotation()
        let old = r.port(at: Self.t0 - 1), new = r.port(at: Self.t0)
        #expect(r.openPorts(at: Self.t0 - 1) == [old])
        #expect(r.openPorts(at: Self.t0) == [new, old])
        #expect(r.openPorts(at: Self.t0 + 899) == [new, old])
        #expect(r.openPorts(at: Self.t0 + 900) == [new])
        #expect(r.nextChange(after: Self.t0 - 10) == Self.t0)
        #expect(r.nextChange(after: Self.t0) == Self.t0 + 900)
        #expect(r.nextChange(after: Self.t0 + 900) == Self.t0 + 3600)
    }

    @Test func aDeviceOfflineAcrossTwoRotationsFindsTheCurrentPortFirst() throws {
        let r = try Self.rotation()
        let lastSeen = r.port(at: Self.t0 + 10)
        let back = Self.t0 + 2 * 3600 + 1200   // two rotations later, after the grace
        let candidates = r.candidates(at: back)
        #expect(candidates.first == r.port(at: back))
        #expect(r.openPorts(at: back) == [r.port(at: back)])
        #expect(!r.openPorts(at: back).contains(lastSeen) || lastSeen == r.port(at: back))
        // A device clock 30 s ahead of the server's, just after a boundary, still finds it.
        let server = Self.t0 + 3 * 3600 - 10
        #expect(r.candidates(at: server + 30).contains(r.port(at: server)))
    }

    @Test func badSettingsAreRefused() {
        #expect(throws: PortRotation.Problem.badSecret) { try PortRotation(secret: [1, 2], range: 40000...40010) }
        #expect(throws: PortRotation.Problem.badRange) { try PortRotation(secret: Self.secret, range: 80...90) }
        #expect(throws: PortRotation.Problem.badTimes) { try PortRotation(secret: Self.secret, range: 40000...40010, period: 60, grace: 60) }
    }
}
