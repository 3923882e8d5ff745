import CSodium

/// Compares two byte strings in time that depends only on their length, never on where they
/// differ, so that tags and MACs can be checked without a timing side channel.
/// Byte strings of different lengths are unequal (the lengths themselves are not secret).
public func constantTimeEqual(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    guard let left = lhs.baseAddress, let right = rhs.baseAddress else { return true }
    Sodium.ensureInitialized()
    return sodium_memcmp(left, right, lhs.count) == 0
}

/// Array form of `constantTimeEqual(_:_:)`.
public func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
    lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEqual(left, right) } }
}

/// Compares two secrets without copying them out of secure memory.
public func constantTimeEqual(_ lhs: SecureBytes, _ rhs: SecureBytes) -> Bool {
    lhs.withUnsafeBytes { left in rhs.withUnsafeBytes { right in constantTimeEqual(left, right) } }
}
