/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny, fast generator whose whole state is one
/// counter, so a seed fully determines the sequence on every platform and Swift version. The
/// standard library's generator is neither seedable nor specified, which rules it out for
/// reproducible impairment runs. Not for cryptography.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform draw in [0, 100), compared against a percentage.
    mutating func nextPercent() -> Double {
        Double(next() >> 11) * 0x1p-53 * 100
    }

    /// A uniform draw in [-bound, +bound] (Lemire's multiply-high; the bias is below 2^-40 for
    /// any bound this relay sees).
    mutating func nextSymmetric(_ bound: Int64) -> Int64 {
        guard bound > 0 else {
            _ = next()
            return 0
        }
        let span = UInt64(bound) * 2 + 1
        return Int64(next().multipliedFullWidth(by: span).high) - bound
    }
}
