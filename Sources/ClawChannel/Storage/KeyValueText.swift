import ClawReactor

/// Parses `key = value` lines (with `#` comments), keeping repeated keys in order.
struct KeyValueText {
    private(set) var entries: [(key: String, value: String, line: Int)] = []

    init(_ text: String) throws(StoreError) {
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw .syntax(line: i + 1, "expected `key = value`") }
            entries.append((String(line[..<eq]).trimmingSpaces, String(line[line.index(after: eq)...]).trimmingSpaces, i + 1))
        }
    }

    func value(_ key: String) -> String? { entries.first { $0.key == key }?.value }
    func values(_ key: String) -> [String] { entries.filter { $0.key == key }.map(\.value) }
    func line(_ key: String) -> Int { entries.first { $0.key == key }?.line ?? 0 }
}

/// A stored file that could not be understood.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case syntax(line: Int, String)
    case missing(String)
    case invalid(key: String, line: Int, String)
    case io(FileError)

    public var description: String {
        switch self {
        case .syntax(let line, let why): return "line \(line): \(why)"
        case .missing(let key): return "missing `\(key)`"
        case .invalid(let key, let line, let why): return "line \(line): `\(key)` \(why)"
        case .io(let e): return e.description
        }
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        let scalars = unicodeScalars.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(String.UnicodeScalarView(scalars.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed()))
    }
}
