import CShim
import Glibc

/// fs-rm, fs-mv and fs-mkdir: each resolves the parent directories beneath the root and then acts
/// on one name in them, so a final symlink is removed or moved itself, never followed.
extension Sandbox {
    /// Removes the entry at `path` and returns how many entries went (a directory and everything
    /// in it with `recursive`). A symlink is unlinked, never followed, also inside the tree. The
    /// root cannot be removed.
    public func remove(_ path: String, recursive: Bool) throws(FileOpError) -> Int {
        if readOnly { throw FileOpError.readOnlyMode(path) }
        let components = try SandboxPath.components(path)
        if components.isEmpty {
            throw FileOpError(.invalidPath, SandboxPath.shown(path), "the shared folder itself cannot be removed")
        }
        let (dir, name) = try openParent(components, path: path)
        defer { close(dir) }
        return try removeEntry(in: dir, Array(name.utf8CString), recursive: recursive, path: path, top: true)
    }

    /// Renames `from` to `to`; an existing `to` is replaced only with `overwrite` (as rename(2)
    /// does: a file by a file, a directory by a directory into an empty one).
    public func move(_ from: String, to: String, overwrite: Bool) throws(FileOpError) {
        if readOnly { throw FileOpError.readOnlyMode(from) }
        let source = try SandboxPath.components(from)
        let target = try SandboxPath.components(to)
        if source.isEmpty {
            throw FileOpError(.invalidPath, SandboxPath.shown(from), "the shared folder itself cannot be moved")
        }
        if target.isEmpty {
            throw FileOpError(.exists, SandboxPath.shown(to), "is the shared folder itself")
        }
        let (fromDir, fromName) = try openParent(source, path: from)
        defer { close(fromDir) }
        let (toDir, toName) = try openParent(target, path: to)
        defer { close(toDir) }
        let e = overwrite ? (renameat(fromDir, fromName, toDir, toName) == 0 ? 0 : errno)
                          : renameNoReplace(fromDir, fromName, toDir, toName)
        switch e {
        case 0: return
        case ENOENT: throw FileOpError.system(e, from)  // the parents are open, so it is the source
        case EEXIST: throw FileOpError(.exists, SandboxPath.shown(to), "already exists (move with overwrite to replace it)")
        case ENOTEMPTY: throw FileOpError(.notEmpty, SandboxPath.shown(to), "is a directory that is not empty; it is not replaced")
        case EISDIR: throw FileOpError(.isADirectory, SandboxPath.shown(to), "is a directory; a file does not replace it")
        case ENOTDIR: throw FileOpError(.notADirectory, SandboxPath.shown(to), "is not a directory; a directory does not replace it")
        case EINVAL: throw FileOpError(.invalidPath, SandboxPath.shown(to), "a directory cannot be moved into itself")
        default: throw FileOpError.system(e, from)
        }
    }

    /// Creates the directory `path` (mode 0755). With `parents`, missing parents are created too
    /// and an existing directory is fine; each step is resolved beneath the root again, so a
    /// symlink on the way is followed only inside it.
    public func makeDirectory(_ path: String, parents: Bool) throws(FileOpError) {
        if readOnly { throw FileOpError.readOnlyMode(path) }
        let components = try SandboxPath.components(path)
        guard parents else {
            if components.isEmpty { throw FileOpError(.exists, SandboxPath.shown(path), "is the shared folder itself") }
            let (dir, name) = try openParent(components, path: path)
            defer { close(dir) }
            guard mkdirat(dir, name, 0o755) == 0 else { throw FileOpError.system(errno, path) }
            return
        }
        for i in components.indices {
            let dir = try openBeneath(components[..<i], cshim_O_PATH | O_DIRECTORY, path: path)
            let made = mkdirat(dir, components[i], 0o755) == 0
            let e = errno
            close(dir)
            if !made && e != EEXIST { throw FileOpError.system(e, path) }
        }
        // All of it exists now; the last one must be a directory (or a symlink to one inside).
        let fd: Int32
        do throws(FileOpError) {
            fd = try openBeneath(components[...], cshim_O_PATH | O_DIRECTORY, path: path)
        } catch where error.code == .notADirectory {
            throw FileOpError(.notADirectory, error.path, "exists and is not a directory")
        }
        close(fd)
    }

    /// Removes `name` (NUL-terminated bytes, as the directory has them) from `dir`. `path` is the
    /// entry's path for errors; `top` tells the entry the client named from one found inside.
    private func removeEntry(in dir: Int32, _ name: [CChar], recursive: Bool, path: String,
                             top: Bool) throws(FileOpError) -> Int {
        var st = Glibc.stat()
        guard fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT && !top { return 0 }  // gone since the directory was read
            throw FileOpError.system(errno, path)
        }
        if st.st_mode & S_IFMT != S_IFDIR {
            guard unlinkat(dir, name, 0) == 0 else {
                if errno == ENOENT && !top { return 0 }
                throw FileOpError.system(errno, path)
            }
            return 1
        }
        var removed = 0
        if recursive {
            // O_NOFOLLOW: a directory swapped for a symlink since fstatat is refused, not entered.
            let sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard sub >= 0 else { throw FileOpError.system(errno == ENOTDIR ? ELOOP : errno, path) }
            defer { close(sub) }
            var children: [[CChar]] = []
            try Self.forEachName(inDirectory: dup(sub), path) { (_: Int32, child: UnsafePointer<CChar>) throws(FileOpError) in
                children.append(Array(UnsafeBufferPointer(start: child, count: strlen(child) + 1)))
            }
            let prefix = path.hasSuffix("/") ? path : path + "/"
            for child in children {
                let childPath = prefix + String(decoding: child.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
                removed += try removeEntry(in: sub, child, recursive: true, path: childPath, top: false)
            }
        }
        guard unlinkat(dir, name, AT_REMOVEDIR) == 0 else {
            if errno == ENOTEMPTY || errno == EEXIST {
                throw FileOpError(.notEmpty, SandboxPath.shown(path), "the directory is not empty (remove it recursively)")
            }
            throw FileOpError.system(errno, path)
        }
        return removed + 1
    }
}
