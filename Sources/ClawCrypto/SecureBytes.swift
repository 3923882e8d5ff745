import CSodium

/// Secret bytes (keys, chaining keys, shared secrets) kept in libsodium's guarded memory.
///
/// The storage comes from `sodium_malloc` (guard pages, locked against swapping where the
/// system allows) and is wiped and released by `sodium_free` when the object dies. `zeroize()`
/// wipes it earlier, on demand. The bytes never leave this storage unless a caller asks for
/// them explicitly with `copyToArray()` or reads them inside `withUnsafeBytes`.
///
/// Not `Sendable`: an instance belongs to the one event loop or state machine that owns it.
public final class SecureBytes {
    private let storage: UnsafeMutableRawPointer
    /// The number of secret bytes.
    public let count: Int

    /// Zero-filled storage for `count` bytes.
    public init(count: Int) {
        precondition(count >= 0, "SecureBytes count must not be negative")
        Sodium.ensureInitialized()
        // sodium_malloc(0) is legal but returns a pointer we could not touch; one byte keeps
        // every code path uniform.
        let allocation = Swift.max(count, 1)
        guard let pointer = sodium_malloc(allocation) else {
            fatalError("ClawCrypto: sodium_malloc(\(allocation)) failed: out of memory")
        }
        sodium_memzero(pointer, allocation)
        storage = pointer
        self.count = count
    }

    /// A secure copy of `bytes`. The source itself is not wiped: it is the caller's.
    public convenience init(copying bytes: some Collection<UInt8>) {
        self.init(count: bytes.count)
        let target = UnsafeMutableRawBufferPointer(start: storage, count: count)
        let copied: Void? = bytes.withContiguousStorageIfAvailable { source in
            target.copyMemory(from: UnsafeRawBufferPointer(source))
        }
        if copied == nil {
            for (offset, byte) in bytes.enumerated() { target[offset] = byte }
        }
    }

    /// `count` bytes from libsodium's CSPRNG.
    public static func random(count: Int) -> SecureBytes {
        let bytes = SecureBytes(count: count)
        bytes.withUnsafeMutableBytes { Random.fill($0) }
        return bytes
    }

    deinit {
        // sodium_free wipes the memory before unmapping it.
        sodium_free(storage)
    }

    /// Calls `body` with read access to the secret bytes. Do not let the pointer escape.
    public func withUnsafeBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: storage, count: count))
    }

    /// Calls `body` with write access to the secret bytes. Do not let the pointer escape.
    public func withUnsafeMutableBytes<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeMutableRawBufferPointer(start: storage, count: count))
    }

    /// Copies the secret out into an ordinary array, which is not wiped on release. Meant for
    /// tests and for serialising a key to its protected file, nothing else.
    public func copyToArray() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Overwrites the bytes with zeros now, rather than when the object is released.
    public func zeroize() {
        sodium_memzero(storage, count)
    }

    /// True when every byte is zero (checked in constant time). Lets tests prove that
    /// `zeroize()` really wiped the storage.
    public var isAllZero: Bool {
        sodium_is_zero(storage.assumingMemoryBound(to: UInt8.self), count) == 1
    }
}
