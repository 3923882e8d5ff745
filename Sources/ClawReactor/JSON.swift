/// A JSON value (RFC 8259): a strict parser for untrusted input from the network (provider
/// responses, SSE event payloads, error bodies) and a deterministic compact encoder for request
/// bodies.
///
/// Parsing never traps on malformed input: every problem is a ``JSONError`` naming the byte
/// offset. Numbers are `Double`s, so integers beyond ±2^53 lose precision, as in JavaScript.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    /// Duplicate keys in parsed input: the last one wins.
    case object([String: JSONValue])

    /// Parses exactly one JSON value, with optional surrounding whitespace, from UTF-8 `bytes`.
    public static func parse(_ bytes: some Collection<UInt8>, limits: JSONLimits = JSONLimits()) throws(JSONError) -> JSONValue {
        let count = bytes.count
        guard count <= limits.maxBytes else {
            throw JSONError(offset: limits.maxBytes, reason: "input is \(count) bytes, over the limit of \(limits.maxBytes)")
        }
        var parser = JSONParser(bytes: Array(bytes), limits: limits)
        return try parser.parseDocument()
    }

    /// Parses exactly one JSON value, with optional surrounding whitespace, from `text`.
    public static func parse(_ text: String, limits: JSONLimits = JSONLimits()) throws(JSONError) -> JSONValue {
        try parse(text.utf8, limits: limits)
    }

    /// Compact serialisation (no spaces) with object keys sorted by their UTF-8 bytes (that is,
    /// by code point), so the output is deterministic. Strings escape `"`, `\` and control
    /// characters only; everything else stays UTF-8. Integral numbers within ±2^53 print
    /// without a fraction, others as Swift's shortest round-trip form; NaN and infinities,
    /// which JSON cannot represent, become `null`.
    public func encoded() -> String {
        var out: [UInt8] = []
        encode(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The member `key` if this is an object that has it.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// The element at `index` if this is an array and the index is in range.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    /// The number, if it is integral and fits an `Int`.
    public var intValue: Int? {
        if case .number(let d) = self { return Int(exactly: d) }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let items) = self { return items }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var isNull: Bool { self == .null }

    private func encode(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let d): out.append(contentsOf: Self.format(d).utf8)
        case .string(let s): Self.encode(string: s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                item.encode(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            for (i, member) in sorted.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.encode(string: member.key, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.encode(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        // Integral and within ±2^53, so the conversion is exact; -0 prints as 0.
        if d.rounded(.towardZero) == d, d.magnitude <= 9_007_199_254_740_992 { return String(Int64(d)) }
        return d.description
    }

    private static func encode(string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case 0x0A: out.append(contentsOf: #"\n"#.utf8)
            case 0x0D: out.append(contentsOf: #"\r"#.utf8)
            case 0x09: out.append(contentsOf: #"\t"#.utf8)
            case 0x08: out.append(contentsOf: #"\b"#.utf8)
            case 0x0C: out.append(contentsOf: #"\f"#.utf8)
            case 0..<0x20: out.append(contentsOf: #"\u00"#.utf8); out.append(contentsOf: hex2(byte).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Duplicate keys: the last one wins, as when parsing.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Bounds on what ``JSONValue/parse(_:limits:)`` accepts from untrusted input.
public struct JSONLimits: Sendable {
    /// Most arrays and objects nested inside one another. The parser recurses once per level,
    /// so keep this modest (hundreds, not millions).
    public var maxDepth = 64
    /// Largest input, in bytes.
    public var maxBytes = 8 << 20
    /// Largest decoded string (value or key), in UTF-8 bytes.
    public var maxStringBytes = 4 << 20

    public init() {}
}

/// Why and where (byte offset into the input) parsing failed.
public struct JSONError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String

    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// Two lowercase hex digits.
private func hex2(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef".utf8)
    return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
}

/// A recursive-descent parser over the whole input; `pos` is the next byte to read.
private struct JSONParser {
    let bytes: [UInt8]
    let limits: JSONLimits
    var pos = 0

    private var peek: UInt8? { pos < bytes.count ? bytes[pos] : nil }

    /// The byte at `pos`, for error messages.
    private var found: String { describe(peek) }

    private func describe(_ byte: UInt8?) -> String {
        guard let byte else { return "end of input" }
        if (0x21..<0x7F).contains(byte) { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(hex2(byte))"
    }

    private func error(_ reason: String, at offset: Int? = nil) -> JSONError {
        JSONError(offset: offset ?? pos, reason: reason)
    }

    mutating func parseDocument() throws(JSONError) -> JSONValue {
        skipWhitespace()
        let value = try parseValue(depth: 0)
        skipWhitespace()
        guard pos == bytes.count else { throw error("unexpected \(found) after the value") }
        return value
    }

    private mutating func skipWhitespace() {
        while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { pos += 1 }
    }

    private mutating func consume(_ ascii: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: ascii) else { return false }
        pos += 1
        return true
    }

    private var atDigit: Bool { peek.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }

    /// Skips ASCII digits and returns how many.
    private mutating func skipDigits() -> Int {
        let start = pos
        while atDigit { pos += 1 }
        return pos - start
    }

    /// Parses the value starting at `pos` (no leading whitespace); `depth` containers enclose it.
    private mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard let byte = peek else { throw error("expected a value, found end of input") }
        switch byte {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < limits.maxDepth else { throw error("nesting deeper than \(limits.maxDepth) levels") }
            return byte == UInt8(ascii: "{") ? try parseObject(depth: depth + 1) : try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case UInt8(ascii: "t"): return try parseLiteral("true", .bool(true))
        case UInt8(ascii: "f"): return try parseLiteral("false", .bool(false))
        case UInt8(ascii: "n"): return try parseLiteral("null", .null)
        default: throw error("expected a value, found \(found)")
        }
    }

    private mutating func parseLiteral(_ word: String, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let end = pos + word.utf8.count
        guard end <= bytes.count, bytes[pos..<end].elementsEqual(word.utf8) else {
            throw error("invalid literal, expected '\(word)'")
        }
        pos = end
        return value
    }

    /// `depth` counts this container.
    private mutating func parseArray(depth: Int) throws(JSONError) -> JSONValue {
        pos += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if consume("]") { return .array(items) }
        while true {
            items.append(try parseValue(depth: depth))
            skipWhitespace()
            if consume("]") { return .array(items) }
            guard consume(",") else { throw error("expected ',' or ']' after array element, found \(found)") }
            skipWhitespace()
        }
    }

    /// `depth` counts this container.
    private mutating func parseObject(depth: Int) throws(JSONError) -> JSONValue {
        pos += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if consume("}") { return .object(members) }
        while true {
            guard peek == UInt8(ascii: "\"") else { throw error("expected a string key, found \(found)") }
            let key = try parseString()
            skipWhitespace()
            guard consume(":") else { throw error("expected ':' after object key, found \(found)") }
            skipWhitespace()
            members[key] = try parseValue(depth: depth)
            skipWhitespace()
            if consume("}") { return .object(members) }
            guard consume(",") else { throw error("expected ',' or '}' after object member, found \(found)") }
            skipWhitespace()
        }
    }

    /// Validates the number grammar, then converts the lexeme with `Double(String)`.
    private mutating func parseNumber() throws(JSONError) -> Double {
        let start = pos
        _ = consume("-")
        if consume("0") {
            if atDigit { throw error("leading zeros are not allowed") }
        } else if skipDigits() == 0 {
            throw error("expected a digit, found \(found)")
        }
        if consume("."), skipDigits() == 0 { throw error("expected a digit after '.', found \(found)") }
        if consume("e") || consume("E") {
            _ = consume("+") || consume("-")
            if skipDigits() == 0 { throw error("expected a digit in the exponent, found \(found)") }
        }
        guard let value = Double(String(decoding: bytes[start..<pos], as: UTF8.self)), value.isFinite else {
            throw error("number out of range for a double", at: start)
        }
        return value
    }

    /// Parses a string literal at `pos` (the opening quote), decoding escapes and checking UTF-8.
    private mutating func parseString() throws(JSONError) -> String {
        let start = pos
        pos += 1
        var out: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("unterminated string starting at byte \(start)") }
            switch byte {
            case UInt8(ascii: "\""):
                pos += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try parseEscape(into: &out)
            case 0..<0x20:
                throw error("unescaped control character 0x\(hex2(byte)) in string")
            case 0x80...:
                guard let length = utf8SequenceLength() else { throw error("invalid UTF-8 in string") }
                out.append(contentsOf: bytes[pos..<pos + length])
                pos += length
            default:
                out.append(byte)
                pos += 1
            }
            if out.count > limits.maxStringBytes {
                throw error("string longer than \(limits.maxStringBytes) bytes", at: start)
            }
        }
    }

    /// The length of the well-formed UTF-8 sequence at `pos` (Unicode table 3-7), or nil.
    private func utf8SequenceLength() -> Int? {
        let length: Int, second: ClosedRange<UInt8>
        switch bytes[pos] {
        case 0xC2...0xDF: (length, second) = (2, 0x80...0xBF)
        case 0xE0: (length, second) = (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, second) = (3, 0x80...0xBF)
        case 0xED: (length, second) = (3, 0x80...0x9F)  // no encoded surrogates
        case 0xF0: (length, second) = (4, 0x90...0xBF)
        case 0xF1...0xF3: (length, second) = (4, 0x80...0xBF)
        case 0xF4: (length, second) = (4, 0x80...0x8F)  // nothing past U+10FFFF
        default: return nil
        }
        guard pos + length <= bytes.count, second.contains(bytes[pos + 1]) else { return nil }
        for i in pos + 2 ..< pos + length where !(0x80...0xBF).contains(bytes[i]) { return nil }
        return length
    }

    /// Decodes the escape at `pos` (the backslash) into UTF-8; surrogates must come in pairs.
    private mutating func parseEscape(into out: inout [UInt8]) throws(JSONError) {
        let start = pos
        pos += 1
        guard let byte = peek else { throw error("unterminated string") }
        pos += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(byte)
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            var code = try parseHex4()
            if (0xDC00...0xDFFF).contains(code) { throw error("lone low surrogate \\u\(String(code, radix: 16))", at: start) }
            if (0xD800...0xDBFF).contains(code) {
                guard consume("\\"), consume("u") else { throw error("lone high surrogate \\u\(String(code, radix: 16))", at: start) }
                let low = try parseHex4()
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw error("high surrogate \\u\(String(code, radix: 16)) not followed by a low surrogate", at: start)
                }
                code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(code) else { throw error("invalid code point", at: start) }
            UTF8.encode(scalar) { out.append($0) }
        default:
            throw error("invalid escape sequence, found \(describe(byte)) after '\\'", at: start)
        }
    }

    private mutating func parseHex4() throws(JSONError) -> UInt32 {
        var code: UInt32 = 0
        for _ in 0..<4 {
            let digit: UInt8
            switch peek {
            case let byte? where (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte): digit = byte - UInt8(ascii: "0")
            case let byte? where (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte): digit = byte - UInt8(ascii: "a") + 10
            case let byte? where (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("expected 4 hex digits after \\u, found \(found)")
            }
            code = code << 4 | UInt32(digit)
            pos += 1
        }
        return code
    }
}
