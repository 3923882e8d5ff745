// A strict parser for the subset of TOML the daemon's configuration uses, with exact line numbers.
//
// Supported: `[table]` headers, `key = value` lines with bare keys, basic ("...") and literal
// ('...') strings, decimal integers, floats, booleans, arrays of strings (which may span lines,
// with comments and a trailing comma), `#` comments, LF and CRLF line ends. Everything else TOML
// has (nested or dotted names, quoted keys, inline tables, arrays of tables, dates, multi-line
// strings, hex integers, inf/nan) is reported as an error at its line rather than misread: the
// configuration never needs it. Every line with a mistake is reported; parsing goes on at the
// next line. Pure: no I/O.

/// A value of the subset.
public enum TOMLValue: Equatable, Sendable, CustomStringConvertible {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case stringArray([String])

    /// "a string", "an integer", ... for messages.
    public var typeName: String {
        switch self {
        case .string: return "a string"
        case .integer: return "an integer"
        case .float: return "a number"
        case .boolean: return "a boolean"
        case .stringArray: return "an array of strings"
        }
    }

    /// The value written back as TOML.
    public var description: String {
        switch self {
        case .string(let s): return TOMLValue.quoted(s)
        case .integer(let i): return String(i)
        case .float(let d):
            let text = String(d)
            return text.contains(".") || text.contains("e") ? text : text + ".0"
        case .boolean(let b): return b ? "true" : "false"
        case .stringArray(let a): return "[" + a.map(TOMLValue.quoted).joined(separator: ", ") + "]"
        }
    }

    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if u.value < 0x20 || u.value == 0x7F {
                    let hex = String(u.value, radix: 16, uppercase: true)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }
}

/// One `key = value` line.
public struct TOMLEntry: Equatable, Sendable {
    /// The table it is in; "" before the first header.
    public var table: String
    public var key: String
    public var value: TOMLValue
    /// The line of the key (1-based).
    public var line: Int
    /// `table.key`, or `key` at the top level.
    public var path: String { table.isEmpty ? key : "\(table).\(key)" }
}

/// One `[table]` header.
public struct TOMLTable: Equatable, Sendable {
    public var name: String
    public var line: Int
}

/// A syntax error, at its line.
public struct TOMLError: Error, Equatable, Sendable, CustomStringConvertible {
    public var line: Int
    public var message: String
    /// `table.key` when the mistake is in the value of a key.
    public var key: String?
    public init(line: Int, message: String, key: String? = nil) {
        self.line = line
        self.message = message
        self.key = key
    }
    public var description: String { "line \(line): " + (key.map { "\($0): " } ?? "") + message }
}

/// A parsed document: everything that parsed, and an error for every line that did not.
public struct TOMLDocument: Sendable {
    public private(set) var tables: [TOMLTable] = []
    public private(set) var entries: [TOMLEntry] = []
    public private(set) var errors: [TOMLError] = []

    public init(parsing text: String) {
        var parser = TOMLParser(Array(text.utf8))
        parser.run()
        tables = parser.tables
        entries = parser.entries
        errors = parser.errors
    }

    /// The first line of `bytes` that is not valid UTF-8, if any (a file is checked with this
    /// before it is parsed as a String).
    public static func firstInvalidUTF8Line(_ bytes: [UInt8]) -> Int? {
        var start = 0
        var n = 1
        for k in 0...bytes.count where k == bytes.count || bytes[k] == 0x0A {
            if String(validating: bytes[start..<k], as: UTF8.self) == nil { return n }
            start = k + 1
            n += 1
        }
        return nil
    }

    /// The entry for `key` in `table`, if it is set.
    public func entry(_ table: String, _ key: String) -> TOMLEntry? {
        entries.first { $0.table == table && $0.key == key }
    }
}

private struct TOMLParser {
    let b: [UInt8]
    var i = 0
    var line = 1
    var table = ""
    var tables: [TOMLTable] = []
    var entries: [TOMLEntry] = []
    var errors: [TOMLError] = []
    /// Set while inside an array, so that a mistake there skips the rest of the array.
    var arrayDepth = 0

    init(_ bytes: [UInt8]) {
        b = bytes
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
    }

    struct Failure: Error {
        let line: Int
        let message: String
        var key: String? = nil
    }

    var atEnd: Bool { i >= b.count }
    var peek: UInt8? { i < b.count ? b[i] : nil }
    func peek(_ offset: Int) -> UInt8? { i + offset < b.count ? b[i + offset] : nil }

