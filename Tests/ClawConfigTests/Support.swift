import ClawReactor
import Glibc

/// A fresh directory under /tmp, removed by `remove()`.
struct TempDir {
    let path: String

    init() {
        var template = Array("/tmp/clawconfig-test.XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
        guard let made else { preconditionFailure("mkdtemp failed") }
        path = made
    }

    /// Writes `text` to `name` with `mode`; the path.
    @discardableResult
    func write(_ name: String, _ text: String, mode: mode_t = 0o600) -> String {
        let p = "\(path)/\(name)"
        try! AtomicFile.write(Array(text.utf8), to: p, mode: mode)
        return p
    }

    func remove() {
        _ = system("rm -rf '\(path)'")
    }
}

/// The repository's root, from this file's path (Tests/ClawConfigTests/Support.swift).
let repositoryRoot: String = {
    var parts = String(#filePath).split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

/// An environment with only these variables.
func environment(_ vars: [String: String]) -> @Sendable (String) -> String? {
    { vars[$0] }
}
