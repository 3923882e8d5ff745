import CShim
import Glibc

/// Uploads land in `.NAME.clawchat-part` beside the target and are renamed into place once they
/// are complete and verified, so a half upload is never visible under the final name.
extension Sandbox {
    static let partFileSuffix = ".clawchat-part"

    /// The temp file of an upload to `name`.
    static func partFileName(_ name: String) -> String { "." + name + partFileSuffix }

    /// Upload temp files, which `list` leaves out.
    static func isPartFileName(_ name: String) -> Bool { name.hasPrefix(".") && name.hasSuffix(partFileSuffix) }

    /// Opens (creating it, mode 0600) the part file of an upload to `path`, in the target's parent
    /// directory; without `resume` it is emptied. Returns its fd (O_RDWR; the caller writes and
    /// closes it) and how many bytes it holds.
    public func openPartFile(for path: String, resume: Bool) throws(FileOpError) -> (fd: Int32, existing: Int64) {
        let components = try uploadTarget(path)
        let (dir, name) = try openParent(components, path: path)
        defer { close(dir) }
        var st = Glibc.stat()
        if fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFDIR {
            throw FileOpError(.isADirectory, SandboxPath.shown(path), "is a directory; a file cannot be uploaded in its place")
        }
        let part = Self.partFileName(name)
        // No O_TRUNC yet: what is there is checked first.
        var fd = openat(dir, part, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0o600)
        guard fd >= 0 else { throw FileOpError.system(errno, path) }
        // Something else left at the part name (a FIFO, a hard link to a file elsewhere) is
        // replaced rather than written through.
        if fstat(fd, &st) != 0 || st.st_mode & S_IFMT != S_IFREG || st.st_nlink != 1 {
            close(fd)
            unlinkat(dir, part, 0)
            fd = openat(dir, part, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0o600)
            guard fd >= 0 else { throw FileOpError.system(errno, path) }
            st.st_size = 0
        }
        if !resume && st.st_size != 0 {
            guard ftruncate(fd, 0) == 0 else {
                let e = errno
                close(fd)
                throw FileOpError.system(e, path)
            }
            st.st_size = 0
        }
        return (fd, Int64(st.st_size))
    }

    /// Renames the part file of `path` onto `path`: never over an existing entry unless
    /// `overwrite` (and never over a directory), then fsyncs the directory. The caller has written
    /// and fsynced the part file.
    public func commitPartFile(for path: String, overwrite: Bool) throws(FileOpError) {
        let components = try uploadTarget(path)
        let (dir, name) = try openParent(components, path: path, flags: O_RDONLY)
        defer { close(dir) }
        let part = Self.partFileName(name)
        if overwrite {
            var st = Glibc.stat()
            if fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFDIR {
                throw FileOpError(.isADirectory, SandboxPath.shown(path), "is a directory; it is not replaced by a file")
            }
            guard renameat(dir, part, dir, name) == 0 else { throw commitError(errno, path) }
        } else {
            let e = renameNoReplace(dir, part, dir, name)
            guard e == 0 else { throw commitError(e, path) }
        }
        _ = fsync(dir)
    }

    /// Deletes the part file of `path`, if there is one.
    public func discardPartFile(for path: String) {
        guard !readOnly, let components = try? SandboxPath.components(path), !components.isEmpty,
              let (dir, name) = try? openParent(components, path: path) else { return }
        unlinkat(dir, Self.partFileName(name), 0)
        close(dir)
    }

    /// The components of an upload's target, refused when the folder is read-only, for the root,
    /// and when the part file's name would be too long.
    private func uploadTarget(_ path: String) throws(FileOpError) -> [String] {
        if readOnly { throw FileOpError.readOnlyMode(path) }
        let components = try SandboxPath.components(path)
        guard let name = components.last else {
            throw FileOpError(.isADirectory, SandboxPath.shown(path), "is the shared folder itself, not a file")
        }
        let room = SandboxPath.maxComponentBytes - Self.partFileName("").utf8.count
        if name.utf8.count > room {
            throw FileOpError(.invalidPath, SandboxPath.shown(path), "the name is too long for an upload (at most \(room) bytes)")
        }
        return components
    }

    private func commitError(_ e: Int32, _ path: String) -> FileOpError {
        switch e {
        case ENOENT: FileOpError(.notFound, SandboxPath.shown(path), "no upload of this file is in progress")
        case EEXIST: FileOpError(.exists, SandboxPath.shown(path), "already exists (upload with overwrite to replace it)")
        default: FileOpError.system(e, path)
        }
    }

    /// renameat2(RENAME_NOREPLACE), or where the file system does not offer it (EINVAL), a link
    /// and an unlink for a file and a plain rename for a directory (which replaces at most an
    /// empty directory). Returns 0 or the errno; EINVAL then means a directory into itself.
    func renameNoReplace(_ fromDir: Int32, _ from: String, _ toDir: Int32, _ to: String) -> Int32 {
        if cshim_renameat2(fromDir, from, toDir, to, cshim_RENAME_NOREPLACE) == 0 { return 0 }
        guard errno == EINVAL || errno == ENOSYS else { return errno }
        var st = Glibc.stat()
        if fstatat(toDir, to, &st, AT_SYMLINK_NOFOLLOW) == 0 { return EEXIST }
        guard fstatat(fromDir, from, &st, AT_SYMLINK_NOFOLLOW) == 0 else { return errno }
        if st.st_mode & S_IFMT == S_IFDIR {
            return renameat(fromDir, from, toDir, to) == 0 ? 0 : errno
        }
        guard linkat(fromDir, from, toDir, to, 0) == 0 else { return errno }
        unlinkat(fromDir, from, 0)
        return 0
    }
}
