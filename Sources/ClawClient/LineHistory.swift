import ClawReactor
import Glibc

/// The chat's line history on disk: one entry per line, newest last.
///
/// History is a convenience, so nothing here throws: a file that cannot be read gives no
/// history, an entry that cannot be written is lost, and the chat goes on. The file may hold
/// secrets typed by mistake, so it is created 0600 in a 0700 directory, and a line typed with a
/// leading space is never written (the shells' `HISTCONTROL=ignorespace` habit).
///
/// Appends are single `O_APPEND` writes, so two clients appending at once do not interleave. The
/// file may grow to twice `limit` lines before it is cut back to the newest `limit`, so that
/// most appends do not rewrite it.
public struct LineHistory {
    /// Entries longer than this are not saved: a pasted document is not worth recalling, and it
    /// would make the file's size unbounded where its line count is bounded.
    public static let maxEntryBytes = 16 << 10

    /// The newest `limit` entries of the file, oldest first; empty if it is missing or unreadable.
    /// Consecutive duplicates are merged, as the editor does in memory.
    public static func load(path: String, limit: Int = 1000) -> [String] {
        guard limit > 0, let text = read(path) else { return [] }
        var entries: [String] = []
        for raw in text.split(separator: UInt8(ascii: "\n")) {
            let entry = unescape(raw)
            if entry != entries.last { entries.append(entry) }
        }
        return Array(entries.suffix(limit))
    }

    /// Adds `line` to the file, then cuts the file back to `limit` entries if it holds more than
    /// twice that. Returns whether the line was saved; false also for a line that is empty,
    /// starts with a space, or is longer than `maxEntryBytes`.
    @discardableResult
    public static func append(_ line: String, path: String, limit: Int = 1000) -> Bool {
        guard !line.isEmpty, !line.hasPrefix(" "), line.utf8.count <= maxEntryBytes, limit > 0 else { return false }
        let dir = directory(of: path)
        if AtomicFile.mode(of: dir) == nil {
            do { try AtomicFile.ensureDirectory(dir, mode: 0o700) } catch { return false }
        }
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { return false }
        fchmod(fd, 0o600)  // tighten a file made by hand or under an odd umask
        let record = escape(line) + [UInt8(ascii: "\n")]
        var written: Int
        repeat {
            written = record.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        } while written < 0 && errno == EINTR
        close(fd)
        guard written == record.count else { return false }
        trim(path: path, limit: limit)
        return true
    }

    /// Rewrites the file with its newest `limit` lines once it holds more than twice as many.
    /// A line appended by another client between the read and the rename is lost; that is
    /// history, not data.
    private static func trim(path: String, limit: Int) {
        guard let bytes = read(path) else { return }
        let lines = bytes.split(separator: UInt8(ascii: "\n"))
        guard lines.count > 2 * limit else { return }
        var kept: [UInt8] = []
        for line in lines.suffix(limit) { kept += line; kept.append(UInt8(ascii: "\n")) }
        try? AtomicFile.write(kept, to: path, mode: 0o600)
    }

    /// Beside the identity: `$CLAWCHAT_CONFIG_DIR/history`, else `~/.config/clawchat/history`.
    public static func defaultPath() -> String {
        directory(of: defaultIdentityPath()) + "/history"
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func read(_ path: String) -> [UInt8]? {
        // Twice `limit` entries of the longest kind, with room for escapes: far above any real file.
        try? AtomicFile.read(path, limit: 64 << 20)
    }

    /// Newline, carriage return and backslash as `\n`, `\r` and `\\`, so that an entry is a line.
    static func escape(_ line: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(line.utf8.count)
        for b in line.utf8 {
            switch b {
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            default: out.append(b)
            }
        }
        return out
    }

    /// The inverse of `escape`; an unknown escape is kept as written.
    static func unescape(_ raw: some Collection<UInt8>) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var escaped = false
        for b in raw {
            if escaped {
                escaped = false
                switch b {
                case UInt8(ascii: "n"): out.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "r"): out.append(UInt8(ascii: "\r"))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
                default: out += [UInt8(ascii: "\\"), b]
                }
            } else if b == UInt8(ascii: "\\") {
                escaped = true
            } else {
                out.append(b)
            }
        }
        if escaped { out.append(UInt8(ascii: "\\")) }
        return String(decoding: out, as: UTF8.self)
    }
}
