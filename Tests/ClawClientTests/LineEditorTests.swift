import Testing
@testable import ClawClient

private typealias Action = LineEditor.Action

private let esc = "\u{1B}"

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// An editor holding `line` with the cursor at `cursor`.
private func editor(_ line: String = "", cursor: Int? = nil, history: [String] = []) -> LineEditor {
    var e = LineEditor(history: history)
    e.replaceLine(line, cursor: cursor)
    return e
}

/// The actions other than `.redraw`, whose number depends on how input was split.
private func effects(_ actions: [Action]) -> [Action] { actions.filter { $0 != .redraw } }

/// Feeds `input` to copies of `start` cut into two chunks at every position and one byte at a
/// time, and checks that each ends with `line` and `cursor` and the same effects.
private func check(_ start: LineEditor, _ input: [UInt8], line: String, cursor: Int, effects expected: [Action] = [],
                   sourceLocation: SourceLocation = #_sourceLocation) {
    for cut in 0...input.count {
        var e = start
        let actions = e.feed(input[..<cut]) + e.feed(input[cut...])
        #expect(e.line == line && e.cursor == cursor, "split at \(cut): \(e.line.debugDescription) @ \(e.cursor)",
                sourceLocation: sourceLocation)
        #expect(effects(actions) == expected, "split at \(cut)", sourceLocation: sourceLocation)
    }
    var e = start
    var actions: [Action] = []
    for b in input { actions += e.feed([b]) }
    #expect(e.line == line && e.cursor == cursor, "byte by byte: \(e.line.debugDescription) @ \(e.cursor)",
            sourceLocation: sourceLocation)
    #expect(effects(actions) == expected, "byte by byte", sourceLocation: sourceLocation)
}

@Suite struct LineEditorInputTests {
    @Test func typingInsertsAtTheCursorWithOneRedraw() {
        var e = LineEditor()
        #expect(e.feed(bytes("hello")) == [.redraw])
        #expect(e.line == "hello" && e.cursor == 5)
        #expect(e.feed(bytes("\(esc)[D\(esc)[D")) == [.redraw])
        #expect(e.feed(bytes("XY")) == [.redraw])
        #expect(e.line == "helXYlo" && e.cursor == 5)
        #expect(e.feed(bytes("\u{01}>")) == [.redraw])
        #expect(e.line == ">helXYlo" && e.cursor == 1)
    }

    @Test func utf8CharactersSplitAtEveryByteInsertWhole() {
        // é precomposed, two CJK ideographs, an emoji, and é as e + combining acute.
        let text = "é日本😀e\u{301}"
        check(LineEditor(), bytes(text), line: text, cursor: 5)
        check(editor("ab", cursor: 1), bytes(text), line: "a" + text + "b", cursor: 6)
    }

    @Test func aCombiningMarkTypedLaterJoinsThePreviousCharacter() {
        var e = LineEditor()
        _ = e.feed(bytes("ne"))
        _ = e.feed(bytes("\u{301}"))
        #expect(e.line == "ne\u{301}" && e.cursor == 2 && e.line.count == 2)
    }

