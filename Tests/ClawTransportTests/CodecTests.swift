import Testing
@testable import ClawTransport

struct CodecTests {
    @Test func varintsRoundTripAtEveryLengthBoundary() {
        for v: UInt64 in [0, 63, 64, 16_383, 16_384, (1 << 30) - 1, 1 << 30, Varint.max] {
            var out: [UInt8] = []
            Varint.append(v, to: &out)
            #expect(out.count == Varint.size(v))
            var r = FrameReader(out)
            #expect(r.varint() == v)
            #expect(r.atEnd)
        }
    }

    @Test func framesRoundTrip() {
        let data: [UInt8] = Array(0..<200)
        let frames: [Frame] = [
            .ping,
            .ack(ranges: [90...100, 50...80, 10...10, 0...5], ackDelay: 1234),
            .resetStream(id: 4, errorCode: 0x100, finalSize: 99),
            .stream(id: 6, offset: 1 << 40, data: data[10..<150], fin: true),
            .stream(id: 0, offset: 0, data: [], fin: false),
            .maxData(1 << 33), .maxStreamData(id: 3, max: 77),
            .connectionClose(errorCode: 0xa, reason: "bye"),
        ]
        var bytes: [UInt8] = []
        for f in frames { f.encode(into: &bytes) }
        var r = FrameReader(bytes)
        var decoded: [Frame] = []
        while !r.atEnd { if let f = Frame.decode(&r, maxAckRanges: 64) { decoded.append(f) } else { break } }
        #expect(decoded == frames)
    }

    @Test func malformedFramesAreRefusedNotCrashed() {
        // An ACK whose ranges would go below zero, a STREAM longer than the packet, junk.
        let cases: [[UInt8]] = [[0x02, 5, 0, 1, 5, 0, 0], [0x08, 0, 0, 50, 1, 2], [0x3f], [0x02, 0x40]]
        for c in cases {
            var r = FrameReader(c)
            #expect(Frame.decode(&r, maxAckRanges: 64) == nil)
        }
        var g: UInt64 = 3
        for _ in 0..<20_000 {
            g = g &* 6364136223846793005 &+ 1442695040888963407
            let junk = (0..<Int(g >> 59)).map { UInt8(truncatingIfNeeded: g >> UInt64($0 * 7 % 57)) }
            var r = FrameReader(junk)
            while !r.atEnd, Frame.decode(&r, maxAckRanges: 64) != nil {}
        }
    }

    @Test func rangeSetMergesAndPrunes() {
        var s = RangeSet()
        let a = s.insert(5), b = s.insert(7)
        #expect(a && b)
        #expect(s.ranges == [5...5, 7...7])
        let c = s.insert(6)
        #expect(c)
        #expect(s.ranges == [5...7])
        let d = s.insert(6)
        #expect(!d)
        s.insert(10...20)
        s.insert(0...3)
        #expect(s.ranges == [0...3, 5...7, 10...20])
        s.insert(4...9)
        #expect(s.ranges == [0...20])
        s.insert(UInt64.max - 1...UInt64.max)
        s.insert(30...30)
        s.keepHighest(2)
        #expect(s.ranges == [30...30, UInt64.max - 1...UInt64.max])
        #expect(s.contains(30) && !s.contains(29) && s.contains(.max))
    }
}
