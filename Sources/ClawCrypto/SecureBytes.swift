import CSodium
import Glibc

/// Secret bytes (keys, chaining keys, shared secrets) kept in libsodium's guarded memory.
///
/// Small secrets (up to 64 bytes: every key and PSK) live in slots of `SecretSlab`s: 64 KiB
/// regions from `sodium_malloc` (guard pages around each region, locked against swapping where
/// the system allows, left out of core dumps). A slot is wiped when its object dies and reused.
/// Larger secrets get their own `sodium_malloc` region. One region per key would cost 8 KiB of
/// resident memory and 4 mappings per key: 18 KB and 12 mappings per session, and a daemon
/// past ~5,000 sessions would run out of mappings (`vm.max_map_count`). `zeroize()` wipes the
/// bytes earlier, on demand. The bytes never leave this storage unless a caller asks for them
/// explicitly with `copyToArray()` or reads them inside `withUnsafeBytes`.
///
/// Not `Sendable`: an instance belongs to the one event loop or state machine that owns it (the
/// slab pool itself is shared and locked).
public final class SecureBytes {
    private let storage: UnsafeMutableRawPointer
    /// The number of secret bytes.
    public let count: Int

    /// Zero-filled storage for `count` bytes.
    public init(count: Int) {
        precondition(count >= 0, "SecureBytes count must not be negative")
        Sodium.ensureInitialized()
        if count <= SecretSlab.slotSize {
            storage = SecretSlab.pool.allocate()
        } else {
            guard let pointer = sodium_malloc(count) else {
                fatalError("ClawCrypto: sodium_malloc(\(count)) failed: out of memory")
            }
            sodium_memzero(pointer, count)
            storage = pointer
        }
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
        if count <= SecretSlab.slotSize {
            sodium_memzero(storage, SecretSlab.slotSize)
            SecretSlab.pool.release(storage)
        } else {
            // sodium_free wipes the memory before unmapping it.
            sodium_free(storage)
        }
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

/// The pool of guarded regions that small secrets live in: whole 64 KiB `sodium_malloc` regions
/// cut into 64-byte slots, with a free list. Regions are kept once made (a daemon's number of
/// live keys rises and falls within the same range). Shared by every thread, behind a pthread
/// mutex (which ThreadSanitizer understands).
final class SecretSlab: @unchecked Sendable {
    static let slotSize = 64
    static let regionSize = 64 << 10
    static let pool = SecretSlab()

    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private var free: [UnsafeMutableRawPointer] = []
    private var regions: [UnsafeMutableRawPointer] = []

    private init() {
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return body()
    }

    /// A zeroed slot.
    func allocate() -> UnsafeMutableRawPointer {
        locked {
            if free.isEmpty {
                guard let region = sodium_malloc(Self.regionSize) else {
                    fatalError("ClawCrypto: sodium_malloc(\(Self.regionSize)) failed: out of memory")
                }
                sodium_memzero(region, Self.regionSize)
                regions.append(region)
                free.reserveCapacity(free.count + Self.regionSize / Self.slotSize)
                // Handed out from the region's start: the free list is a stack.
                for i in stride(from: Self.regionSize / Self.slotSize - 1, through: 0, by: -1) {
                    free.append(region + i * Self.slotSize)
                }
            }
            return free.removeLast()
        }
    }

    /// Takes back a slot its owner has wiped.
    func release(_ slot: UnsafeMutableRawPointer) {
        locked { free.append(slot) }
    }

    /// Regions made so far (tests).
    var regionCount: Int { locked { regions.count } }
}
