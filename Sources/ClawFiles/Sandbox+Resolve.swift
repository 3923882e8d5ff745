import CShim
import Glibc

/// Looking paths up beneath the root: the one place where a path becomes an fd.
extension Sandbox {
    /// Opens `components` beneath the root with `flags` (O_CLOEXEC is added) and `mode` (for
    /// O_CREAT). A final symlink is followed (inside the root) unless `flags` has O_NOFOLLOW; in
    /// the O_NOFOLLOW walk every symlink is refused. `path` is the client's, for errors.
    func openBeneath(_ components: ArraySlice<String>, _ flags: Int32, mode: mode_t = 0,
                     path: String) throws(FileOpError) -> Int32 {
        switch resolution {
        case .openat2:
            let relative = components.isEmpty ? "." : components.joined(separator: "/")
            let fd = cshim_openat2(rootFD, relative, flags | O_CLOEXEC, Int32(mode), 1)
            guard fd >= 0 else { throw FileOpError.system(errno, path, resolving: true) }
            return fd
        case .noFollowWalk:
            return try walk(components, flags, mode: mode, path: path)
        }
    }

    /// The directory that holds the last of `components` (which must not be empty), opened beneath
    /// the root with `flags` (O_PATH by default; O_RDONLY where it is fsynced), and that name.
    func openParent(_ components: [String], path: String,
                    flags: Int32 = cshim_O_PATH) throws(FileOpError) -> (fd: Int32, name: String) {
        precondition(!components.isEmpty, "the root has no parent")
        let fd = try openBeneath(components.dropLast(), flags | O_DIRECTORY, path: path)
        return (fd, components[components.count - 1])
    }

    /// The O_NOFOLLOW walk: each directory is opened relative to the fd of the one before, so a
    /// symlink swapped in mid-walk is met by O_NOFOLLOW, never followed.
    private func walk(_ components: ArraySlice<String>, _ flags: Int32, mode: mode_t,
                      path: String) throws(FileOpError) -> Int32 {
        guard let last = components.last else { return try checked(openat(rootFD, ".", flags | O_CLOEXEC), path) }
        var dir = rootFD
        defer { if dir != rootFD { close(dir) } }
        for name in components.dropLast() {
            let next = openat(dir, name, cshim_O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw refusal(errno, dir, name, path) }
            if dir != rootFD { close(dir) }
            dir = next
        }
        let fd = openat(dir, last, flags | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw refusal(errno, dir, last, path) }
        // O_PATH | O_NOFOLLOW opens a final symlink itself instead of failing.
        var st = Glibc.stat()
        if fstat(fd, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK {
            close(fd)
            throw Self.symlinkRefused(path)
        }
        return fd
    }

    private func checked(_ fd: Int32, _ path: String) throws(FileOpError) -> Int32 {
        guard fd >= 0 else { throw FileOpError.system(errno, path) }
        return fd
    }

    /// O_NOFOLLOW says ELOOP, and O_DIRECTORY | O_NOFOLLOW says ENOTDIR, when `name` is a symlink.
    private func refusal(_ e: Int32, _ dir: Int32, _ name: String, _ path: String) -> FileOpError {
        var st = Glibc.stat()
        if e == ELOOP || e == ENOTDIR, fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0, st.st_mode & S_IFMT == S_IFLNK {
            return Self.symlinkRefused(path)
        }
        return FileOpError.system(e, path)
    }

    private static func symlinkRefused(_ path: String) -> FileOpError {
        FileOpError(.outsideSandbox, SandboxPath.shown(path),
                    "goes through a symbolic link, which this server does not follow (its kernel lacks openat2)")
    }
}
