import Glibc

extension FileOpError {
    /// What a failed system call on `path` (as the client gave it) means for the user.
    /// `resolving`: the call looked the path up beneath the root, so EXDEV means the path left it;
    /// otherwise EXDEV is a rename across file systems.
    static func system(_ e: Int32, _ path: String, resolving: Bool = false) -> FileOpError {
        let shown = SandboxPath.shown(path)
        switch e {
        case ENOENT: return FileOpError(.notFound, shown, "no such file or directory")
        case EEXIST: return FileOpError(.exists, shown, "already exists")
        case ENOTEMPTY: return FileOpError(.notEmpty, shown, "the directory is not empty")
        case ENOTDIR: return FileOpError(.notADirectory, shown, "is not a directory, or a folder on its path is not")
        case EISDIR: return FileOpError(.isADirectory, shown, "is a directory")
        case EXDEV where resolving, ELOOP:
            return FileOpError(.outsideSandbox, shown, "leads outside the shared folder (through a symbolic link, or a loop of them)")
        case EXDEV: return FileOpError(.io, shown, "cannot be moved to another file system")
        case ENOSPC: return FileOpError(.noSpace, shown, "no space left on the server's disk")
        case EDQUOT: return FileOpError(.noSpace, shown, "the disk quota on the server is exceeded")
        case EROFS: return FileOpError(.readOnly, shown, "the server's file system is mounted read-only")
        case ENAMETOOLONG: return FileOpError(.invalidPath, shown, "a name is too long for the server's file system")
        case EACCES, EPERM: return FileOpError(.io, shown, "permission denied on the server")
        default: return FileOpError(.io, shown, String(cString: strerror(e)))
        }
    }

    /// A change refused because the daemon serves the folder read-only.
    static func readOnlyMode(_ path: String) -> FileOpError {
        FileOpError(.readOnly, SandboxPath.shown(path), "the shared folder is read-only on this server")
    }
}
