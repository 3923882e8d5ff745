import ClawReactor

/// Datagrams waiting for their delivery instant: a binary min-heap ordered by instant, then by
/// arrival, so copies due at the same instant leave in the order they were scheduled. It also
/// keeps the totals the relay caps (datagrams and bytes).
struct DeliveryQueue<Payload> {
    struct Entry {
        let at: Instant
        let sequence: UInt64
        let bytes: [UInt8]
        let payload: Payload
    }

    private var heap: [Entry] = []
    private var nextSequence: UInt64 = 0
    private(set) var totalBytes = 0

    var count: Int { heap.count }
    var isEmpty: Bool { heap.isEmpty }
    /// When the earliest datagram is due.
    var earliest: Instant? { heap.first?.at }

    mutating func insert(at: Instant, bytes: [UInt8], payload: Payload) {
        heap.append(Entry(at: at, sequence: nextSequence, bytes: bytes, payload: payload))
        nextSequence &+= 1
        totalBytes += bytes.count
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.precedes(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    /// Removes and returns the earliest entry if it is due at or before `now`.
    mutating func popDue(now: Instant) -> Entry? {
        guard let first = heap.first, first.at <= now else { return nil }
        let last = heap.removeLast()
        totalBytes -= first.bytes.count
        guard !heap.isEmpty else { return first }
        heap[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < heap.count, Self.precedes(heap[left], heap[smallest]) { smallest = left }
            if right < heap.count, Self.precedes(heap[right], heap[smallest]) { smallest = right }
            if smallest == parent { break }
            heap.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }

    private static func precedes(_ a: Entry, _ b: Entry) -> Bool {
        a.at != b.at ? a.at < b.at : a.sequence < b.sequence
    }
}
