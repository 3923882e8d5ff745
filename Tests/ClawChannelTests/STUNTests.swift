import ClawReactor
import Testing
@testable import ClawChannel

struct STUNTests {
    let txid: [UInt8] = Array(1...12)

    @Test func requestHasTheRFC8489Header() {
        let r = STUN.bindingRequest(transactionID: txid)
        #expect(r.count == 20)
        #expect(Array(r[0..<8]) == [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42])
        #expect(Array(r[8...]) == txid)
    }

    @Test func xorMappedIPv4IsDecoded() throws {
        let addr = try SocketAddress(parsing: "203.0.113.7:40000")
        let resp = STUN.bindingResponse(transactionID: txid, mapped: addr)
        #expect(try STUN.parseBindingResponse(resp, transactionID: txid) == addr)
    }

    @Test func xorMappedIPv6IsDecoded() throws {
        let addr = try SocketAddress(parsing: "[2001:db8::abcd:1]:5555")
        let resp = STUN.bindingResponse(transactionID: txid, mapped: addr)
        #expect(try STUN.parseBindingResponse(resp, transactionID: txid) == addr)
    }

    /// RFC 5769 section 2.2 sample IPv4 response: 192.0.2.1:32853 behind XOR-MAPPED-ADDRESS.
    @Test func rfc5769SampleResponse() throws {
        let hex = "0101003c2112a442b7e7a701bc34d686fa87dfae" +
            "8022000b7465737420766563746f7220" +
            "00200008" + "0001a147e112a643" +
            "00080014" + "2b91f599fd9e90c38c7489f92af9ba53f06be7d7" +
            "80280004" + "c07d4c96"
        let bytes = try #require(bytesFromHex(hex))
        let tid = Array(bytes[8..<20])
        let addr = try STUN.parseBindingResponse(bytes, transactionID: tid)
        #expect(addr.description == "192.0.2.1:32853")
    }

    @Test func wrongTransactionIdIsRefused() throws {
        let resp = STUN.bindingResponse(transactionID: txid, mapped: try SocketAddress(parsing: "1.2.3.4:5"))
        #expect(throws: STUN.ParseError.wrongTransaction) {
            try STUN.parseBindingResponse(resp, transactionID: Array(repeating: 0, count: 12))
        }
    }

    @Test func garbageAndTruncationAreRefusedNotCrashed() {
        #expect(throws: STUN.ParseError.notSTUN) { try STUN.parseBindingResponse([1, 2, 3], transactionID: txid) }
        var resp = STUN.bindingResponse(transactionID: txid, mapped: .loopback(port: 9))
        resp.removeLast(3)
        #expect(throws: STUN.ParseError.self) { try STUN.parseBindingResponse(resp, transactionID: txid) }
        for seed in 0..<200 {
            var g = SplitMix(seed: UInt64(seed))
            let junk = (0..<Int(g.next() % 64)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            _ = try? STUN.parseBindingResponse(junk, transactionID: txid)
        }
    }
}

/// A tiny seeded generator for reproducible junk.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
