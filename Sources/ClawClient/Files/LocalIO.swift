import ClawReactor
import Glibc

/// Small loops over the system calls a transfer makes, each turning a failure into a
/// `FileClientError` naming the local path.
enum LocalIO {
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int64, path: String) throws(FileClientError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { b in
                pwrite(fd, b.baseAddress! + written, b.count - written, off_t(offset) + off_t(written))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("write", path)
            }
            written += n
        }
    }

    /// Reads exactly `count` bytes at `offset`.
    static func read(_ fd: Int32, count: Int, at offset: Int64, path: String) throws(FileClientError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { b in pread(fd, b.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .system("read", path)
            }
            if n == 0 { throw .localUnusable(path: path, reason: "the file got shorter while it was sent") }
            got += n
        }
        return out
    }

    /// Makes a rename in the directory of `path` durable.
    static func syncDirectory(of path: String) {
        let dfd = open(AtomicFile.directory(of: path), O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// What is at `path` (not following a final symlink), or nil when nothing is.
    static func kind(of path: String) -> mode_t? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    /// The mode a new file gets here: 0666 less the umask, as `cp` or `scp` would create it.
    static var defaultFileMode: mode_t {
        let mask = umask(0o022)
        umask(mask)
        return 0o666 & ~mask
    }
}
