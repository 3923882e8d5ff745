import ClawReactor

/// The relay's draws from `SplitMix64` (ClawReactor).
extension SplitMix64 {
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
