import ClawChannel
import ClawCrypto
import ClawReactor
import Glibc

/// Hashes bytes `[start, end)` of an open file on the loop, a few MiB per turn, so that hashing
/// a large file before an upload (or the part file of a resumed download) never freezes the
/// chat or the progress line. Ends with the hasher itself, not a digest, so the caller can feed
/// it more (a download goes on with the bytes that arrive).
final class FileHashing {
    /// A copy of the hasher's state at an offset. `SHA256.Hasher` is a value holding the C
    /// state, so a copy is an independent hasher that can be continued from there.
    struct Snapshot {
        let offset: Int64
        let state: SHA256.Hasher
    }

    static let readSize = 1 << 20
    /// The work done in one loop turn: at most this long, or this many reads.
    static let turnBudget: Duration = .milliseconds(5)
    static let readsPerTurn = 8

    private unowned let loop: EventLoop
    private let fd: Int32
    private let path: String
    private var hasher: SHA256.Hasher
    private var position: Int64
    private let end: Int64
    private let snapshotEvery: Int64
    private(set) var snapshots: [Snapshot] = []
    private var timer: Timer?
    private var buffer: [UInt8] = []
    private let onStep: (Int64) -> Void
    private let onDone: (Result<SHA256.Hasher, FileClientError>) -> Void

    /// `snapshotEvery` (a multiple of `readSize`, or 0 for none) keeps a copy of the state at
    /// every such offset: an upload that learns only later where the daemon's part ends hashes
    /// at most that much again to check it.
    init(loop: EventLoop, fd: Int32, path: String, from start: Snapshot = Snapshot(offset: 0, state: SHA256.Hasher()),
         to end: Int64, snapshotEvery: Int64 = 0,
         onStep: @escaping (Int64) -> Void, onDone: @escaping (Result<SHA256.Hasher, FileClientError>) -> Void) {
        precondition(snapshotEvery % Int64(Self.readSize) == 0, "snapshots fall on read boundaries")
        self.loop = loop
        self.fd = fd
        self.path = path
        hasher = start.state
        position = start.offset
        self.end = end
        self.snapshotEvery = snapshotEvery
        self.onStep = onStep
        self.onDone = onDone
        if snapshotEvery > 0 { snapshots.append(start) }
    }

    /// The snapshot interval for a file of `size` bytes: 1 MiB, growing so that at most about
    /// 1024 snapshots (100 KB of state) are kept whatever the size.
    static func snapshotInterval(forSize size: Int64) -> Int64 {
        let step = Int64(readSize)
        let wanted = max(step, size / 1024)
        return (wanted + step - 1) / step * step
    }

    /// The latest snapshot at or before `offset`.
    func snapshot(atOrBefore offset: Int64) -> Snapshot? {
        snapshots.last { $0.offset <= offset }
    }

    func start() {
        buffer = [UInt8](repeating: 0, count: Self.readSize)
        timer = Timer(loop: loop) { [unowned self] in self.turn() }
        timer?.schedule(after: .zero)
    }

    func cancel() {
        timer = nil
        buffer = []
    }

    private func turn() {
        let began = loop.clock.now
        var reads = 0
        while position < end {
            let want = Int(min(Int64(Self.readSize), end - position))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(position)) }
            if n < 0 {
                if errno == EINTR { continue }
                finish(.failure(.system("read", path)))
                return
            }
            if n == 0 {
                finish(.failure(.localUnusable(path: path, reason: "the file got shorter while it was read")))
                return
            }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            position += Int64(n)
            if snapshotEvery > 0, position % snapshotEvery == 0 { snapshots.append(Snapshot(offset: position, state: hasher)) }
            reads += 1
            if reads >= Self.readsPerTurn || loop.clock.now - began >= Self.turnBudget { break }
        }
        onStep(position)
        if position < end { timer?.schedule(after: .zero); return }
        finish(.success(hasher))
    }

    private func finish(_ r: Result<SHA256.Hasher, FileClientError>) {
        cancel()
        onDone(r)
    }
}

/// The digest of a hasher's input so far, without consuming it.
func hexDigest(of hasher: SHA256.Hasher) -> String {
    let copy = hasher
    return hexString(copy.finalize())
}
