/// Anti-replay filter for transport counters, in the style of RFC 6479: a ring of 64-bit words.
///
/// A counter is accepted at most once, and only if it is not more than `windowSize` behind the
/// highest counter seen. Ahead-of-window counters slide the window, clearing the words they pass.
/// Check a counter only after its packet has authenticated, or a forger could slide the window.
public struct ReplayWindow: Sendable {
    static let wordBits = 64
    static let ringWords = 128
    /// How far behind the newest counter a packet may be and still be accepted: 8128.
    public static let windowSize = UInt64((ringWords - 1) * wordBits)
    /// Counters at or past this limit are refused (the key must be replaced long before).
    public static let rejectAfterMessages = UInt64.max - (1 << 13)

    private var ring = [UInt64](repeating: 0, count: ringWords)
    /// The highest counter accepted so far.
    public private(set) var highest: UInt64 = 0
    private var sawAny = false

    public init() {}

    /// Accepts `counter` if it was never seen and is inside the window; marks it seen.
    public mutating func accept(_ counter: UInt64) -> Bool {
        guard counter < Self.rejectAfterMessages else { return false }
        let block = Int(truncatingIfNeeded: (counter / UInt64(Self.wordBits)) % UInt64(Self.ringWords))
        if !sawAny || counter > highest {
            let current = sawAny ? highest / UInt64(Self.wordBits) : 0
            let target = counter / UInt64(Self.wordBits)
            // Clear the words the window slides over (all of them if it jumps a whole ring).
            let toClear = sawAny ? min(target - current, UInt64(Self.ringWords)) : UInt64(Self.ringWords)
            var i: UInt64 = 1
            while i <= toClear {
                ring[Int(truncatingIfNeeded: (current + i) % UInt64(Self.ringWords))] = 0
                i += 1
            }
            highest = counter
            sawAny = true
        } else if highest - counter > Self.windowSize {
            return false
        }
        let bit = UInt64(1) << (counter % UInt64(Self.wordBits))
        if ring[block] & bit != 0 { return false }
        ring[block] |= bit
        return true
    }

    /// Whether `counter` would be accepted, without recording it.
    public func wouldAccept(_ counter: UInt64) -> Bool {
        guard counter < Self.rejectAfterMessages else { return false }
        if !sawAny || counter > highest { return true }
        if highest - counter > Self.windowSize { return false }
        let block = Int(truncatingIfNeeded: (counter / UInt64(Self.wordBits)) % UInt64(Self.ringWords))
        return ring[block] & (UInt64(1) << (counter % UInt64(Self.wordBits))) == 0
    }
}