    @Test func theCursorMovesOverWholeGraphemeClusters() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}"
        let flag = "\u{1F1EB}\u{1F1F7}"
        check(editor("a\(family)\(flag)b"), bytes("\(esc)[D\(esc)[D"), line: "a\(family)\(flag)b", cursor: 2)
        check(editor("a\(family)\(flag)b", cursor: 3), [0x7F, 0x7F], line: "ab", cursor: 1)
        // Deleting what separates two regional indicators leaves one flag, and the count agrees.
        check(editor("\u{1F1EB}x\u{1F1F7}", cursor: 2), [0x7F], line: flag, cursor: 1)
    }

    @Test func invalidUTF8AndC1ControlsAreDropped() {
        // A stray 0xFF, a lead byte cut short by an ASCII byte, a surrogate, an overlong "/",
        // and U+0085 (NEL, a C1 control).
        let input: [UInt8] = [0xFF, 0x61, 0xC3, 0x62, 0xED, 0xA0, 0x80, 0xC0, 0xAF, 0xC2, 0x85, 0x63]
        check(LineEditor(), input, line: "abc", cursor: 3)
    }

    @Test func everyEditingKeyInEveryEncodingAndSplit() {
        // "foo bar-baz qux" with the cursor between the b and the a of "baz".
        let start = editor("foo bar-baz qux", cursor: 9)
        let cases: [(String, String, Int)] = [
            ("\u{7F}", "foo bar-az qux", 8),          // Backspace
            ("\u{08}", "foo bar-az qux", 8),          // Ctrl-H
            ("\(esc)[3~", "foo bar-bz qux", 9),       // Delete
            ("\u{04}", "foo bar-bz qux", 9),          // Ctrl-D on a non-empty line
            ("\(esc)[D", "foo bar-baz qux", 8), ("\(esc)OD", "foo bar-baz qux", 8), ("\u{02}", "foo bar-baz qux", 8),
            ("\(esc)[C", "foo bar-baz qux", 10), ("\(esc)OC", "foo bar-baz qux", 10), ("\u{06}", "foo bar-baz qux", 10),
            ("\(esc)[H", "foo bar-baz qux", 0), ("\(esc)OH", "foo bar-baz qux", 0), ("\(esc)[1~", "foo bar-baz qux", 0),
            ("\(esc)[7~", "foo bar-baz qux", 0), ("\u{01}", "foo bar-baz qux", 0),
            ("\(esc)[F", "foo bar-baz qux", 15), ("\(esc)OF", "foo bar-baz qux", 15), ("\(esc)[4~", "foo bar-baz qux", 15),
            ("\(esc)[8~", "foo bar-baz qux", 15), ("\u{05}", "foo bar-baz qux", 15),
            // Words: letters and digits, so "-" is a boundary.
            ("\(esc)b", "foo bar-baz qux", 8), ("\(esc)[1;5D", "foo bar-baz qux", 8), ("\(esc)[1;3D", "foo bar-baz qux", 8),
            ("\(esc)Od", "foo bar-baz qux", 8),
            ("\(esc)f", "foo bar-baz qux", 11), ("\(esc)[1;5C", "foo bar-baz qux", 11), ("\(esc)Oc", "foo bar-baz qux", 11),
            // Shift+Right is a plain Right.
            ("\(esc)[1;2C", "foo bar-baz qux", 10),
            ("\u{15}", "az qux", 0),                  // Ctrl-U
            ("\u{0B}", "foo bar-b", 9),               // Ctrl-K
            ("\u{17}", "foo az qux", 4),              // Ctrl-W: back to whitespace
            ("\(esc)\u{7F}", "foo bar-az qux", 8),    // Alt-Backspace: back to punctuation
            ("\(esc)d", "foo bar-b qux", 9),          // Alt-D
            ("\u{0B}\u{01}\u{19}", "az quxfoo bar-b", 6),  // Ctrl-K, Ctrl-A, Ctrl-Y
            ("\u{19}", "foo bar-baz qux", 9),         // Ctrl-Y with nothing killed
        ]
        for (key, line, cursor) in cases {
            check(start, bytes(key), line: line, cursor: cursor)
        }
    }

    @Test func movingPastEitherEndDoesNothing() {
        var e = editor("ab", cursor: 0)
        #expect(e.feed(bytes("\(esc)[D\u{7F}\u{01}")).isEmpty)
        e.cursor = 2
        #expect(e.feed(bytes("\(esc)[C\(esc)[3~\u{05}")).isEmpty)
        #expect(e.line == "ab" && e.cursor == 2)
    }

    @Test func unknownEscapeSequencesAreSwallowedWhole() {
        let sequences = [
            "\(esc)[5~", "\(esc)[6~", "\(esc)[2~",    // Page Up/Down, Insert
            "\(esc)[?1049h", "\(esc)[>0;1c",          // private forms
            "\(esc)[12;34R",                          // a cursor position report
            "\(esc)[Z", "\(esc)[I", "\(esc)[O",       // Shift-Tab, focus in/out
            "\(esc)OP", "\(esc)[15~", "\(esc)[1;2P",  // function keys
            "\(esc)[[A",                              // Linux console F1
            "\(esc)[ q",                              // an intermediate byte
            "\(esc)[" + Array(repeating: "1", count: 200).joined(separator: ";") + "m",
            "\(esc)x", "\(esc)Q",                     // Alt with keys we do not bind
        ]
        for s in sequences {
            check(editor("ab"), bytes(s + "c"), line: "abc", cursor: 3)
        }
    }

    @Test func aSequenceCutShortByAControlKeyStillActsOnTheKey() {
        check(editor("ab"), bytes("\(esc)[1;\u{03}"), line: "", cursor: 0, effects: [.interrupt])
        check(editor("ab"), bytes("\(esc)\r"), line: "", cursor: 0, effects: [.submit("ab")])
        check(editor("ab"), bytes("\(esc)\(esc)[D"), line: "ab", cursor: 1)
    }

    @Test func enterSubmitsOnceForCRLFOrEither() {
        check(LineEditor(), bytes("a\r\nb\rc\n"), line: "", cursor: 0, effects: [.submit("a"), .submit("b"), .submit("c")])
        // An empty line is submitted too (the caller shows a new prompt), but not remembered.
        check(LineEditor(), bytes("x\r\n\r\n"), line: "", cursor: 0, effects: [.submit("x"), .submit("")])
        var e = LineEditor()
        _ = e.feed(bytes("one\rone\r\rtwo\r"))
        #expect(e.history == ["one", "two"])
    }

    @Test func theHistoryIsBounded() {
        var e = LineEditor(history: ["a", "b", "c"], historyLimit: 2)
        #expect(e.history == ["b", "c"])
        _ = e.feed(bytes("d\r"))
        #expect(e.history == ["c", "d"])
        e.history = ["1", "2", "3"]
        #expect(e.history == ["2", "3"])
    }

    @Test func walkingTheHistoryKeepsTheLineBeingEdited() {
        for (up, down) in [("\(esc)[A", "\(esc)[B"), ("\(esc)OA", "\(esc)OB"), ("\u{10}", "\u{0E}")] {
            var e = editor("dra", history: ["one", "two"])
            #expect(e.feed(bytes(up)) == [.redraw])
            #expect(e.line == "two" && e.cursor == 3)
            _ = e.feed(bytes(up))
            #expect(e.line == "one")
            #expect(e.feed(bytes(up)) == [.bell])
            #expect(e.line == "one")
            _ = e.feed(bytes(down))
            #expect(e.line == "two")
            #expect(e.feed(bytes(down)) == [.redraw])
            #expect(e.line == "dra" && e.cursor == 3)
            #expect(e.feed(bytes(down)) == [.bell])
        }
        var empty = LineEditor()
        #expect(empty.feed(bytes("\(esc)[A")) == [.bell])
    }

    @Test func aRecalledAndEditedEntryIsSubmittedAndRemembered() {
        var e = editor("", history: ["hello"])
        let actions = e.feed(bytes("\(esc)[A!\r"))
        #expect(effects(actions) == [.submit("hello!")])
        #expect(e.history == ["hello", "hello!"] && e.line == "")
        // After a submit, Up starts again from the newest entry.
        _ = e.feed(bytes("\(esc)[A"))
        #expect(e.line == "hello!")
    }

    @Test func ctrlCDiscardsTheLineAndEndsAWalk() {
        var e = editor("", history: ["old"])
        #expect(e.feed(bytes("\(esc)[Atyped\u{03}")) == [.redraw, .interrupt])
        #expect(e.line == "" && e.cursor == 0 && e.history == ["old"])
        #expect(e.interruptedLine == "oldtyped")
        #expect(e.feed(bytes("\(esc)[B")) == [.bell])
        #expect(e.feed([0x03]) == [.interrupt])
        #expect(e.interruptedLine == "")
    }

    @Test func ctrlDEndsInputOnlyOnAnEmptyLine() {
        var e = LineEditor()
        #expect(e.feed([0x04]) == [.endOfInput])
        check(editor("ab", cursor: 0), [0x04], line: "b", cursor: 0)
        var atEnd = editor("ab")
        #expect(atEnd.feed([0x04]).isEmpty)
    }

    @Test func tabAsksForACompletionAndReplaceLineAppliesIt() {
        var e = LineEditor()
        #expect(e.feed(bytes("/he\t")) == [.redraw, .complete(line: "/he", cursor: 3)])
        e.replaceLine("/help ", cursor: nil)
        #expect(e.line == "/help " && e.cursor == 6)
        e.replaceLine("abc", cursor: 99)
        #expect(e.cursor == 3)
    }

    @Test func ctrlLClearsTheScreenAndOtherControlKeysRing() {
        var e = editor("ab")
        #expect(e.feed([0x0C]) == [.clearScreen])
        #expect(e.feed([0x07, 0x1A, 0x12]) == [.bell, .bell, .bell])
        #expect(e.line == "ab")
    }

    @Test func bracketedPasteInsertsTextLiterally() {
        let paste = "\(esc)[200~line1\r\nline2\tx\(esc)[A\u{04}\(esc)[201~"
        check(editor("> "), bytes(paste), line: "> line1 line2 x", cursor: 15)
        check(editor("> "), bytes(paste + "\r"), line: "", cursor: 0, effects: [.submit("> line1 line2 x")])
        // Escape sequences inside a paste are not keys, and an ESC with a letter keeps the letter.
        check(LineEditor(), bytes("\(esc)[200~a\(esc)bc\(esc)[201~"), line: "abc", cursor: 3)
    }

    @Test func ctrlCEndsAPasteWhoseEndNeverCame() {
        var e = LineEditor()
        #expect(effects(e.feed(bytes("\(esc)[200~abc\u{03}def\r"))) == [.interrupt, .submit("def")])
    }

    @Test func aWholeSessionGivesTheSameResultHoweverItIsSplit() {
        let input = "ab\(esc)[D日\(esc)[1;5Dx\(esc)OF\u{17}y\ttop\r\(esc)[A\(esc)[3~\u{7F}\u{03}"
        check(editor("", history: ["prev"]), bytes(input), line: "", cursor: 0,
              effects: [.complete(line: "y", cursor: 1), .submit("ytop"), .interrupt])
    }
}

