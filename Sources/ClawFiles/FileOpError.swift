/// Why a file operation was refused or failed, with the machine-readable code of PROTOCOL.md 10.6
/// and a reason for the user. `path` is the path as the client gave it, never the server's
/// absolute path.
public struct FileOpError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case invalidPath = "invalid-path"
        case outsideSandbox = "outside-sandbox"
        case notFound = "not-found"
        case exists
        case notADirectory = "not-a-directory"
        case isADirectory = "is-a-directory"
        case notEmpty = "not-empty"
        case readOnly = "read-only"
        case noSpace = "no-space"
        case resumeMismatch = "resume-mismatch"
        case hashMismatch = "hash-mismatch"
        case tooLarge = "too-large"
        case changed
        case io
    }

    public var code: Code
    public var path: String
    public var reason: String

    public init(_ code: Code, _ path: String, _ reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}
