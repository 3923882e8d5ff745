@testable import ClawReactor
import Testing

/// The error `text` fails with, or nil if it parses.
private func parseError(_ text: String, limits: JSONLimits = JSONLimits()) -> JSONError? {
    do {
        _ = try JSONValue.parse(text, limits: limits)
        return nil
    } catch {
        return error
    }
}

/// A random value at most `depth` containers deep, with awkward strings and numbers.
private func randomValue(_ rng: inout SplitMix64, depth: Int) -> JSONValue {
    switch Int.random(in: 0..<(depth > 0 ? 7 : 5), using: &rng) {
    case 0: return .null
    case 1: return .bool(Bool.random(using: &rng))
    case 2:
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &rng)))
        case 1: return .number(Double.random(in: -1e6...1e6, using: &rng))
        default:
            let d = Double(bitPattern: rng.next())
            return .number(d.isFinite ? d : 0)
        }
    case 3, 4:
        var s = ""
        for _ in 0..<Int.random(in: 0..<8, using: &rng) {
            let ranges: [ClosedRange<UInt32>] = [0...0x7F, 0x80...0x7FF, 0x800...0xFFFF, 0x10000...0x10FFFF]
            let code = UInt32.random(in: ranges[Int.random(in: 0..<ranges.count, using: &rng)], using: &rng)
            if let scalar = Unicode.Scalar(code) { s.unicodeScalars.append(scalar) }
        }
        return .string(s)
    case 5:
        return .array((0..<Int.random(in: 0..<4, using: &rng)).map { _ in randomValue(&rng, depth: depth - 1) })
    default:
        var members: [String: JSONValue] = [:]
        for _ in 0..<Int.random(in: 0..<4, using: &rng) {
            members["k\(Int.random(in: 0..<10, using: &rng))"] = randomValue(&rng, depth: depth - 1)
        }
        return .object(members)
    }
}

@Suite struct JSONTests {
    @Test func everyLiteralKindAndAccessor() {
        let v: JSONValue = ["s": "x", "i": 3, "f": 1.5, "t": true, "n": nil, "a": [1, "two"], "o": ["k": false]]
        #expect(v["s"] == .string("x") && v["s"]?.stringValue == "x")
        #expect(v["i"] == .number(3) && v["i"]?.intValue == 3 && v["i"]?.doubleValue == 3)
        #expect(v["f"]?.doubleValue == 1.5 && v["f"]?.intValue == nil)
        #expect(v["t"]?.boolValue == true)
        #expect(v["n"]?.isNull == true && v["n"] == .null)
        #expect(v["a"]?.arrayValue == [.number(1), .string("two")])
        #expect(v["o"]?.objectValue == ["k": .bool(false)])
        // Wrong kinds give nil, never a conversion.
        #expect(v["s"]?.intValue == nil && v["i"]?.stringValue == nil && v["t"]?.doubleValue == nil)
        #expect(v["missing"] == nil && v[0] == nil && v["a"]?["k"] == nil)
        #expect(v["a"]?[1] == "two" && v["a"]?[2] == nil && v["a"]?[-1] == nil)
        #expect(v.isNull == false && v.objectValue?.count == 7)
        let dup: JSONValue = ["a": 1, "a": 2]
        #expect(dup == ["a": 2])
    }

    @Test func intValueOnlyForIntegralNumbersThatFit() {
        #expect(JSONValue.number(-0.0).intValue == 0)
        #expect(JSONValue.number(-42).intValue == -42)
        #expect(JSONValue.number(2.5).intValue == nil)
        #expect(JSONValue.number(1e300).intValue == nil)
        #expect(JSONValue.number(9_223_372_036_854_775_808).intValue == nil)  // 2^63
        #expect(JSONValue.number(.nan).intValue == nil && JSONValue.number(.infinity).intValue == nil)
    }

    @Test func parsesEveryKindAndNesting() throws {
        let v = try JSONValue.parse(" \t\r\n{\"a\" : [1, -2.5e3, 0.125, 1E2, -0, true, false, null, \"s\", {}, []],\n\"b\": {\"c\": {\"d\": [[[]]]}}} ")
        let expected: JSONValue = [
            "a": [1, -2500, 0.125, 100, 0, true, false, nil, "s", [:], []],
            "b": ["c": ["d": [[[]]]]],
        ]
        #expect(v == expected)
        #expect(try JSONValue.parse("{\"k\":1,\"k\":2}") == ["k": 2])
        for (text, value) in [("0", 0), ("-1", -1), ("1e-2", 0.01), ("2E+3", 2000), ("123.456e-1", 12.3456)] as [(String, JSONValue)] {
            #expect(try JSONValue.parse(text) == value)
        }
        #expect(try JSONValue.parse("1e-400") == 0)  // underflow is representable as 0
        #expect(try JSONValue.parse(Array("[true]".utf8)) == [true])
        #expect(try JSONValue.parse("\"\"") == "")
    }