@Suite struct LineEditorRenderTests {
    @Test func aShortLineIsDrawnWhole() {
        var e = editor("hello")
        #expect(e.render(prompt: "> ", width: 80) == bytes("\r> hello\(esc)[K"))
        e.cursor = 2
        #expect(e.render(prompt: "> ", width: 80) == bytes("\r> hello\(esc)[K\r\(esc)[4C"))
        e.cursor = 0
        #expect(e.render(prompt: "", width: 80) == bytes("\rhello\(esc)[K\r"))
        #expect(LineEditor().render(prompt: "> ", width: 80) == bytes("\r> \(esc)[K"))
    }

    @Test func aLongLineScrollsToKeepTheCursorVisible() {
        // Width 20: 19 usable columns, 2 for the prompt, 17 for the line, moving by 8.
        let text = "abcdefghijklmnopqrstuvwxyz0123456789"
        var e = editor(text, cursor: 0)
        #expect(e.render(prompt: "> ", width: 20) == bytes("\r> abcdefghijklmnopq\(esc)[K\r\(esc)[2C"))
        e.cursor = 17
        #expect(e.render(prompt: "> ", width: 20) == bytes("\r> abcdefghijklmnopq\(esc)[K"))
        e.cursor = 20
        #expect(e.render(prompt: "> ", width: 20) == bytes("\r> ijklmnopqrstuvwxy\(esc)[K\r\(esc)[14C"))
        e.cursor = 36
        #expect(e.render(prompt: "> ", width: 20) == bytes("\r> yz0123456789\(esc)[K"))
    }

