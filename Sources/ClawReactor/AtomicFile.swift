import Glibc

/// A file-system failure with the path and the reason, fit to show to the user.
public struct FileError: Error, CustomStringConvertible, Equatable {
    public let path: String
    public let operation: String
    public let code: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(code)))" }
}

/// Small, whole-file reads and crash-safe writes: temp file, fsync, rename, fsync of the directory.
/// A reader sees the old file or the new one, never a half-written one.
public enum AtomicFile {
    public static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o600) throws(FileError) {
        let dir = directory(of: path)
        let tmp = "\(path).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw FileError(path: tmp, operation: "create", code: errno) }
        var ok = false
        defer { if !ok { unlink(tmp) } }
        fchmod(fd, mode)  // the umask must not widen or narrow what we asked for
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                close(fd)
                throw FileError(path: tmp, operation: "write", code: e)
            }
            offset += n
        }
        if fsync(fd) != 0 { let e = errno; close(fd); throw FileError(path: tmp, operation: "fsync", code: e) }
        close(fd)
        guard rename(tmp, path) == 0 else { throw FileError(path: path, operation: "rename into", code: errno) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Reads a whole (small) file; nil if it does not exist.
    public static func read(_ path: String, limit: Int = 1 << 20) throws(FileError) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw FileError(path: path, operation: "open", code: errno)
        }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw FileError(path: path, operation: "read", code: errno) }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > limit { throw FileError(path: path, operation: "read (file too large)", code: EFBIG) }
        }
        return out
    }

    public static func remove(_ path: String) {
        unlink(path)
    }

    /// Creates a directory (and its parents) and sets its mode, e.g. 0700 for secrets.
    public static func ensureDirectory(_ path: String, mode: mode_t) throws(FileError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: prefix, operation: "mkdir", code: errno)
            }
        }
        guard chmod(path, mode) == 0 else { throw FileError(path: path, operation: "chmod", code: errno) }
    }

    /// The permission bits of a file, or nil if it does not exist.
    public static func mode(of path: String) -> mode_t? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return st.st_mode & 0o7777
    }

    /// The directory part of a path ("." for a bare name).
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
