/// The client's view of a path (PROTOCOL.md 10.6): UTF-8, `/`-separated, relative to the shared
/// folder. Validation is pure; whether the path stays inside the folder on disk (symlinks) is the
/// `Sandbox`'s job at the moment of use.
public enum SandboxPath {
    /// Linux's NAME_MAX and PATH_MAX, which the protocol adopts.
    public static let maxComponentBytes = 255
    public static let maxPathBytes = 4096
    /// How much of a refused path an error repeats.
    static let maxShownCharacters = 200

    /// The components of `path`; `[]` is the root (`""` or `.`).
    ///
    /// Refused with `invalid-path`: a leading `/`, a `..` component, a NUL byte, an empty component
    /// other than one trailing `/`, a component over 255 bytes, a path over 4096 bytes. A `.`
    /// component is harmless and dropped (`./a/./b` is `a/b`), so a client that joins its current
    /// directory `.` with a name need not special-case it. U+FFFD (what the message layer makes of
    /// invalid UTF-8) is an ordinary character.
    public static func components(_ path: String) throws(FileOpError) -> [String] {
        if path.utf8.count > maxPathBytes {
            throw refusal(path, "the path is longer than \(maxPathBytes) bytes")
        }
        if path.utf8.contains(0) { throw refusal(path, "a NUL byte is not allowed in a path") }
        if path.hasPrefix("/") {
            throw refusal(path, "an absolute path is not allowed; paths are relative to the shared folder")
        }
        var body = Substring(path)
        if body.hasSuffix("/") { body = body.dropLast() }
        if body.isEmpty { return [] }
        var out: [String] = []
        for part in body.split(separator: "/", omittingEmptySubsequences: false) {
            switch part {
            case "": throw refusal(path, "an empty component (`//`) is not allowed")
            case ".": continue
            case "..": throw refusal(path, "a `..` component is not allowed")
            default:
                if part.utf8.count > maxComponentBytes {
                    throw refusal(path, "a name is longer than \(maxComponentBytes) bytes")
                }
                out.append(String(part))
            }
        }
        return out
    }

    /// `path` as an error repeats it: as the client gave it, cut to 200 characters.
    public static func shown(_ path: String) -> String {
        path.count <= maxShownCharacters ? path : String(path.prefix(maxShownCharacters)) + "…"
    }

    private static func refusal(_ path: String, _ reason: String) -> FileOpError {
        FileOpError(.invalidPath, shown(path), reason)
    }
}