    @Test func wideCharactersTakeTwoColumns() {
        let e = editor("日本語", cursor: 1)
        #expect(e.render(prompt: "> ", width: 80) == bytes("\r> 日本語\(esc)[K\r\(esc)[4C"))
        #expect(LineEditor.displayWidth("a") == 1)
        #expect(LineEditor.displayWidth("é") == 1)
        #expect(LineEditor.displayWidth("e\u{301}" as Character) == 1)
        #expect(LineEditor.displayWidth("日" as Character) == 2)
        #expect(LineEditor.displayWidth("한" as Character) == 2)
        #expect(LineEditor.displayWidth("Ａ" as Character) == 2)
        #expect(LineEditor.displayWidth("😀" as Character) == 2)
        #expect(LineEditor.displayWidth("\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}" as Character) == 2)
        #expect(LineEditor.displayWidth("\u{1F1EB}\u{1F1F7}" as Character) == 2)
        #expect(LineEditor.displayWidth("\u{2764}" as Character) == 1)
        #expect(LineEditor.displayWidth("\u{2764}\u{FE0F}" as Character) == 2)
        #expect(LineEditor.displayWidth("\u{301}" as Character) == 0)
        #expect(LineEditor.displayWidth("日本 ok" as String) == 7)
    }

    /// For every cursor position of lines with wide characters, at several widths: the row never
    /// reaches the last column, the cursor is on the row, and the drawn text is the part of the
    /// line around the cursor.
    @Test func theScrolledWindowAlwaysFitsAndHoldsTheCursor() {
        let lines = ["日本語のテキストとemoji😀😀 mixed with ascii text and more 日本語",
                     String(repeating: "x", count: 100), String(repeating: "日", count: 50)]
        for text in lines {
            for width in [4, 7, 12, 20, 33, 80] {
                for prompt in ["> ", "a long prompt here> "] {
                    for cursor in 0...text.count {
                        let e = editor(text, cursor: cursor)
                        let drawn = Drawn(e.render(prompt: prompt, width: width))
                        let where_ = "width \(width) cursor \(cursor) prompt \(prompt.debugDescription)"
                        #expect(LineEditor.displayWidth(drawn.text) <= width - 1, "\(where_)")
                        #expect(drawn.column <= width - 1, "\(where_)")
                        let shownPrompt = drawn.text.hasPrefix(prompt) ? prompt : ""
                        let shown = Array(drawn.text.dropFirst(shownPrompt.count))
                        let chars = Array(text)
                        // The shown text is a slice of the line that contains the cursor.
                        let starts = (0...cursor).filter { s in
                            s + shown.count <= chars.count && Array(chars[s..<s + shown.count]) == shown && cursor <= s + shown.count
                        }
                        let matching = starts.filter { s in
                            LineEditor.displayWidth(shownPrompt) + LineEditor.displayWidth(String(chars[s..<cursor])) == drawn.column
                        }
                        #expect(!matching.isEmpty, "\(where_): \(drawn.text) col \(drawn.column)")
                    }
                }
            }
        }
    }

