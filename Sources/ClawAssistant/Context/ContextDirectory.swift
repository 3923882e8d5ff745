import ClawReactor
import Glibc

/// The assistant's context directory on disk:
///
///     SOUL.md  AGENTS.md  USER.md  MEMORY.md     written from ``DefaultContext`` on first run
///     memory/2026-11-30.md                       a daily log: every exchange of that local day
///
/// The owner edits the files; the daemon reads them with ``load(now:)`` (again on /reload) and
/// appends each completed exchange to today's log. All files are small and private (0600 in a
/// 0700 directory). Not thread-safe: it belongs to the event loop.
public final class ContextDirectory {
    /// The most of one file that is read: its beginning, or a daily log's end.
    public static let maxFileBytes = 256 << 10

    public let path: String
    /// Problems met by the last ``load(now:)``, for the log: unreadable or oversized files.
    public private(set) var warnings: [String] = []

    public init(path: String) {
        self.path = path
    }

    /// The daily log's name relative to the directory, `memory/YYYY-MM-DD.md`.
    public static func dailyLogName(_ date: LocalDate) -> String {
        "memory/\(date).md"
    }

    /// The files in priority order for the local day of `now`: the four fixed ones, then today's
    /// and yesterday's logs.
    public static func fileNames(now: Int64) -> [String] {
        let today = LocalDate(unixTime: now)
        return DefaultContext.files.map(\.name) + [dailyLogName(today), dailyLogName(today.previous)]
    }

    /// Creates the directory and `memory/` (0700) if missing and writes each missing default file
    /// (0600). An existing file, even an empty one or a symlink, is never replaced: it is the
    /// owner's. Returns the names of the files created.
    public func ensureDefaults() throws(ContextError) -> [String] {
        for dir in [path, path + "/memory"] {
            var st = stat()
            if stat(dir, &st) == 0 { continue }
            guard errno == ENOENT else { throw ContextError(path: dir, operation: "stat", code: errno) }
            do {
                try AtomicFile.ensureDirectory(dir, mode: 0o700)
            } catch {
                throw ContextError(error)
            }
        }
        var created: [String] = []
        for (name, content) in DefaultContext.files {
            let file = "\(path)/\(name)"
            var st = stat()
            if lstat(file, &st) == 0 { continue }
            guard errno == ENOENT else { throw ContextError(path: file, operation: "stat", code: errno) }
            do {
                try AtomicFile.write(Array(content.utf8), to: file, mode: 0o600)
            } catch {
                throw ContextError(error)
            }
            created.append(name)
        }
        return created
    }

    /// Reads the files of ``fileNames(now:)``; a missing file is nil. A file that cannot be read is
    /// nil too, with the reason in ``warnings``, so one bad file never silences the rest.
    public func load(now: Int64) -> [ContextFile] {
        warnings = []
        return Self.fileNames(now: now).map { name in
            ContextFile(name: name, content: read(name, keepEnd: name.hasPrefix("memory/")))
        }
    }

    /// Appends one exchange to the local day's log, creating the file with a `# YYYY-MM-DD`
    /// heading. The entry goes out in one `O_APPEND` write and is `fdatasync`ed; if the write
    /// fails part way the file is cut back, so the log never holds half an entry.
    public func appendDailyLog(user: String, assistant: String, time: Int64) throws(ContextError) {
        let date = LocalDate(unixTime: time)
        let memory = path + "/memory"
        var st = stat()
        if stat(memory, &st) != 0 {
            do {
                try AtomicFile.ensureDirectory(memory, mode: 0o700)
            } catch {
                throw ContextError(error)
            }
        }
        let file = "\(path)/\(Self.dailyLogName(date))"
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ContextError(path: file, operation: "open", code: errno) }
        defer { close(fd) }
        guard fstat(fd, &st) == 0 else { throw ContextError(path: file, operation: "fstat", code: errno) }
        let start = st.st_size
        var entry = start == 0 ? "# \(date)\n" : ""
        entry += "\n### \(LocalDate.clockTime(unixTime: time))\n\n"
        entry += "**User:** \(ContextAssembler.trimmed(user))\n\n**Claw:** \(ContextAssembler.trimmed(assistant))\n"
        let bytes = Array(entry.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 {
                let code = n < 0 ? errno : ENOSPC
                _ = ftruncate(fd, start)
                throw ContextError(path: file, operation: "write", code: code)
            }
            written += n
        }
        guard fdatasync(fd) == 0 else { throw ContextError(path: file, operation: "fdatasync", code: errno) }
    }

    /// At most ``maxFileBytes`` of `name`: its beginning, or its end when `keepEnd`, cut on a
    /// character boundary.
    private func read(_ name: String, keepEnd: Bool) -> String? {
        let file = "\(path)/\(name)"
        // O_NONBLOCK: a FIFO in place of a file must not hang the loop; regular files ignore it.
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            if errno != ENOENT { warn(file, "open", errno) }
            return nil
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { warn(file, "fstat", errno); return nil }
        guard st.st_mode & S_IFMT == S_IFREG else {
            warn(file, "read", st.st_mode & S_IFMT == S_IFDIR ? EISDIR : EINVAL)
            return nil
        }
        let size = Int(st.st_size)
        let offset = keepEnd ? max(0, size - Self.maxFileBytes) : 0
        if size > Self.maxFileBytes {
            warnings.append("\(file) is \(size) bytes; only its \(keepEnd ? "last" : "first") \(Self.maxFileBytes) are used")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count < Self.maxFileBytes {
            let want = min(buffer.count, Self.maxFileBytes - bytes.count)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset + bytes.count)) }
            if n < 0 {
                if errno == EINTR { continue }
                warn(file, "read", errno)
                return nil
            }
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        if offset > 0 {
            let lead = bytes.firstIndex { $0 & 0xC0 != 0x80 } ?? bytes.count
            bytes.removeFirst(lead)
        } else if size > bytes.count {
            bytes.removeLast(Self.incompleteTail(bytes))
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// How many bytes at the end of `bytes` are an unfinished UTF-8 sequence.
    private static func incompleteTail(_ bytes: [UInt8]) -> Int {
        var i = bytes.count - 1
        while i >= 0 && bytes[i] & 0xC0 == 0x80 && bytes.count - i < 4 { i -= 1 }
        guard i >= 0 else { return 0 }
        let lead = bytes[i]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
        return bytes.count - i < length ? bytes.count - i : 0
    }

    private func warn(_ file: String, _ operation: String, _ code: Int32) {
        warnings.append(ContextError(path: file, operation: operation, code: code).description)
    }
}

/// A context file operation that failed, with the path and the system's reason.
public struct ContextError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let operation: String
    public let code: Int32

    public init(path: String, operation: String, code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
    }

    init(_ error: FileError) {
        self.init(path: error.path, operation: error.operation, code: error.code)
    }

    public var description: String { "context file \(path): \(operation) failed: \(String(cString: strerror(code)))" }
}
