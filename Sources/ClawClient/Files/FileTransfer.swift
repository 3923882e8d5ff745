/// A download or upload in progress: the handle `FileClient` returns. The transfer keeps itself
/// alive until it ends; dropping the handle does not stop it, `cancel()` does.
public final class FileTransfer {
    public enum Direction: Sendable { case download, upload }

    /// Where a transfer stands, for a progress line.
    public struct Progress: Equatable, Sendable {
        public enum Phase: Equatable, Sendable {
            /// Hashing local bytes before sending (an upload, or the part file of a resumed
            /// download).
            case hashing
            /// Bytes crossing the network.
            case transferring
            /// Started again from byte 0 (the part kept on one side differs); reported once.
            case restarting(reason: String)
        }
        public var phase: Phase
        /// Bytes hashed, or bytes of the file in place on the receiving side.
        public var done: Int64
        /// The file's size; -1 while a download does not know it yet.
        public var total: Int64
        /// Where this attempt started (the bytes kept from an earlier one).
        public var resumedFrom: Int64
    }

    public let direction: Direction
    public let remote: String
    public let local: String
    public private(set) var isFinished = false
    var onCancel: () -> Void = {}
    /// Set by `FileClient`, which keeps the transfer alive until this runs (before `done`).
    var onFinished: () -> Void = {}

    init(direction: Direction, remote: String, local: String) {
        self.direction = direction
        self.remote = remote
        self.local = local
    }

    /// Stops the transfer; its `done` reports `.cancelled`. What has arrived stays (the local
    /// `.clawchat-part` file, or the daemon's), so the same transfer later resumes.
    public func cancel() {
        guard !isFinished else { return }
        onCancel()
    }

    func markFinished() {
        isFinished = true
        onCancel = {}
        let finished = onFinished
        onFinished = {}
        finished()
    }
}

/// What a finished transfer did.
public struct TransferSummary: Equatable, Sendable {
    /// The file's size.
    public var bytes: Int64
    /// Bytes that crossed the network this time (less than `bytes` after a resume).
    public var transferred: Int64
    /// Bytes that were already in place from an earlier, interrupted transfer.
    public var resumedFrom: Int64
    public var seconds: Double
    /// SHA-256 of the whole file, hex; both sides agreed on it.
    public var sha256: String

    public init(bytes: Int64, transferred: Int64, resumedFrom: Int64, seconds: Double, sha256: String) {
        self.bytes = bytes
        self.transferred = transferred
        self.resumedFrom = resumedFrom
        self.seconds = seconds
        self.sha256 = sha256
    }
}
