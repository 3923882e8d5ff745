import ClawReactor
import Glibc

/// The conversation history on disk: an append-only JSON Lines file (see ``JournalRecord`` for the
/// line format) that survives `kill -9` or a power cut at any byte.
///
/// ``append(_:)`` returns only after the whole line is written and `fdatasync`ed, so an exchange
/// it returned for survives a crash; a crash during an append leaves at most a torn last line.
/// Loading trusts only complete lines whose checksum holds: a final line without "\n" is a torn
/// write and is cut off the file (so the next append does not glue onto it); a bad line in the
/// middle is skipped and counted, never fatal.
///
/// The file grows until it passes `maxBytes`; then it is rewritten through ``AtomicFile`` with only
/// the newest exchanges. Not thread-safe: it belongs to the event loop.
public final class ConversationJournal {
    /// Longest line that is written or read (a record with a 16 MB answer is not a conversation).
    public static let maxRecordBytes = 16 << 20

    public let path: String
    public let maxBytes: Int
    public let keep: Int

    /// The exchanges since the last `/clear`, oldest first; at most `keep`, and after a compaction
    /// only as many as fit in half of `maxBytes`.
    public private(set) var exchanges: [Exchange] = []
    /// Complete lines ignored while loading because they were corrupt or from a newer version.
    public private(set) var skippedLines = 0
    /// Why the first skipped line was skipped, with its line number, for the log.
    public private(set) var firstSkipReason: String?
    /// Bytes of a torn final line cut off the file while loading.
    public private(set) var discardedTailBytes = 0
    /// Why the last compaction failed, nil once one succeeds. The data is safe either way (the
    /// file is only bigger than wanted); compaction is tried again after the next append.
    public private(set) var compactionError: JournalError?

    /// The append descriptor; -1 after a compaction that renamed the new file in but could not
    /// open it, in which case the next write opens it again.
    private var fd: Int32
    /// Bytes in the file: all of them complete lines.
    private var size: Int
    /// A failed append could not be cut back off the file; the next one starts with "\n" so the
    /// remnant becomes a line of its own, skipped at load, instead of spoiling the new line.
    private var tailIsDirty = false
    /// The `write(2)` used for appends; tests substitute one that fails part way.
    var writeCall: (Int32, UnsafeRawPointer?, Int) -> Int = { Glibc.write($0, $1, $2) }

