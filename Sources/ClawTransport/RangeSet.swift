/// A set of UInt64 values stored as sorted, disjoint, non-adjacent closed ranges. Used for
/// received packet numbers (ACK ranges) and for acknowledged stream bytes.
struct RangeSet: Equatable {
    private(set) var ranges: [ClosedRange<UInt64>] = []

    var isEmpty: Bool { ranges.isEmpty }
    var count: Int { ranges.count }
    var lowest: UInt64? { ranges.first?.lowerBound }
    var highest: UInt64? { ranges.last?.upperBound }

    func contains(_ v: UInt64) -> Bool {
        var lo = 0, hi = ranges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < v { lo = mid + 1 } else if ranges[mid].lowerBound > v { hi = mid - 1 } else { return true }
        }
        return false
    }

    /// Inserts `r`, merging with overlapping or adjacent ranges. Returns whether anything was new.
    @discardableResult
    mutating func insert(_ r: ClosedRange<UInt64>) -> Bool {
        // First range that touches r or lies after it.
        func endsBefore(_ x: ClosedRange<UInt64>) -> Bool { r.lowerBound > 0 && x.upperBound < r.lowerBound - 1 }
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if endsBefore(ranges[mid]) { lo = mid + 1 } else { hi = mid }
        }
        var lower = r.lowerBound, upper = r.upperBound
        var novel = true
        var j = lo
        while j < ranges.count, upper == .max || ranges[j].lowerBound <= upper + 1 {
            if ranges[j].lowerBound <= r.lowerBound && ranges[j].upperBound >= r.upperBound { novel = false }
            lower = min(lower, ranges[j].lowerBound)
            upper = max(upper, ranges[j].upperBound)
            j += 1
        }
        ranges.replaceSubrange(lo..<j, with: [lower...upper])
        return novel
    }

    @discardableResult
    mutating func insert(_ v: UInt64) -> Bool { insert(v...v) }

    /// The first run of values in `lower...upper` that the set does not contain, if any.
    func firstGap(in lower: UInt64, _ upper: UInt64) -> ClosedRange<UInt64>? {
        var start = lower
        // First range that ends at or after `start`.
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < start { lo = mid + 1 } else { hi = mid }
        }
        while lo < ranges.count, ranges[lo].lowerBound <= start {
            guard ranges[lo].upperBound < upper else { return nil }
            start = ranges[lo].upperBound + 1
            lo += 1
        }
        guard start <= upper else { return nil }
        let end = lo < ranges.count ? min(upper, ranges[lo].lowerBound - 1) : upper
        return start...end
    }

    /// Drops the lowest ranges so that at most `limit` remain.
    mutating func keepHighest(_ limit: Int) {
        if ranges.count > limit { ranges.removeFirst(ranges.count - limit) }
    }

    /// Removes everything below `v`.
    mutating func removeBelow(_ v: UInt64) {
        while let f = ranges.first, f.upperBound < v { ranges.removeFirst() }
        if let f = ranges.first, f.lowerBound < v { ranges[0] = v...f.upperBound }
    }
}
