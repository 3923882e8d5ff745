import ClawTransport
import Glibc

/// Why a file operation failed, with what the user needs to act on it: the daemon's code and
/// words, or the local path and the system's reason.
public enum FileClientError: Error, Equatable, CustomStringConvertible {
    /// The daemon refused or failed (PROTOCOL.md 10.6 codes: `not-found`, `exists`, ...).
    case server(code: String, message: String)
    /// A local file-system call failed on `path`.
    case local(path: String, operation: String, errno: Int32)
    /// The local destination exists and overwriting was not asked for.
    case localExists(path: String)
    /// A local path that cannot be used as asked (a directory where a file is needed, ...).
    case localUnusable(path: String, reason: String)
    /// What arrived does not match what the daemon says it sent (size or SHA-256).
    case verification(path: String, reason: String)
    /// A remote path that climbs above the shared folder.
    case aboveRoot(path: String)
    /// The daemon answered something this client cannot read.
    case malformed(String)
    /// The connection ended, or the stream was reset by the daemon.
    case connection(String)
    /// The user cancelled.
    case cancelled

    /// A machine-readable code for `--json` output: the daemon's own code, or one of `local-io`,
    /// `local-exists`, `local-unusable`, `verification`, `invalid-path`, `malformed`,
    /// `connection`, `cancelled`.
    public var code: String {
        switch self {
        case .server(let code, _): return code
        case .local: return "local-io"
        case .localExists: return "local-exists"
        case .localUnusable: return "local-unusable"
        case .verification: return "verification"
        case .aboveRoot: return "invalid-path"
        case .malformed: return "malformed"
        case .connection: return "connection"
        case .cancelled: return "cancelled"
        }
    }

    public var description: String {
        switch self {
        case .server(let code, let message): return message.isEmpty ? code : "\(message) (\(code))"
        case .local(let path, let operation, let e): return "\(operation) \(path): \(String(cString: strerror(e)))"
        case .localExists(let path): return "\(path) already exists (use --overwrite to replace it)"
        case .localUnusable(let path, let reason): return "\(path): \(reason)"
        case .verification(let path, let reason): return "\(path): \(reason)"
        case .aboveRoot(let path): return "\(path): above the shared folder"
        case .malformed(let what): return "unreadable answer from the daemon: \(what)"
        case .connection(let why): return why
        case .cancelled: return "cancelled"
        }
    }

    /// The failure of a request, in these terms.
    init(_ failure: RequestFailure) {
        switch failure {
        case .server(let code, let message): self = .server(code: code, message: message)
        case .reset(let why) where why == "cancelled": self = .cancelled
        case .reset, .connection: self = .connection(failure.description)
        }
    }

    /// The current `errno` of a failed call on `path`.
    static func system(_ operation: String, _ path: String) -> FileClientError {
        .local(path: path, operation: operation, errno: errno)
    }
}
