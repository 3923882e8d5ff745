import CShim
import Glibc

/// The shared folder of PROTOCOL.md 10.6 and every operation on it. Each path is resolved at the
/// moment of use from an fd of the root with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, so
/// nothing outside the root is reached, also through a symlink swapped in mid-operation; changes
/// then act on the resolved parent directory's fd with one name (`unlinkat`, `renameat2`, ...),
/// which never follows a final symlink.
///
/// Where the kernel lacks `openat2` the paths are walked one component at a time with
/// `openat(O_NOFOLLOW)`, and then every symlink on a path is refused, also one pointing inside.
///
/// Not thread-safe: one loop thread uses it. Errors name the path as the client gave it, never the
/// root's location on the server (except those of `init`, which are for the operator).
public final class Sandbox {
    /// What `stat` and `list` report of an entry.
    public struct FileInfo: Equatable, Sendable {
        public enum Kind: String, Sendable { case file, dir, link, other }
        public var kind: Kind
        public var size: Int64
        /// The permission bits (`mode & 0o7777`).
        public var mode: UInt32
        /// Unix seconds.
        public var mtime: Int64

        public init(kind: Kind, size: Int64, mode: UInt32, mtime: Int64) {
            self.kind = kind
            self.size = size
            self.mode = mode
            self.mtime = mtime
        }

        init(_ st: Glibc.stat) {
            switch st.st_mode & S_IFMT {
            case S_IFREG: kind = .file
            case S_IFDIR: kind = .dir
            case S_IFLNK: kind = .link
            default: kind = .other
            }
            size = Int64(st.st_size)
            mode = UInt32(st.st_mode & 0o7777)
            mtime = Int64(st.st_mtim.tv_sec)
        }
    }

    /// One entry of a directory listing.
    public struct FileEntry: Equatable, Sendable {
        public var name: String
        public var info: FileInfo

        public init(name: String, info: FileInfo) {
            self.name = name
            self.info = info
        }
    }

    /// How paths are resolved beneath the root.
    enum Resolution: Sendable {
        /// `openat2(RESOLVE_BENEATH)`: symlinks inside the root are followed.
        case openat2
        /// `openat(O_NOFOLLOW)` per component, for kernels before 5.6: symlinks are refused.
        case noFollowWalk
    }

    /// Every change is refused with `read-only`.
    public let readOnly: Bool
    let rootFD: Int32
    let resolution: Resolution

    /// Opens the shared folder at `root`, creating it (mode 0700) if it is missing. The folder is
    /// held open, so it keeps working if it is renamed later.
    public convenience init(root: String, readOnly: Bool = false) throws(FileOpError) {
        try self.init(root: root, readOnly: readOnly, forceNoFollowWalk: false)
    }

    /// `forceNoFollowWalk` lets tests take the path of kernels without `openat2`.
    init(root: String, readOnly: Bool, forceNoFollowWalk: Bool) throws(FileOpError) {
        try Self.createDirectory(root)
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FileOpError(.io, root, "cannot open the shared folder: \(String(cString: strerror(errno)))")
        }
        var resolution = Resolution.openat2
        let probe = cshim_openat2(fd, ".", cshim_O_PATH | O_CLOEXEC, 0, 1)
        if probe >= 0 {
            close(probe)
        } else if errno == ENOSYS || errno == EPERM {
            resolution = .noFollowWalk  // old kernel, or a seccomp filter that does not know openat2
        } else {
            let e = errno
            close(fd)
            throw FileOpError(.io, root, "cannot open the shared folder: \(String(cString: strerror(e)))")
        }
        self.rootFD = fd
        self.readOnly = readOnly
        self.resolution = forceNoFollowWalk ? .noFollowWalk : resolution
    }

    deinit { close(rootFD) }

    /// The entry at `path`; a final symlink is followed (inside the root only).
    public func stat(_ path: String) throws(FileOpError) -> FileInfo {
        let components = try SandboxPath.components(path)
        let fd = try openBeneath(components[...], cshim_O_PATH, path: path)
        defer { close(fd) }
        return try info(of: fd, path)
    }

    /// The entries of the directory at `path`, sorted by name (bytewise), symlinks not followed.
    /// Upload temp files (`.NAME.clawchat-part`) are left out. Names that are not valid UTF-8 come
    /// out with U+FFFD in place of the bad bytes.
    public func list(_ path: String) throws(FileOpError) -> [FileEntry] {
        let components = try SandboxPath.components(path)
        let fd = try openBeneath(components[...], O_RDONLY | O_DIRECTORY, path: path)
        var entries: [FileEntry] = []
        try Self.forEachName(inDirectory: fd, path) { (dir: Int32, name: UnsafePointer<CChar>) throws(FileOpError) in
            let text = String(cString: name)
            if Self.isPartFileName(text) { return }
            var st = Glibc.stat()
            guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { return }  // removed since it was read
                throw FileOpError.system(errno, path)
            }
            entries.append(FileEntry(name: text, info: FileInfo(st)))
        }
        entries.sort { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        return entries
    }

    /// Opens the regular file at `path` for reading (`O_RDONLY | O_CLOEXEC | O_NOCTTY`); a final
    /// symlink is followed inside the root. The caller closes the fd.
    public func openFile(_ path: String) throws(FileOpError) -> (fd: Int32, info: FileInfo) {
        let components = try SandboxPath.components(path)
        // O_NONBLOCK so that a FIFO cannot hang the loop in open(); it is cleared below.
        let fd = try openBeneath(components[...], O_RDONLY | O_NOCTTY | O_NONBLOCK, path: path)
        do throws(FileOpError) {
            let info = try info(of: fd, path)
            switch info.kind {
            case .file: break
            case .dir: throw FileOpError(.isADirectory, SandboxPath.shown(path), "is a directory, not a file")
            case .link, .other:
                throw FileOpError(.io, SandboxPath.shown(path), "is not a regular file (a device, FIFO or socket)")
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return (fd, info)
        } catch {
            close(fd)
            throw error
        }
    }

    func info(of fd: Int32, _ path: String) throws(FileOpError) -> FileInfo {
        var st = Glibc.stat()
        guard fstat(fd, &st) == 0 else { throw FileOpError.system(errno, path) }
        return FileInfo(st)
    }

    /// Calls `body` with each name of the directory `fd` (except `.` and `..`) and an fd of the
    /// directory for `*at` calls. Takes ownership of `fd`.
    static func forEachName(inDirectory fd: Int32, _ path: String,
                            _ body: (Int32, UnsafePointer<CChar>) throws(FileOpError) -> Void) throws(FileOpError) {
        guard let dir = fdopendir(fd) else {
            let e = errno
            close(fd)
            throw FileOpError.system(e, path)
        }
        defer { closedir(dir) }
        while true {
            guard let name = cshim_readdir_name(dir) else {
                if errno != 0 { throw FileOpError.system(errno, path) }
                return
            }
            if strcmp(name, ".") == 0 || strcmp(name, "..") == 0 { continue }
            try body(fd, name)
        }
    }

    /// Creates `path` and its missing parents with mode 0700; an existing directory is left as is.
    private static func createDirectory(_ path: String) throws(FileOpError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        var e = errno
        if e == ENOENT, let slash = path.lastIndex(of: "/"), slash != path.startIndex {
            try createDirectory(String(path[..<slash]))
            if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
            e = errno
        }
        throw FileOpError(.io, path, "cannot create the shared folder: \(String(cString: strerror(e)))")
    }
}
