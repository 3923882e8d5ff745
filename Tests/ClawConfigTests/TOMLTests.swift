import Testing
@testable import ClawConfig

/// The TOML subset: what it reads, with its lines, and every line it refuses.
@Suite struct TOMLTests {
    @Test func readsTheSubsetWithLineNumbers() {
        let doc = TOMLDocument(parsing: """
            # a comment
            top = "level"

            [server]   # trailing comment
            listen = "0.0.0.0:47400"
            rekey_interval = 3_600
            negative = -5
            ratio = 1.5
            exp = 2e3
            on = true
            off = false
            literal = 'C:\\path\\no escapes'
            escaped = "tab\\tquote\\"uni\\u00e9"
            empty = []
            list = [
              "a",   # first
              "b",
            ]
            inline = ["x", 'y']
            [assistant]
            provider = "echo"
            """)
        #expect(doc.errors == [])
        #expect(doc.tables == [TOMLTable(name: "server", line: 4), TOMLTable(name: "assistant", line: 20)])
        func v(_ t: String, _ k: String) -> TOMLValue? { doc.entry(t, k)?.value }
        #expect(doc.entry("", "top") == TOMLEntry(table: "", key: "top", value: .string("level"), line: 2))
        #expect(doc.entry("server", "listen")?.line == 5)
        #expect(v("server", "rekey_interval") == .integer(3600))
        #expect(v("server", "negative") == .integer(-5))
        #expect(v("server", "ratio") == .float(1.5))
        #expect(v("server", "exp") == .float(2000))
        #expect(v("server", "on") == .boolean(true))
        #expect(v("server", "off") == .boolean(false))
        #expect(v("server", "literal") == .string("C:\\path\\no escapes"))
        #expect(v("server", "escaped") == .string("tab\tquote\"unié"))
        #expect(v("server", "empty") == .stringArray([]))
        #expect(v("server", "list") == .stringArray(["a", "b"]))
        #expect(doc.entry("server", "list")?.line == 15)
        #expect(v("server", "inline") == .stringArray(["x", "y"]))
        #expect(doc.entry("assistant", "provider")?.line == 21)
        #expect(doc.entry("server", "provider") == nil)
    }

    @Test func crlfAndBOM() {
        let doc = TOMLDocument(parsing: "\u{FEFF}[a]\r\nb = 1\r\n\r\nc = \"x\"\r\n")
        #expect(doc.errors == [])
        #expect(doc.entry("a", "c") == TOMLEntry(table: "a", key: "c", value: .string("x"), line: 4))
    }

    /// One mistake a line; each is reported at its line and the rest still parses.
    @Test func everyMistakeAtItsLine() {
        let lines = [
            "[server]",                        // 1
            "listen = 0.0.0.0:47400",          // 2  unquoted
            "provider = openai",               // 3  unquoted word
            "name = \"unterminated",           // 4
            "x.y = 1",                         // 5  dotted key
            "[a.b]",                           // 6  nested table
            "[[jobs]]",                        // 7
            "t = { a = 1 }",                   // 8  inline table
            "d = 1979-05-27",                  // 9  date
            "h = 0x1F",                        // 10
            "bad = [1, 2]",                    // 11 array of integers
            "ok = \"fine\"",                   // 12
            "ok = \"again\"",                  // 13 duplicate
            "= 3",                             // 14
            "k = \"v\" trailing",              // 15
            "\"quoted\" = 1",                  // 16
            "n = 01",                          // 17 leading zero
            "m = \"\"\"multi\"\"\"",           // 18
            "esc = \"\\q\"",                   // 19 invalid escape
            "nothing =",                       // 20
            "[server]",                        // 21 duplicate table
            "after = 1",                       // 22 fine
        ]
        let doc = TOMLDocument(parsing: lines.joined(separator: "\n"))
        #expect(doc.errors.map(\.line) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21])
        let byLine = Dictionary(doc.errors.map { ($0.line, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byLine[3]?.message == "a string needs quotes: \"openai\"")
        #expect(byLine[3]?.key == "server.provider")
        #expect(byLine[2]?.message == "a string needs quotes: \"0.0.0.0:47400\"")
        #expect(byLine[9]?.message == "dates and times are not supported; write them as strings")
        #expect(byLine[10]?.message == "only decimal integers are supported")
        #expect(byLine[13]?.message == "set twice (first at line 12)")
        #expect(byLine[21]?.message.contains("defined twice") == true)
        #expect(doc.entry("server", "ok")?.value == .string("fine"))
        #expect(doc.entry("server", "after")?.line == 22)
    }

    /// A mistake inside a multi-line array skips the rest of that array, not what follows.
    @Test func mistakeInsideAMultiLineArray() {
        let doc = TOMLDocument(parsing: """
            [s]
            list = [
              "a",
              3,
              "c",
            ]
            next = "yes"
            unterminated = [
              "a"
            """)
        #expect(doc.errors.map(\.line) == [4, 8])
        #expect(doc.entry("s", "next") == TOMLEntry(table: "s", key: "next", value: .string("yes"), line: 7))
    }

    @Test func numbers() {
        #expect(TOMLDocument(parsing: "a = +7\nb = -0.25\nc = 1_000_000\nd = 6.02e+23\ne = 0\nf = 1E-2").errors == [])
        for bad in ["1__0", "_1", "1_", "1.", ".5", "1e", "00", "9223372036854775808", "inf", "nan", "1.2.3"] {
            #expect(TOMLDocument(parsing: "x = \(bad)").errors.count == 1, "\(bad)")
        }
        #expect(TOMLDocument(parsing: "x = -9223372036854775808").entry("", "x")?.value == .integer(Int.min))
    }

    @Test func valuesPrintBackAsTOML() {
        #expect(TOMLValue.string("a\"b\\c\n").description == "\"a\\\"b\\\\c\\n\"")
        #expect(TOMLValue.float(90).description == "90.0")
        #expect(TOMLValue.stringArray(["x", "y"]).description == "[\"x\", \"y\"]")
        for v: TOMLValue in [.string("é\t\u{1}"), .integer(-3), .float(0.5), .boolean(true), .stringArray(["a", "b\""])] {
            #expect(TOMLDocument(parsing: "k = \(v)").entry("", "k")?.value == v)
        }
    }

    @Test func invalidUTF8Line() {
        #expect(TOMLDocument.firstInvalidUTF8Line(Array("a = 1\nb = \"x\"\n".utf8)) == nil)
        #expect(TOMLDocument.firstInvalidUTF8Line([0x61, 0x0A, 0x62, 0x0A, 0x22, 0xFF, 0x22]) == 3)
    }
}
