// The daemon's environment file: `KEY=VALUE` lines holding its secrets (CLAWCHAT_BOOTSTRAP_KEY,
// OPENAI_API_KEY, ...), in the format systemd's EnvironmentFile= also reads, so one file serves
// both. Values never appear in a message: a mistake is reported by its line and key only.
import ClawReactor
import Glibc

/// A parsed environment file.
public struct EnvFile: Sendable {
    /// One variable. Printing it shows its name and line, never its value.
    public struct Variable: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
        public var name: String
        public var value: String
        public var line: Int
        public var description: String { "\(name) (line \(line))" }
        public var debugDescription: String { description }
    }

    public private(set) var variables: [Variable] = []
    /// Mistakes by line; none of them contains a value.
    public private(set) var errors: [TOMLError] = []

    /// Blank lines and lines starting with `#` or `;` are ignored; an optional `export ` prefix
    /// is allowed; a value may be in double quotes (with `\"`, `\\`, `\n`, `\t` escapes) or in
    /// single quotes (taken literally), else it runs to the end of the line, surrounding spaces
    /// removed (a `#` inside it is part of the value, as systemd reads it).
    public init(parsing text: String) {
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = Substring(raw)
            if line.last == "\r" { line.removeLast() }
            line = line.drop { $0 == " " || $0 == "\t" }
            if line.isEmpty || line.first == "#" || line.first == ";" { continue }
            if line.hasPrefix("export ") { line = line.dropFirst(7).drop { $0 == " " } }
            guard let eq = line.firstIndex(of: "=") else {
                errors.append(TOMLError(line: lineNumber, message: "expected KEY=VALUE"))
                continue
            }
            let name = String(line[..<eq].reversed().drop { $0 == " " || $0 == "\t" }.reversed())
            guard Self.isVariableName(name) else {
                errors.append(TOMLError(line: lineNumber, message: "not a variable name before = (letters, digits and _, not starting with a digit)"))
                continue
            }
            let rest = line[line.index(after: eq)...].drop { $0 == " " || $0 == "\t" }
            let value: String
            switch Self.value(rest) {
            case .success(let v): value = v
            case .failure(let e):
                errors.append(TOMLError(line: lineNumber, message: e.message, key: name))
                continue
            }
            if let first = variables.first(where: { $0.name == name }) {
                errors.append(TOMLError(line: lineNumber, message: "set twice (first at line \(first.line))", key: name))
                continue
            }
            variables.append(Variable(name: name, value: value, line: lineNumber))
        }
    }

    public subscript(name: String) -> String? { variables.first { $0.name == name }?.value }

    public static func isVariableName(_ s: String) -> Bool {
        guard let f = s.utf8.first, !(f >= 0x30 && f <= 0x39) else { return false }
        return s.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    struct ValueError: Error { let message: String }

    static func value(_ s: Substring) -> Result<String, ValueError> {
        guard let q = s.first, q == "\"" || q == "'" else {
            return .success(String(s.reversed().drop { $0 == " " || $0 == "\t" }.reversed()))
        }
        var out = ""
        var k = s.index(after: s.startIndex)
        while k < s.endIndex {
            let c = s[k]
            if c == q {
                let after = s[s.index(after: k)...].drop { $0 == " " || $0 == "\t" }
                guard after.isEmpty || after.first == "#" else {
                    return .failure(ValueError(message: "unexpected text after the closing quote"))
                }
                return .success(out)
            }
            if q == "\"" && c == "\\" {
                let n = s.index(after: k)
                guard n < s.endIndex else { break }
                switch s[n] {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "\"", "\\", "$", "`": out.append(s[n])
                default: out.append("\\"); out.append(s[n])
                }
                k = s.index(after: n)
                continue
            }
            out.append(c)
            k = s.index(after: k)
        }
        return .failure(ValueError(message: "the closing \(q) is missing"))
    }
}

extension EnvFile {
    /// Whether the permission bits keep the file to its owner (and at most a group that reads
    /// it): 0600, 0640, 0400 or 0440. A reason if not.
    public static func modeProblem(_ mode: mode_t) -> String? {
        let perms = mode & 0o7777
        let octal = "0" + String(perms, radix: 8)
        if perms & 0o007 != 0 {
            return "mode \(octal) lets every user read or change it: chmod 600 (or 640 for the daemon's group)"
        }
        if perms & 0o020 != 0 { return "mode \(octal) lets its group change it: chmod 600 or 640" }
        if perms & 0o111 != 0 { return "mode \(octal) makes it executable: chmod 600 or 640" }
        return nil
    }

    public enum LoadResult {
        /// The file does not exist.
        case missing
        case loaded(EnvFile)
        /// It exists but cannot be used (unreadable, not a regular file, too open); the reason.
        case unusable(String)
    }

    /// Reads and parses the file at `path`, refusing one that others can read.
    public static func load(_ path: String) -> LoadResult {
        var st = stat()
        guard stat(path, &st) == 0 else {
            return errno == ENOENT ? .missing : .unusable("cannot stat it: \(String(cString: strerror(errno)))")
        }
        guard st.st_mode & S_IFMT == S_IFREG else { return .unusable("not a regular file") }
        if let reason = modeProblem(st.st_mode) { return .unusable(reason) }
        do {
            guard let bytes = try AtomicFile.read(path, limit: 1 << 16) else { return .missing }
            guard let text = String(validating: bytes, as: UTF8.self) else { return .unusable("not valid UTF-8") }
            return .loaded(EnvFile(parsing: text))
        } catch {
            return .unusable(error.description)
        }
    }
}
