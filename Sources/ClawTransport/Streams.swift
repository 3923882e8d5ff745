/// The sending half of a stream: bytes the application wrote that the peer has not yet
/// acknowledged, what must be sent again, and the peer's flow-control credit.
struct SendStream {
    private var storage: [UInt8] = []
    private var head = 0             // index in storage of offset `base`
    private(set) var base: UInt64 = 0   // lowest unacknowledged offset
    private(set) var written: UInt64 = 0
    /// The next offset never sent before.
    private(set) var nextNew: UInt64 = 0
    private var lost = RangeSet()
    private var acked = RangeSet()
    var peerMaxData: UInt64
    var finWritten = false
    var finSent = false
    var finAcked = false
    var reset = false

    init(peerMaxData: UInt64) { self.peerMaxData = peerMaxData }

    var debugDescription: String {
        "send base \(base) nextNew \(nextNew) written \(written) peerMax \(peerMaxData) lost \(lost.ranges.prefix(3)) acked \(acked.ranges.prefix(3)) fin \(finWritten)/\(finSent)/\(finAcked)"
    }

    var buffered: Int { storage.count - head }
    var isDone: Bool { reset || (finAcked && base == written) }
    var hasRetransmission: Bool { !lost.isEmpty || (finWritten && !finSent && nextNew == written) }

    mutating func write(_ bytes: ArraySlice<UInt8>) {
        storage += bytes
        written += UInt64(bytes.count)
    }

    /// Bytes at `offset` ..< `offset + length`, which must still be buffered.
    func bytes(at offset: UInt64, length: Int) -> ArraySlice<UInt8> {
        let start = head + Int(offset - base)
        return storage[start..<start + length]
    }

    /// The next range to send, at most `maxLength` bytes: lost data first, then new data within
    /// `newCredit` (connection credit) and the stream credit. `isNew` tells which.
    mutating func nextChunk(maxLength: Int, newCredit: UInt64) -> (offset: UInt64, length: Int, fin: Bool, isNew: Bool)? {
        while let r = lost.ranges.first {
            // Send again only what is still unacknowledged: retransmissions are cut differently
            // from the originals, so a lost range can be partly acknowledged by now.
            guard r.upperBound >= base, let gap = acked.firstGap(in: max(r.lowerBound, base), r.upperBound) else {
                lost.removeBelow(r.upperBound + 1)
                continue
            }
            let length = Int(min(UInt64(maxLength), gap.upperBound - gap.lowerBound + 1))
            let end = gap.lowerBound + UInt64(length)
            lost.removeBelow(end)
            return (gap.lowerBound, length, finWritten && end == written, false)
        }
        let credit = min(peerMaxData, nextNew + newCredit)
        let available = min(written, credit) - min(nextNew, min(written, credit))
        if available > 0 || (finWritten && !finSent && nextNew == written) {
            let length = Int(min(UInt64(maxLength), available))
            let start = nextNew
            nextNew += UInt64(length)
            let fin = finWritten && nextNew == written
            if fin { finSent = true }
            return (start, length, fin, true)
        }
        return nil
    }

    /// Whether flow control (not a lack of data) is what holds new data back.
    var blockedByPeer: Bool { nextNew < written && nextNew >= peerMaxData }

    mutating func onAcked(offset: UInt64, length: Int, fin: Bool) {
        if fin { finAcked = true }
        let end = offset + UInt64(length)
        guard length > 0, end > base else { return }   // a late acknowledgement of old bytes
        acked.insert(max(offset, base)...(end - 1))
        if let first = acked.ranges.first, first.lowerBound <= base, first.upperBound >= base {
            let newBase = first.upperBound + 1
            head += Int(newBase - base)
            base = newBase
            acked.removeBelow(base)
            if head > 65_536 && head * 2 > storage.count {
                storage.removeFirst(head)
                head = 0
            }
        }
    }

    mutating func onLost(offset: UInt64, length: Int, fin: Bool) {
        if fin && !finAcked { finSent = false }
        guard length > 0, offset + UInt64(length) > base else { return }
        lost.insert(max(offset, base)...(offset + UInt64(length) - 1))
        // A lost FIN rides again with the last byte, or alone when everything else arrived.
        if fin && !finAcked && nextNew == written { finSent = false }
    }
}

/// The receiving half of a stream: out-of-order pieces wait (bounded by the credit we gave) and
/// contiguous bytes are delivered at once.
struct RecvStream {
    private(set) var delivered: UInt64 = 0
    private var pending: [(offset: UInt64, data: ArraySlice<UInt8>)] = []
    private(set) var buffered = 0
    private(set) var finalSize: UInt64?
    private(set) var highestReceived: UInt64 = 0
    var maxData: UInt64
    let window: UInt64
    var finDelivered = false
    var reset = false

    init(window: UInt64) {
        self.window = window
        maxData = window
    }

    var isDone: Bool { reset || finDelivered }

    enum Outcome: Equatable { case ok, flowControlViolation, finalSizeViolation }

    /// Takes a STREAM frame; returns the violation, if any, and fills `out` with newly
    /// contiguous bytes. `connectionGrowth` reports how much `highestReceived` grew.
    mutating func receive(offset: UInt64, data: ArraySlice<UInt8>, fin: Bool,
                          out: inout [UInt8], connectionGrowth: inout UInt64) -> Outcome {
        let end = offset + UInt64(data.count)
        if end > maxData { return .flowControlViolation }
        if let f = finalSize, end > f || (fin && end != f) { return .finalSizeViolation }
        if fin {
            if end < highestReceived { return .finalSizeViolation }
            finalSize = end
        }
        if end > highestReceived {
            connectionGrowth = end - highestReceived
            highestReceived = end
        }
        if end > delivered {
            let trimmed = offset < delivered ? data.dropFirst(Int(delivered - offset)) : data
            let start = max(offset, delivered)
            if start == delivered {
                out += trimmed
                delivered = end
                drainPending(into: &out)
            } else if !trimmed.isEmpty {
                let i = pending.firstIndex { $0.offset > start } ?? pending.count
                pending.insert((start, trimmed), at: i)
                buffered += trimmed.count
            }
        }
        return .ok
    }

    private mutating func drainPending(into out: inout [UInt8]) {
        while let first = pending.first, first.offset <= delivered {
            pending.removeFirst()
            buffered -= first.data.count
            let end = first.offset + UInt64(first.data.count)
            if end > delivered {
                out += first.data.dropFirst(Int(delivered - first.offset))
                delivered = end
            }
        }
    }

    /// True once, when all bytes up to the final size were delivered.
    mutating func takeFin() -> Bool {
        guard !finDelivered, let f = finalSize, delivered == f else { return false }
        finDelivered = true
        return true
    }

    /// A new credit to advertise when half the window was consumed, else nil.
    mutating func creditUpdate() -> UInt64? {
        guard finalSize == nil, maxData - delivered < window / 2 else { return nil }
        maxData = delivered + window
        return maxData
    }
}
