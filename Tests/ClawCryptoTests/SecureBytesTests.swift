import ClawCrypto
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