    /// Opens or creates (mode 0600) the journal at `path` and loads it.
    /// - Parameters:
    ///   - maxBytes: the file size that triggers a compaction.
    ///   - keep: the most exchanges kept in memory and through a compaction.
    public init(path: String, maxBytes: Int = 4 << 20, keep: Int = 500) throws(JournalError) {
        self.path = path
        self.maxBytes = max(maxBytes, 1)
        self.keep = max(keep, 1)
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        size = 0
        do {
            try load()
        } catch {
            close(fd)
            throw error
        }
        if size > self.maxBytes { compactAfterWrite() }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Stores a completed exchange durably. On failure the file is cut back to what it was and
    /// ``exchanges`` is unchanged.
    public func append(_ exchange: Exchange) throws(JournalError) {
        try write(JournalRecord.exchange(exchange).line)
        exchanges.append(exchange)
        if exchanges.count > keep { exchanges.removeFirst(exchanges.count - keep) }
        if size > maxBytes { compactAfterWrite() }
    }

    /// `/clear`: records the clear durably, empties ``exchanges`` and compacts, which leaves an
    /// empty file. The clear record is what counts: if the compaction fails, a reload still
    /// starts after it.
    public func clear(time: Int64) throws(JournalError) {
        try write(JournalRecord.clear(time: time).line)
        exchanges.removeAll()
        compactAfterWrite()
    }

    /// Rewrites the file with the newest exchanges: at most `keep`, and no more than fit in half of
    /// `maxBytes` (always the newest one), so the next compaction is many appends away rather than
    /// one. ``exchanges`` is cut to match, so memory and a reload agree.
    public func compact() throws(JournalError) {
        var lines: [[UInt8]] = []
        var total = 0
        for e in exchanges.reversed() {
            let line = JournalRecord.exchange(e).line
            if !lines.isEmpty && total + line.count > maxBytes / 2 { break }
            lines.append(line)
            total += line.count
        }
        let bytes = Array(lines.reversed().joined())
        do {
            try AtomicFile.write(bytes, to: path, mode: 0o600)
        } catch {
            throw .io(path: error.path, operation: error.operation, errno: error.code)
        }
        // The old descriptor points at the replaced file now; from here on only the new one counts.
        if fd >= 0 { close(fd) }
        exchanges.removeFirst(exchanges.count - lines.count)
        size = bytes.count
        tailIsDirty = false
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        if fd < 0 { throw .io(path: path, operation: "reopen after compaction", errno: errno) }
    }

    private func compactAfterWrite() {
        do {
            try compact()
            compactionError = nil
        } catch {
            compactionError = error
        }
    }

    /// Reads the file, applies every good line, and cuts off a torn final line.
    private func load() throws(JournalError) {
        let bytes = try readAll()
        var lineStart = 0
        var lineNumber = 0
        while let newline = bytes[lineStart...].firstIndex(of: 0x0A) {
            lineNumber += 1
            let line = bytes[lineStart..<newline]
            lineStart = newline + 1
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { continue }
            do {
                switch try JournalRecord(line: line) {
                case .exchange(let e): exchanges.append(e)
                case .clear: exchanges.removeAll()
                }
            } catch {
                skippedLines += 1
                if firstSkipReason == nil { firstSkipReason = "line \(lineNumber): \(error.reason)" }
            }
        }
        if exchanges.count > keep { exchanges.removeFirst(exchanges.count - keep) }
        size = lineStart
        discardedTailBytes = bytes.count - lineStart
        if discardedTailBytes > 0 {
            guard ftruncate(fd, off_t(lineStart)) == 0 else {
                throw .io(path: path, operation: "cut the torn last line off", errno: errno)
            }
            guard fsync(fd) == 0 else { throw .io(path: path, operation: "fsync", errno: errno) }
        }
    }

    private func readAll() throws(JournalError) -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(out.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "read", errno: errno)
            }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }

    /// Appends one whole line and syncs it; on any failure cuts the file back to `size`.
    private func write(_ record: [UInt8]) throws(JournalError) {
        guard record.count <= Self.maxRecordBytes + 1 else {
            throw .recordTooLarge(path: path, bytes: record.count, limit: Self.maxRecordBytes)
        }
        if fd < 0 {
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            guard fd >= 0 else { throw .io(path: path, operation: "reopen", errno: errno) }
        }
        var line = record
        if tailIsDirty {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw .io(path: path, operation: "fstat", errno: errno) }
            size = Int(st.st_size)
            line.insert(0x0A, at: 0)
        }
        var written = 0
        while written < line.count {
            let n = line[written...].withUnsafeBytes { writeCall(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                // write(2) returning 0 for a regular file means no room was found.
                let code = n < 0 ? errno : ENOSPC
                rollBack()
                throw .io(path: path, operation: "write", errno: code)
            }
            written += n
        }
        guard fdatasync(fd) == 0 else {
            let code = errno
            rollBack()
            throw .io(path: path, operation: "fdatasync", errno: code)
        }
        size += line.count
        tailIsDirty = false
    }

    private func rollBack() {
        if ftruncate(fd, off_t(size)) != 0 { tailIsDirty = true }
    }
}

/// A journal file operation that failed, with the path and the system's reason.
public enum JournalError: Error, Equatable, CustomStringConvertible {
    case io(path: String, operation: String, errno: Int32)
    /// One exchange would make a line longer than ``ConversationJournal/maxRecordBytes``.
    case recordTooLarge(path: String, bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .io(let path, let operation, let code):
            return "conversation journal \(path): \(operation) failed: \(String(cString: strerror(code)))"
        case .recordTooLarge(let path, let bytes, let limit):
            return "conversation journal \(path): an exchange of \(bytes) bytes exceeds the limit of \(limit) bytes and was not stored"
        }
    }
}
