@testable import ClawCrypto
import Testing

@Test func secureBytesStartZeroFilled() {
    let bytes = SecureBytes(count: 48)
    #expect(bytes.count == 48)
    #expect(bytes.isAllZero)
}

@Test func secureBytesCopyHoldsTheSourceBytes() {
    let source: [UInt8] = [1, 2, 3, 250]
    #expect(SecureBytes(copying: source).copyToArray() == source)
    #expect(SecureBytes(copying: source[1...]).copyToArray() == [2, 3, 250])
    #expect(SecureBytes(copying: [UInt8]()).count == 0)
}

@Test func zeroizeWipesTheStorage() {
    let secret = SecureBytes.random(count: 32)
    #expect(!secret.isAllZero)
    secret.zeroize()
    #expect(secret.isAllZero)
    #expect(secret.copyToArray() == [UInt8](repeating: 0, count: 32))
}

@Test func mutableAccessWritesThrough() {
    let bytes = SecureBytes(count: 4)
    bytes.withUnsafeMutableBytes { $0[2] = 7 }
    #expect(bytes.copyToArray() == [0, 0, 7, 0])
}

@Test func constantTimeEqualComparesContentAndLength() {
    #expect(constantTimeEqual([1, 2, 3], [1, 2, 3]))
    #expect(!constantTimeEqual([1, 2, 3], [1, 2, 4]))
    #expect(!constantTimeEqual([1, 2, 3], [1, 2]))
    #expect(constantTimeEqual([], []))
    #expect(constantTimeEqual(SecureBytes(copying: [9, 9]), SecureBytes(copying: [9, 9])))
    #expect(!constantTimeEqual(SecureBytes(copying: [9, 9]), SecureBytes(copying: [9, 8])))
}

@Test func randomBytesDifferAndUniformStaysInRange() {
    #expect(Random.bytes(count: 32) != Random.bytes(count: 32))
    #expect(Random.bytes(count: 0).isEmpty)
    for _ in 0..<1000 { #expect(Random.uniform(10) < 10) }
    var buffer = [UInt8](repeating: 0, count: 64)
    buffer.withUnsafeMutableBytes { Random.fill($0) }
    #expect(buffer != [UInt8](repeating: 0, count: 64))
}

/// Small secrets share guarded regions: 10,000 keys (five thousand sessions' worth) take a
/// handful of 64 KiB regions, not 10,000 mappings; slots never overlap, and a reused slot
/// starts zeroed.
@Test func smallSecretsShareSlabsAndAReusedSlotStartsZeroed() {
    let before = SecretSlab.pool.regionCount
    var keys = (0..<10_000).map { i in SecureBytes(copying: [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 32)) }
    let after = SecretSlab.pool.regionCount
    // (Other tests run at the same time and allocate too: the bound is loose, the point is
    // that it is nowhere near one region per key.)
    #expect(after - before < 50, "\(after - before) regions for 10,000 keys")
    // Every key still holds its own bytes: no two slots overlap.
    #expect(keys.enumerated().allSatisfy { i, k in k.copyToArray() == [UInt8](repeating: UInt8(truncatingIfNeeded: i), count: 32) })
    keys.removeAll()
    let again = (0..<1_000).map { _ in SecureBytes(count: 64) }
    #expect(again.allSatisfy { $0.isAllZero }, "a slot is wiped before it is handed out again")
    let reused = SecretSlab.pool.regionCount
    #expect(reused == after, "freed slots are reused")
    // Past the slot size, a secret gets its own region.
    let big = SecureBytes.random(count: 4096)
    #expect(!big.isAllZero && big.count == 4096)
}