    @Test func openAIChunkThroughSubscripts() throws {
        let chunk = try JSONValue.parse(#"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#)
        #expect(chunk["id"]?.stringValue == "x")
        #expect(chunk["object"]?.stringValue == "chat.completion.chunk")
        #expect(chunk["choices"]?[0]?["index"]?.intValue == 0)
        #expect(chunk["choices"]?[0]?["delta"]?["content"]?.stringValue == "Hel")
        #expect(chunk["choices"]?[0]?["finish_reason"]?.isNull == true)
        #expect(chunk["choices"]?[1] == nil && chunk["usage"] == nil)

        let anthropic = try JSONValue.parse(#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"there\"\n"}}"#)
        #expect(anthropic["delta"]?["text"]?.stringValue == "Hi \"there\"\n")
    }

    @Test func escapesAndSurrogatePairs() throws {
        let v = try JSONValue.parse(#""\"\\\/\b\f\n\r\t\u00e9\u00E9\ud83d\ude00\u0000x""#)
        #expect(v == .string("\"\\/\u{8}\u{c}\n\r\té\u{e9}😀\u{0}x"))
        #expect(try JSONValue.parse(#""\ud83d\ude00""#).stringValue == "😀")
        #expect(try JSONValue.parse("\"é😀\"").stringValue == "é😀")  // raw UTF-8 passes through
        for lone in [#""\ud83d""#, #""\ud83dx""#, #""\ude00""#, #""\ud83d\u0041""#, #""\ud83d\n""#, #""a\udbff""#] {
            let e = parseError(lone)
            #expect(e?.reason.contains("surrogate") == true, "\(lone): \(String(describing: e))")
        }
        #expect(parseError(#""ab\ud83d""#)?.offset == 3)  // the backslash of the lone surrogate
    }

    @Test func invalidUTF8IsRejected() {
        let cases: [[UInt8]] = [
            [0x22, 0xC3, 0x22],               // truncated two-byte sequence
            [0x22, 0xC0, 0xAF, 0x22],         // overlong '/'
            [0x22, 0xE0, 0x80, 0xAF, 0x22],   // overlong three-byte
            [0x22, 0xED, 0xA0, 0x80, 0x22],   // encoded surrogate U+D800
            [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // past U+10FFFF
            [0x22, 0x80, 0x22],               // lone continuation byte
            [0x22, 0xFF, 0x22],
            [0x22, 0x61, 0xF0, 0x9F, 0x98],   // truncated at end of input
        ]
        for bytes in cases {
            #expect(throws: JSONError.self, "\(bytes)") { try JSONValue.parse(bytes) }
        }
        #expect(throws: JSONError(offset: 2, reason: "invalid UTF-8 in string")) {
            try JSONValue.parse([0x22, 0x61, 0xC3, 0x28, 0x22])
        }
        #expect(throws: JSONError.self) { try JSONValue.parse([0xC3, 0xA9]) }  // outside a string
    }

    @Test func malformedInputsThrow() {
        let malformed = [
            "", " ", "[", "]", "{", "}", "[1,]", "[,1]", "{\"a\":1,}", "{,}", "{\"a\" 1}", "{a:1}", "{\"a\":}",
            "{\"a\":1 \"b\":2}", "[1 2]", "[1]]", "1 2", "01", "-01", "00", "-", "+1", ".5", "1.", "1.e3", "1e", "1e+",
            "-a", "NaN", "Infinity", "-Infinity", "tru", "nul", "truex", "True", "'a'", "\"abc", "\"a\tb\"",
            "\"a\nb\"", "\"\\x\"", "\"\\u12\"", "\"\\u12g4\"", "\"\\", "/* c */ 1", "// c\n1", "1e400", "-1e400",
            "\u{FEFF}1", "\u{0}", "[1]\u{0}", "{\"a\":1}}", "[\"a\":1]", "{\"a\",1}", "\u{A0}1",
        ]
        for text in malformed {
            #expect(throws: JSONError.self, "\(text.debugDescription) should not parse") { try JSONValue.parse(text) }
        }
        let offsets: [(String, Int)] = [
            ("", 0), ("{\"a\" 1}", 5), ("[1,]", 3), ("[1 2]", 3), ("01", 1), ("-01", 2), ("\"abc", 4),
            ("1e400", 0), ("  1 2", 4), ("{\"a\":1,}", 7), ("[\"x\u{1}\"]", 3), ("1.", 2), ("\"a\\qb\"", 2),
            ("[[[[nul]]]]", 4),
        ]
        for (text, offset) in offsets {
            #expect(parseError(text)?.offset == offset, "\(text.debugDescription)")
        }
        #expect(parseError("{\"a\" 1}")?.description == "invalid JSON at byte 5: expected ':' after object key, found '1'")
        #expect(parseError("[1]x")?.description == "invalid JSON at byte 3: unexpected 'x' after the value")
        #expect(parseError("01")?.reason == "leading zeros are not allowed")
    }

    @Test func depthLimit() throws {
        func nested(_ n: Int) -> String { String(repeating: "[", count: n) + String(repeating: "]", count: n) }
        #expect(try JSONValue.parse(nested(64)) != .null)
        #expect(throws: JSONError(offset: 64, reason: "nesting deeper than 64 levels")) { try JSONValue.parse(nested(65)) }
        func nestedObjects(_ n: Int) -> String { String(repeating: "{\"a\":", count: n) + "1" + String(repeating: "}", count: n) }
        #expect(try JSONValue.parse(nestedObjects(64))["a"]?["a"] != nil)
        #expect(throws: JSONError.self) { try JSONValue.parse(nestedObjects(65)) }
        // Hostile depth is refused at the limit, not by running out of stack.
        #expect(throws: JSONError.self) { try JSONValue.parse(String(repeating: "[", count: 1_000_000)) }
        #expect(throws: JSONError.self) { try JSONValue.parse(String(repeating: "[{\"a\":", count: 100_000)) }
        var shallow = JSONLimits()
        shallow.maxDepth = 2
        #expect(try JSONValue.parse("[[1]]", limits: shallow) == [[1]])
        #expect(parseError("[[[1]]]", limits: shallow)?.offset == 2)
        shallow.maxDepth = 0
        #expect(try JSONValue.parse("7", limits: shallow) == 7)
        #expect(parseError("[]", limits: shallow)?.offset == 0)
    }

    @Test func sizeLimits() throws {
        var limits = JSONLimits()
        #expect(limits.maxDepth == 64 && limits.maxBytes == 8 << 20 && limits.maxStringBytes == 4 << 20)
        limits.maxBytes = 10
        #expect(try JSONValue.parse("[1,2,3,45]", limits: limits) == [1, 2, 3, 45])
        let tooBig = parseError("[1,2,3,4,5]", limits: limits)
        #expect(tooBig?.offset == 10 && tooBig?.reason.contains("limit") == true)
        #expect(throws: JSONError.self) { try JSONValue.parse(String(repeating: " ", count: 9 << 20) + "1") }

        limits = JSONLimits()
        limits.maxStringBytes = 4
        #expect(try JSONValue.parse("\"abcd\"", limits: limits) == "abcd")
        #expect(try JSONValue.parse(#""\u00e9\u00e9""#, limits: limits) == "éé")  // four decoded bytes
        #expect(parseError("\"abcde\"", limits: limits)?.offset == 0)
        #expect(parseError(#"["\u00e9\u00e9x"]"#, limits: limits)?.offset == 1)
        #expect(parseError("{\"abcde\":1}", limits: limits) != nil)  // keys count too
    }

    @Test func encodingIsCompactSortedAndDeterministic() {
        let v: JSONValue = ["b": 1, "a": [true, nil, "x"], "c": ["z": 2.5, "y": -0.0, "é": 0, "Z": 1]]
        #expect(v.encoded() == #"{"a":[true,null,"x"],"b":1,"c":{"Z":1,"y":0,"z":2.5,"é":0}}"#)
        var forward: [String: JSONValue] = [:], backward: [String: JSONValue] = [:]
        for i in 0..<200 { forward["key\(i)"] = .number(Double(i)) }
        for i in (0..<200).reversed() { backward["key\(i)"] = .number(Double(i)) }
        #expect(JSONValue.object(forward).encoded() == JSONValue.object(backward).encoded())
        #expect(JSONValue.array([]).encoded() == "[]" && JSONValue.object([:]).encoded() == "{}")
    }

    @Test func numberEncoding() {
        let cases: [(Double, String)] = [
            (3, "3"), (-7, "-7"), (0, "0"), (-0.0, "0"), (1e15, "1000000000000000"),
            (9_007_199_254_740_992, "9007199254740992"), (-9_007_199_254_740_992, "-9007199254740992"),
            (18_014_398_509_481_984, "1.8014398509481984e+16"), (0.1, "0.1"), (-2.5, "-2.5"), (1e300, "1e+300"),
            (1e-5, "1e-05"), (.leastNonzeroMagnitude, "5e-324"), (.nan, "null"), (.infinity, "null"), (-.infinity, "null"),
        ]
        for (number, text) in cases {
            #expect(JSONValue.number(number).encoded() == text)
        }
    }

    @Test func stringEscaping() throws {
        let s = "\u{0}\u{1}\u{1f}\n\r\t\u{8}\u{c}\"\\/é😀\u{7f}"
        let text = JSONValue.string(s).encoded()
        #expect(text == #""\u0000\u0001\u001f\n\r\t\b\f\"\\/é😀"# + "\u{7f}\"")
        #expect(try JSONValue.parse(text) == .string(s))
    }

    @Test func roundTrips() throws {
        let canonical = [
            "null", "true", "false", "0", "-1", "0.5", "1e+300", "\"\"", "\"a\\\"b\"", "[]", "{}", "[[],{}]",
            #"{"a":{"b":[1,2,{"c":null}]},"d":"é😀\u0000"}"#,
            #"{"choices":[{"delta":{"content":"Hel"},"finish_reason":null,"index":0}],"id":"x","object":"chat.completion.chunk"}"#,
        ]
        for text in canonical {
            let v = try JSONValue.parse(text)
            #expect(v.encoded() == text)
            #expect(try JSONValue.parse(v.encoded()) == v)
        }
        var rng = SplitMix64(seed: 1)
        for _ in 0..<2_000 {
            let v = randomValue(&rng, depth: 4)
            let text = v.encoded()
            #expect((try? JSONValue.parse(text)) == v, "\(text)")
        }
    }

    @Test func fuzzNeverCrashesAndAcceptedInputsRoundTrip() {
        var rng = SplitMix64(seed: 0xC1A7)
        var accepted = 0
        func check(_ bytes: [UInt8]) {
            guard let v = try? JSONValue.parse(bytes) else { return }
            accepted += 1
            let text = v.encoded()
            let again = try? JSONValue.parse(text)
            #expect(again == v, "\(bytes) encoded as \(text)")
            #expect(again?.encoded() == text)
        }
        let alphabet = Array("{}[]\",:0123456789-+.eEtrufalsn\\u \n\t/x".utf8) + [0x00, 0x1F, 0x80, 0xC3, 0xA9, 0xED, 0xF0, 0xFF]
        for i in 0..<20_000 {
            let count = Int.random(in: 0...24, using: &rng)
            check((0..<count).map { _ in
                i.isMultiple(of: 2) ? UInt8.random(in: 0...255, using: &rng) : alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
            })
        }
        let seeds = [
            #"{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
            #"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \u00e9 \ud83d\ude00"}}"#,
            #"[1,-2.5e-3,0,true,false,null,"a\tb",{"k":[[]]},1E+2]"#,
        ].map { Array($0.utf8) }
        for _ in 0..<20_000 {
            var bytes = seeds[Int.random(in: 0..<seeds.count, using: &rng)]
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                let at = Int.random(in: 0..<bytes.count, using: &rng)
                let byte = Bool.random(using: &rng) ? UInt8.random(in: 0...255, using: &rng) : alphabet[Int.random(in: 0..<alphabet.count, using: &rng)]
                switch Int.random(in: 0..<4, using: &rng) {
                case 0: bytes[at] = byte
                case 1: bytes.insert(byte, at: at)
                case 2: if bytes.count > 1 { bytes.remove(at: at) }
                default: bytes = Array(bytes[..<at])  // truncation
                }
                if bytes.isEmpty { bytes = [UInt8(ascii: "[")] }
            }
            check(bytes)
        }
        // Some inputs of both kinds must have parsed, or the round-trip check proved nothing.
        #expect(accepted > 500)
    }
}