    mutating func run() {
        while !atEnd {
            skipSpaces()
            guard let c = peek else { break }
            if atLineEnd() { consumeLineEnd(); continue }
            arrayDepth = 0
            do {
                if c == UInt8(ascii: "#") {
                    try skipComment()
                } else if c == UInt8(ascii: "[") {
                    try tableHeader()
                } else {
                    try keyValue()
                }
            } catch {
                errors.append(TOMLError(line: error.line, message: error.message, key: error.key))
                recover()
            }
        }
    }

    // MARK: lines

    mutating func skipSpaces() {
        while let c = peek, c == 0x20 || c == 0x09 { i += 1 }
    }

    func atLineEnd() -> Bool {
        guard let c = peek else { return true }
        return c == 0x0A || (c == 0x0D && peek(1) == 0x0A)
    }

    mutating func consumeLineEnd() {
        if peek == 0x0D { i += 1 }
        if peek == 0x0A { i += 1; line += 1 }
    }

    /// `#` to the end of the line (which it leaves).
    mutating func skipComment() throws(Failure) {
        i += 1
        while !atLineEnd() {
            let c = b[i]
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw Failure(line: line, message: "control character in a comment") }
            i += 1
        }
    }

    /// After a value or header: spaces, an optional comment, then the line end (which the
    /// main loop consumes, so that a statement never leaves its last line).
    mutating func endOfLine(after what: String) throws(Failure) {
        skipSpaces()
        if peek == UInt8(ascii: "#") { try skipComment() }
        guard atLineEnd() else { throw Failure(line: line, message: "unexpected text after \(what)") }
    }

    /// After a mistake: skip the rest of the line, and if the mistake was inside an array, the
    /// lines up to the next one that starts a key or a table.
    mutating func recover() {
        let inArray = arrayDepth > 0
        arrayDepth = 0
        while !atLineEnd() { i += 1 }
        consumeLineEnd()
        guard inArray else { return }
        while !atEnd {
            var j = i
            while j < b.count, b[j] == 0x20 || b[j] == 0x09 { j += 1 }
            if j < b.count, startsStatement(at: j) { return }
            while !atLineEnd() { i += 1 }
            consumeLineEnd()
        }
    }

    /// Whether the text at `j` looks like `key =`, `[name]` or a comment.
    func startsStatement(at j: Int) -> Bool {
        if b[j] == UInt8(ascii: "#") { return true }
        var k = j
        if b[j] == UInt8(ascii: "[") {
            k += 1
            return k < b.count && Self.isBareKeyByte(b[k])
        }
        while k < b.count, Self.isBareKeyByte(b[k]) { k += 1 }
        guard k > j else { return false }
        while k < b.count, b[k] == 0x20 || b[k] == 0x09 { k += 1 }
        return k < b.count && b[k] == UInt8(ascii: "=")
    }

    static func isBareKeyByte(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || (c >= 0x30 && c <= 0x39)
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }


    // MARK: statements

    mutating func tableHeader() throws(Failure) {
        let at = line
        i += 1
        if peek == UInt8(ascii: "[") { throw Failure(line: at, message: "arrays of tables ([[...]]) are not supported") }
        skipSpaces()
        if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") {
            throw Failure(line: at, message: "quoted table names are not supported")
        }
        let name = bareKey()
        guard !name.isEmpty else { throw Failure(line: at, message: "expected a table name after [") }
        skipSpaces()
        if peek == UInt8(ascii: ".") { throw Failure(line: at, message: "nested tables ([a.b]) are not supported") }
        guard peek == UInt8(ascii: "]") else { throw Failure(line: at, message: "expected ] after the table name \(name)") }
        i += 1
        try endOfLine(after: "the table header")
        if let first = tables.first(where: { $0.name == name }) {
            throw Failure(line: at, message: "table [\(name)] is defined twice (first at line \(first.line))")
        }
        tables.append(TOMLTable(name: name, line: at))
        table = name
    }

    mutating func keyValue() throws(Failure) {
        let at = line
        if peek == UInt8(ascii: "\"") || peek == UInt8(ascii: "'") {
            throw Failure(line: at, message: "quoted keys are not supported")
        }
        if peek == UInt8(ascii: "=") { throw Failure(line: at, message: "missing key before =") }
        let key = bareKey()
        guard !key.isEmpty else {
            throw Failure(line: at, message: "expected `key = value`, a [table] or a # comment")
        }
        skipSpaces()
        if peek == UInt8(ascii: ".") { throw Failure(line: at, message: "dotted keys are not supported") }
        guard peek == UInt8(ascii: "=") else { throw Failure(line: at, message: "expected = after the key \(key)") }
        i += 1
        skipSpaces()
        let path = table.isEmpty ? key : "\(table).\(key)"
        let value: TOMLValue
        do {
            value = try self.value()
            try endOfLine(after: "the value")
        } catch {
            throw Failure(line: error.line, message: error.message, key: path)
        }
        if let first = entries.first(where: { $0.table == table && $0.key == key }) {
            throw Failure(line: at, message: "set twice (first at line \(first.line))", key: path)
        }
        entries.append(TOMLEntry(table: table, key: key, value: value, line: at))
    }

    mutating func bareKey() -> String {
        let start = i
        while let c = peek, Self.isBareKeyByte(c) { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    // MARK: values

    mutating func value() throws(Failure) -> TOMLValue {
        guard let c = peek, !atLineEnd() else { throw Failure(line: line, message: "missing value after =") }
        switch c {
        case UInt8(ascii: "\""): return .string(try basicString())
        case UInt8(ascii: "'"): return .string(try literalString())
        case UInt8(ascii: "["): return .stringArray(try array())
        case UInt8(ascii: "{"): throw Failure(line: line, message: "inline tables ({...}) are not supported")
        default: return try bareValue()
        }
    }

    mutating func basicString() throws(Failure) -> String {
        if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
            throw Failure(line: line, message: "multi-line strings (\"\"\") are not supported")
        }
        i += 1
        var out: [UInt8] = []
        while true {
            guard let c = peek, !atLineEnd() else { throw Failure(line: line, message: "unterminated string (a \" is missing)") }
            i += 1
            switch c {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw Failure(line: line, message: "unterminated string (a \" is missing)") }
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"), UInt8(ascii: "U"):
                    let n = e == UInt8(ascii: "u") ? 4 : 8
                    guard i + n <= b.count, let v = UInt32(String(decoding: b[i..<i + n], as: UTF8.self), radix: 16),
                          let scalar = Unicode.Scalar(v) else {
                        throw Failure(line: line, message: "invalid \\\(e == UInt8(ascii: "u") ? "u" : "U") escape in a string")
                    }
                    i += n
                    out += Array(String(Character(scalar)).utf8)
                default:
                    throw Failure(line: line, message: "invalid escape \\\(String(decoding: [e], as: UTF8.self)) in a string")
                }
            default:
                if (c < 0x20 && c != 0x09) || c == 0x7F {
                    throw Failure(line: line, message: "control character in a string")
                }
                out.append(c)
            }
        }
    }

    mutating func literalString() throws(Failure) -> String {
        if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
            throw Failure(line: line, message: "multi-line strings (''') are not supported")
        }
        i += 1
        let start = i
        while true {
            guard let c = peek, !atLineEnd() else { throw Failure(line: line, message: "unterminated string (a ' is missing)") }
            if c == UInt8(ascii: "'") { break }
            if (c < 0x20 && c != 0x09) || c == 0x7F { throw Failure(line: line, message: "control character in a string") }
            i += 1
        }
        defer { i += 1 }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    /// `[ "a", "b", ]`, across lines, with comments between the elements.
    mutating func array() throws(Failure) -> [String] {
        let at = line
        i += 1
        arrayDepth += 1
        var items: [String] = []
        while true {
            try skipArraySpace(openedAt: at)
            if peek == UInt8(ascii: "]") { i += 1; break }
            let item = try value()
            guard case .string(let s) = item else {
                throw Failure(line: line, message: "arrays may hold only strings, not \(item.typeName)")
            }
            items.append(s)
            try skipArraySpace(openedAt: at)
            if peek == UInt8(ascii: ",") { i += 1; continue }
            if peek == UInt8(ascii: "]") { i += 1; break }
            throw Failure(line: line, message: "expected , or ] in the array")
        }
        arrayDepth -= 1
        return items
    }

    mutating func skipArraySpace(openedAt at: Int) throws(Failure) {
        while true {
            skipSpaces()
            if atEnd { throw Failure(line: at, message: "unterminated array (a ] is missing)") }
            if peek == UInt8(ascii: "#") { try skipComment(); continue }
            if atLineEnd() { consumeLineEnd(); continue }
            return
        }
    }

    /// A boolean or a number, or a word that should have been quoted.
    mutating func bareValue() throws(Failure) -> TOMLValue {
        let start = i
        while let c = peek, Self.isBareKeyByte(c) || c == UInt8(ascii: "+") || c == UInt8(ascii: ".") || c == UInt8(ascii: ":") {
            i += 1
        }
        let token = String(decoding: b[start..<i], as: UTF8.self)
        if token.isEmpty {
            throw Failure(line: line, message: "expected a value: a \"string\" in quotes, a number, true, false or [\"an\", \"array\"]")
        }
        if token == "true" { return .boolean(true) }
        if token == "false" { return .boolean(false) }
        if let n = Self.number(token) { return n }
        let body = token.drop { $0 == "+" || $0 == "-" }
        if body == "inf" || body == "nan" { throw Failure(line: line, message: "inf and nan are not supported") }
        let whole = atLineEnd() || peek == 0x20 || peek == 0x09 || peek == UInt8(ascii: "#")
        let needsQuotes = whole ? "a string needs quotes: \"\(token)\"" : "a string needs quotes"
        if let f = token.unicodeScalars.first, f.properties.isAlphabetic {
            throw Failure(line: line, message: needsQuotes)
        }
        if token.hasPrefix("0x") || token.hasPrefix("0o") || token.hasPrefix("0b") {
            throw Failure(line: line, message: "only decimal integers are supported")
        }
        if Self.looksLikeDate(token) || Self.looksLikeTime(token) {
            throw Failure(line: line, message: "dates and times are not supported; write them as strings")
        }
        if token.allSatisfy({ $0.isASCII && ($0.isNumber || "_.eE+-".contains($0)) }) {
            throw Failure(line: line, message: "invalid number \(token)")
        }
        throw Failure(line: line, message: needsQuotes)
    }

    /// `HH:MM...`
    static func looksLikeTime(_ t: String) -> Bool {
        let u = Array(t.utf8)
        return u.count >= 5 && u[2] == UInt8(ascii: ":") && isDigit(u[0]) && isDigit(u[1]) && isDigit(u[3]) && isDigit(u[4])
    }

    static func looksLikeDate(_ t: String) -> Bool {
        let u = Array(t.utf8)
        return u.count >= 10 && u[4] == UInt8(ascii: "-") && u[7] == UInt8(ascii: "-")
            && u[0..<4].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    /// A TOML decimal integer or float: optional sign, digits with single underscores between
    /// them, no leading zeros; a float has a fraction, an exponent or both.
    static func number(_ token: String) -> TOMLValue? {
        var u = Array(token.utf8)[...]
        var negative = false
        if let s = u.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") {
            negative = s == UInt8(ascii: "-")
            u = u.dropFirst()
        }
        func digits(_ part: ArraySlice<UInt8>) -> String? {
            guard let f = part.first, let l = part.last, isDigit(f), isDigit(l) else { return nil }
            var out = ""
            var previousUnderscore = false
            for c in part {
                if c == UInt8(ascii: "_") {
                    if previousUnderscore { return nil }
                    previousUnderscore = true
                } else if isDigit(c) {
                    previousUnderscore = false
                    out.unicodeScalars.append(Unicode.Scalar(c))
                } else {
                    return nil
                }
            }
            return out
        }
        let exponentAt = u.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let mantissa = exponentAt.map { u[u.startIndex..<$0] } ?? u
        let dot = mantissa.firstIndex(of: UInt8(ascii: "."))
        let intPart = dot.map { mantissa[mantissa.startIndex..<$0] } ?? mantissa
        guard let intDigits = digits(intPart) else { return nil }
        if intDigits.count > 1 && intDigits.hasPrefix("0") { return nil }
        if dot == nil && exponentAt == nil {
            guard let v = Int(intDigits) else {
                // Int.min has no positive counterpart.
                if negative, let m = Int("-" + intDigits) { return .integer(m) }
                return nil
            }
            return .integer(negative ? -v : v)
        }
        var text = (negative ? "-" : "") + intDigits
        if let dot {
            guard let frac = digits(mantissa[mantissa.index(after: dot)...]) else { return nil }
            text += "." + frac
        }
        if let exponentAt {
            var e = u[u.index(after: exponentAt)...]
            var sign = ""
            if let s = e.first, s == UInt8(ascii: "+") || s == UInt8(ascii: "-") {
                sign = s == UInt8(ascii: "-") ? "-" : ""
                e = e.dropFirst()
            }
            guard let ed = digits(e) else { return nil }
            text += "e" + sign + ed
        }
        guard let d = Double(text), d.isFinite else { return nil }
        return .float(d)
    }

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
}