    @Test func controlCharactersAreShownInCaretNotation() {
        let e = editor("a\u{1B}[2Jb\u{7F}")
        #expect(e.render(prompt: "", width: 80) == bytes("\ra^[[2Jb^?\(esc)[K"))
    }

    @Test func colourInThePromptTakesNoColumns() {
        let e = editor("hi", cursor: 0)
        let prompt = "\(esc)[1;32m>\(esc)[0m "
        #expect(e.render(prompt: prompt, width: 80) == bytes("\r\(prompt)hi\(esc)[K\r\(esc)[2C"))
    }

    @Test func aSubmittedLineIsLeftOnScreenWhole() {
        #expect(LineEditor.renderSubmitted(prompt: "> ", line: "hello") == bytes("\r\(esc)[K> hello\n"))
    }
}

/// What a `render` output draws: the text between `\r` and `ESC [ K`, and the cursor column.
private struct Drawn {
    var text = ""
    var column = 0

    init(_ out: [UInt8]) {
        let s = String(decoding: out, as: UTF8.self)
        let eraseAt = s.firstRange(of: "\u{1B}[K")!
        text = String(s[s.index(after: s.startIndex)..<eraseAt.lowerBound])
        let tail = s[eraseAt.upperBound...]
        if tail.isEmpty {
            column = LineEditor.displayWidth(text)
        } else if tail == "\r" {
            column = 0
        } else {
            column = Int(tail.dropFirst(3).dropLast())!
        }
    }
}
