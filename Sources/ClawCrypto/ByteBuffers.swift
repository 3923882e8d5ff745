// Glue between Swift buffers and libsodium's C signatures.

/// A valid address for empty buffers. Several libsodium parameters are declared nonnull even
/// when their length is zero, so an empty buffer (whose base address may be nil) is passed as
/// this instead; with a zero length it is never read or written. Stored as an integer so the
/// constant is trivially Sendable; allocated once and deliberately never freed.
private enum EmptyBuffer {
    static let address: UInt = {
        let storage = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0, count: 16)
        return UInt(bitPattern: storage)
    }()
}

/// The base address of `buffer` as libsodium expects it, never nil.
@inline(__always)
func sodiumPointer(_ buffer: UnsafeRawBufferPointer) -> UnsafePointer<UInt8> {
    if let base = buffer.baseAddress { return base.assumingMemoryBound(to: UInt8.self) }
    return UnsafePointer(bitPattern: EmptyBuffer.address)!
}

/// The mutable counterpart of `sodiumPointer(_:)`.
@inline(__always)
func sodiumMutablePointer(_ buffer: UnsafeMutableRawBufferPointer) -> UnsafeMutablePointer<UInt8> {
    if let base = buffer.baseAddress { return base.assumingMemoryBound(to: UInt8.self) }
    return UnsafeMutablePointer(bitPattern: EmptyBuffer.address)!
}

extension Array where Element == UInt8 {
    // Array.withUnsafeBytes is `rethrows`, which erases typed throws to `any Error`; these
    // keep the caller's error type.

    @inline(__always)
    func withBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = withUnsafeBytes { bytes in
            Swift.Result { () throws(Failure) -> Result in try body(bytes) }
        }
        return try outcome.get()
    }

    @inline(__always)
    mutating func withMutableBytes<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        let outcome: Swift.Result<Result, Failure> = withUnsafeMutableBytes { bytes in
            Swift.Result { () throws(Failure) -> Result in try body(bytes) }
        }
        return try outcome.get()
    }
}
