/// The interactive client's line editor: bytes from a terminal in raw mode in, actions out.
///
/// A pure state machine in the style of the channel and SSE parsers: no file descriptors, no
/// clock, no terminal. `feed` takes whatever `read(2)` returned (an escape sequence or a UTF-8
/// character may be split across reads), edits the line and returns what the I/O layer must do;
/// `render` returns the bytes that draw the line. `Terminal` is the thin layer that performs them.
///
/// Keys follow readline's emacs mode, the one users' fingers already know: Ctrl-A/E/B/F/U/K/W/Y,
/// Alt-B/F/D, the arrows (both the CSI `ESC [` and the SS3 `ESC O` forms), Home/End/Delete in
/// their several encodings, Up/Down and Ctrl-P/N for history, and bracketed paste.
///
/// The cursor counts `Character`s (grapheme clusters), so one Left moves over "é" written as e +
/// combining accent, over a flag, or over a family emoji, as the eye expects.
public struct LineEditor: Sendable {
    /// What the I/O layer must do after a `feed`, in order.
    public enum Action: Equatable, Sendable {
        /// The line or the cursor changed: draw it again with `render` (when the line is shown).
        case redraw
        /// Enter: the finished line. The editor is empty again and the line is in `history`.
        case submit(String)
        /// Ctrl-C: the line was discarded (it is in `interruptedLine`). The caller cancels what is
        /// running, or leaves if the line was empty, or shows a new prompt.
        case interrupt
        /// Ctrl-D on an empty line: the user is done.
        case endOfInput
        /// Tab: the caller may complete and then call `replaceLine`.
        case complete(line: String, cursor: Int)
        /// Ctrl-L: clear the screen, then draw the line again.
        case clearScreen
        /// The key did nothing (no older history entry, an unbound control key).
        case bell
    }

    /// The line, one element per grapheme cluster, kept in the segmentation `String` would give
    /// (see `replace`), so that `cursor` and `line.count` always agree.
    private var chars: [Character] = []
    private var position = 0

    /// The line being edited.
    public var line: String {
        get { String(chars) }
        set { replaceLine(newValue, cursor: nil) }
    }

    /// The cursor, in characters from the start of the line; setting it clamps to the line.
    public var cursor: Int {
        get { position }
        set { position = min(max(newValue, 0), chars.count) }
    }

    /// Previous lines, oldest first. Setting it (from `LineHistory.load`) ends any history walk
    /// and keeps the newest `historyLimit` entries.
    public var history: [String] = [] {
        didSet {
            walk = nil
            if history.count > historyLimit { history.removeFirst(history.count - historyLimit) }
        }
    }

    /// The line the last Ctrl-C discarded, so that the caller can tell "abandon this line" from
    /// "leave" (Ctrl-C at an empty prompt).
    public private(set) var interruptedLine = ""

    /// How many entries `history` keeps; the oldest go first.
    public var historyLimit: Int

    /// Where Up/Down is in `history`, nil while editing a fresh line.
    private var walk: Int?
    /// The fresh line, kept while the user walks the history so that Down past the newest entry
    /// gives it back.
    private var draft: [Character] = []
    /// The last text removed by Ctrl-U, Ctrl-K, Ctrl-W, Alt-D or Alt-Backspace, for Ctrl-Y.
    private var killed: [Character] = []

    private var parser = Parser.ground
    private var utf8 = UTF8Assembler()
    /// The previous byte was CR: an LF right after it is the second half of the same Enter.
    private var afterCR = false
    /// Inside `ESC [ 200 ~` ... `ESC [ 201 ~`: bytes are text, never commands.
    private var pasting = false

    /// Printable text of the current `feed` not inserted yet, so that a paste of many kilobytes
    /// costs one insertion rather than one per character.
    private var typed = ""
    /// The actions of the current `feed`.
    private var actions: [Action] = []

    public init(history: [String] = [], historyLimit: Int = 1000) {
        self.historyLimit = max(historyLimit, 0)
        self.history = Array(history.suffix(self.historyLimit))
    }

    // MARK: Input

    /// Consumes bytes read from the terminal and returns what to do, in order. Consecutive
    /// `.redraw`s are merged into one.
    public mutating func feed(_ bytes: some Collection<UInt8>) -> [Action] {
        actions = []
        for b in bytes { consume(b) }
        flushTyped()
        let out = actions
        actions = []
        return out
    }

    /// Replaces the line (after a completion); `cursor` nil puts the cursor at the end. The new
    /// line is a fresh edit: a history walk in progress ends.
    public mutating func replaceLine(_ s: String, cursor: Int? = nil) {
        chars = Array(s)
        position = min(max(cursor ?? chars.count, 0), chars.count)
        walk = nil
    }

    /// Escape-sequence recognition, as in ECMA-48: ESC, then `[` (CSI) or `O` (SS3), then
    /// parameter and intermediate bytes (0x20-0x3F), then one final byte (0x40-0x7E).
    private enum Parser: Sendable {
        case ground
        case escape
        case sequence(introducer: UInt8, body: [UInt8])
        /// The Linux console's F1-F5 are `ESC [ [ A`...`E`: one more byte to swallow.
        case linuxFunctionKey
    }

    /// Longest parameter string kept; longer (malformed) sequences are still swallowed whole.
    private static let maxSequenceBody = 16

    private mutating func consume(_ b: UInt8) {
        switch parser {
        case .ground:
            ground(b)
        case .escape:
            parser = .ground
            escaped(b)
        case .sequence(let introducer, var body):
            switch b {
            case 0x20...0x3F:
                if body.count < Self.maxSequenceBody { body.append(b) }
                parser = .sequence(introducer: introducer, body: body)
            case 0x40...0x7E:
                parser = .ground
                if introducer == UInt8(ascii: "["), b == UInt8(ascii: "["), body.isEmpty {
                    parser = .linuxFunctionKey
                } else {
                    dispatch(introducer: introducer, body: body, final: b)
                }
            default:
                // Not part of any sequence (a control byte, ESC, UTF-8): the sequence was cut
                // short, and the byte is a key of its own.
                parser = .ground
                consume(b)
            }
        case .linuxFunctionKey:
            parser = .ground
            if !(0x20...0x7E).contains(b) { consume(b) }
        }
    }

    private mutating func ground(_ b: UInt8) {
        if utf8.isPending {
            if b & 0xC0 == 0x80 {
                if let scalar = utf8.add(b) { insertTyped(scalar) }
                return
            }
            utf8.reset()  // a truncated character is dropped; the byte is read afresh
        }
        let wasCR = afterCR
        afterCR = false
        switch b {
        case 0x20...0x7E:
            typed.unicodeScalars.append(Unicode.Scalar(b))
        case 0x80...0xFF:
            utf8.start(b)
        case 0x1B:
            parser = .escape
        case 0x0D:
            afterCR = true
            enter()
        case 0x0A:
            if !wasCR { enter() }
        case 0x03:
            interrupt()
        default:
            control(b)
        }
    }

    private mutating func insertTyped(_ scalar: Unicode.Scalar) {
        // C1 controls (U+0080-U+009F) are commands to some terminals, never text.
        guard !(0x80...0x9F).contains(scalar.value) else { return }
        typed.unicodeScalars.append(scalar)
    }

    private mutating func enter() {
        if pasting { typed += " "; return }
        flushTyped()
        let submitted = String(chars)
        remember(submitted)
        chars = []
        position = 0
        walk = nil
        draft = []
        actions.append(.submit(submitted))
    }

    private mutating func interrupt() {
        // Ctrl-C always works, even inside a paste whose end marker never came.
        pasting = false
        flushTyped()
        interruptedLine = String(chars)
        chars = []
        position = 0
        walk = nil
        draft = []
        actions.append(.interrupt)
    }

    private mutating func control(_ b: UInt8) {
        if pasting {
            if b == 0x09 { typed += " " }  // a tab would break the column arithmetic of `render`
            return
        }
        flushTyped()
        switch b {
        case 0x01: move(to: 0)                                  // Ctrl-A
        case 0x02: move(to: position - 1)                       // Ctrl-B
        case 0x04:                                              // Ctrl-D
            if chars.isEmpty { actions.append(.endOfInput) } else { deleteForward() }
        case 0x05: move(to: chars.count)                        // Ctrl-E
        case 0x06: move(to: position + 1)                       // Ctrl-F
        case 0x08, 0x7F: deleteBackward()                       // Ctrl-H, Backspace
        case 0x09: actions.append(.complete(line: String(chars), cursor: position))
        case 0x0B: kill(position..<chars.count)                 // Ctrl-K
        case 0x0C: actions.append(.clearScreen)                 // Ctrl-L
        case 0x0E: historyNext()                                // Ctrl-N
        case 0x10: historyPrevious()                            // Ctrl-P
        case 0x15: kill(0..<position)                           // Ctrl-U
        case 0x17: kill(shellWordStart()..<position)            // Ctrl-W
        case 0x19: replace(position..<position, with: String(killed))  // Ctrl-Y
        default: actions.append(.bell)
        }
    }

    /// The byte after a lone ESC: a sequence introducer, or Alt/Meta + key.
    private mutating func escaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "["), UInt8(ascii: "O"):
            parser = .sequence(introducer: b, body: [])
            return
        case 0x1B:
            parser = .escape  // the first ESC was the Escape key alone
            return
        default:
            break
        }
        if pasting { ground(b); return }
        switch b {
        case UInt8(ascii: "b"): flushTyped(); move(to: wordStart())
        case UInt8(ascii: "f"): flushTyped(); move(to: wordEnd())
        case UInt8(ascii: "d"): flushTyped(); kill(position..<wordEnd())
        case 0x7F, 0x08: flushTyped(); kill(wordStart()..<position)
        case 0x20...0x7E: break  // an Alt+key we do not bind: swallowed, not typed
        default: ground(b)       // ESC then Enter, Ctrl-C, ...: the key still counts
        }
    }

    private mutating func dispatch(introducer: UInt8, body: [UInt8], final: UInt8) {
        let csi = introducer == UInt8(ascii: "[")
        let params = Self.parameters(body)
        if pasting {
            if csi, final == UInt8(ascii: "~"), params?.first == 201 { pasting = false }
            return
        }
        guard let params else { return }  // private or intermediate forms: not keys we know
        flushTyped()
        // xterm sends modifiers as a second parameter, 1 + (shift 1 | alt 2 | ctrl 4).
        let byWord = params.count >= 2 && (params[1] - 1) & 0b110 != 0
        switch final {
        case UInt8(ascii: "A"): historyPrevious()
        case UInt8(ascii: "B"): historyNext()
        case UInt8(ascii: "C"): move(to: byWord ? wordEnd() : position + 1)
        case UInt8(ascii: "D"): move(to: byWord ? wordStart() : position - 1)
        case UInt8(ascii: "H"): move(to: 0)
        case UInt8(ascii: "F"): move(to: chars.count)
        case UInt8(ascii: "c") where !csi: move(to: wordEnd())    // rxvt Ctrl-Right
        case UInt8(ascii: "d") where !csi: move(to: wordStart())  // rxvt Ctrl-Left
        case UInt8(ascii: "M") where !csi: enter()                // keypad Enter
        case UInt8(ascii: "~") where csi:
            switch params.first ?? 0 {
            case 1, 7: move(to: 0)
            case 4, 8: move(to: chars.count)
            case 3: deleteForward()
            case 200: pasting = true
            default: break  // Insert, Page Up/Down, function keys
            }
        default:
            break
        }
    }

    /// `1;5` as [1, 5] (an empty field is 0); nil for private (`?`, `<`, `=`, `>`) or
    /// intermediate bytes.
    private static func parameters(_ body: [UInt8]) -> [Int]? {
        if let first = body.first, (0x3C...0x3F).contains(first) { return nil }
        var out = [0]
        for b in body {
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                out[out.count - 1] = min(out[out.count - 1] * 10 + Int(b - UInt8(ascii: "0")), 99_999)
            case UInt8(ascii: ";"): out.append(0)
            default: return nil
            }
        }
        return body.isEmpty ? [] : out
    }

    // MARK: Editing

    private mutating func flushTyped() {
        guard !typed.isEmpty else { return }
        let text = typed
        typed = ""
        replace(position..<position, with: text)
    }

    /// Replaces `range` of the line with `text` and leaves the cursor after it. The line is
    /// segmented again as a whole: a combining accent typed after "e" joins it into one
    /// character, and deleting what stood between two regional indicators makes a flag.
    private mutating func replace(_ range: Range<Int>, with text: String) {
        guard !range.isEmpty || !text.isEmpty else { return }
        let before = String(chars[..<range.lowerBound]) + text
        chars = Array(before + String(chars[range.upperBound...]))
        position = min(before.count, chars.count)
        changed()
    }

    private mutating func kill(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        killed = Array(chars[range])
        replace(range, with: "")
    }

    private mutating func deleteBackward() {
        if position > 0 { replace(position - 1..<position, with: "") }
    }

    private mutating func deleteForward() {
        if position < chars.count { replace(position..<position + 1, with: "") }
    }

    private mutating func move(to target: Int) {
        let clamped = min(max(target, 0), chars.count)
        guard clamped != position else { return }
        position = clamped
        changed()
    }

    private mutating func changed() {
        if actions.last != .redraw { actions.append(.redraw) }
    }

    /// Alt-B, Alt-F and Ctrl-arrows stop at letters and digits, as readline's words do.
    private static func isWordCharacter(_ c: Character) -> Bool {
        c.isLetter || c.isNumber || c == "_"
    }

    private func wordStart() -> Int {
        var i = position
        while i > 0, !Self.isWordCharacter(chars[i - 1]) { i -= 1 }
        while i > 0, Self.isWordCharacter(chars[i - 1]) { i -= 1 }
        return i
    }

    private func wordEnd() -> Int {
        var i = position
        while i < chars.count, !Self.isWordCharacter(chars[i]) { i += 1 }
        while i < chars.count, Self.isWordCharacter(chars[i]) { i += 1 }
        return i
    }

    /// Ctrl-W deletes back to whitespace (the terminal's own "werase"), so it takes a whole path
    /// or URL, where Alt-Backspace stops at punctuation.
    private func shellWordStart() -> Int {
        var i = position
        while i > 0, chars[i - 1].isWhitespace { i -= 1 }
        while i > 0, !chars[i - 1].isWhitespace { i -= 1 }
        return i
    }

    // MARK: History

    private mutating func remember(_ entry: String) {
        guard !entry.isEmpty, entry != history.last else { return }
        history.append(entry)
    }

    private mutating func historyPrevious() {
        let target: Int
        if let walk {
            target = walk - 1
        } else {
            target = history.count - 1
            if target >= 0 { draft = chars }
        }
        guard target >= 0 else { actions.append(.bell); return }
        walk = target
        show(Array(history[target]))
    }

    private mutating func historyNext() {
        guard let current = walk else { actions.append(.bell); return }
        if current + 1 < history.count {
            walk = current + 1
            show(Array(history[current + 1]))
        } else {
            walk = nil
            show(draft)
            draft = []
        }
    }

    private mutating func show(_ line: [Character]) {
        chars = line
        position = line.count
        changed()
    }

    // MARK: Output

    /// The bytes that draw `prompt` and the line on the cursor's row and put the cursor in place.
    ///
    /// The line never wraps: when prompt and line do not fit in `width - 1` columns (the last
    /// column is kept free, as a cursor there leaves terminals in their "pending wrap" state),
    /// a window of the line is shown that contains the cursor. The window moves by half its
    /// width, so it stays still while the cursor moves inside it. A prompt wider than half the
    /// row is left out while the line scrolls.
    ///
    /// The prompt may contain SGR (colour) sequences; they take no columns. Control characters in
    /// the line (from a history file or a completion) are shown as `^X`, never sent raw.
    public func render(prompt: String, width: Int) -> [UInt8] {
        let available = max(width - 1, 1)
        let cells = chars.map(Self.cell)
        var offsets = [0]  // offsets[i]: columns before character i
        offsets.reserveCapacity(cells.count + 1)
        for c in cells { offsets.append(offsets[offsets.count - 1] + c.width) }
        let total = offsets[cells.count]

        var shownPrompt = prompt
        var promptWidth = Self.displayWidth(prompt)
        var first = 0
        var last = cells.count
        if promptWidth + total > available {
            if promptWidth > available / 2 {
                shownPrompt = ""
                promptWidth = 0
            }
            let room = available - promptWidth
            let step = max(room / 2, 1)
            let before = offsets[position]
            let start = before <= room ? 0 : ((before - room - 1) / step + 1) * step
            first = min(offsets.firstIndex { $0 >= start } ?? position, position)
            last = first
            while last < cells.count, offsets[last + 1] - offsets[first] <= room { last += 1 }
        }

        var out: [UInt8] = [0x0D]
        out += shownPrompt.utf8
        for c in cells[first..<last] { out += c.text.utf8 }
        out += Self.eraseToEndOfLine
        let column = promptWidth + offsets[position] - offsets[first]
        if column != promptWidth + offsets[last] - offsets[first] {
            out.append(0x0D)
            if column > 0 { out += Array("\u{1B}[\(column)C".utf8) }
        }
        return out
    }

    /// The bytes that leave a submitted line on screen whole (it may wrap now: nothing will be
    /// drawn over it) and go to the next row. Write them on `.submit`, before any reply.
    public static func renderSubmitted(prompt: String, line: String) -> [UInt8] {
        var out: [UInt8] = [0x0D] + eraseToEndOfLine
        out += prompt.utf8
        for c in line { out += cell(c).text.utf8 }
        out.append(0x0A)
        return out
    }

    static let eraseToEndOfLine: [UInt8] = [0x1B, UInt8(ascii: "["), UInt8(ascii: "K")]

    /// How a character is drawn: itself, or caret notation for control characters.
    private static func cell(_ c: Character) -> (text: String, width: Int) {
        guard c.unicodeScalars.contains(where: isControl) else { return (String(c), displayWidth(c)) }
        var text = ""
        var width = 0
        for s in c.unicodeScalars {
            switch s.value {
            case 0x00...0x1F, 0x7F:
                text += "^" + String(Unicode.Scalar(UInt8(s.value) ^ 0x40))
                width += 2
            case 0x80...0x9F:
                text += "\u{FFFD}"
                width += 1
            default:
                text.unicodeScalars.append(s)
                width += scalarWidth(s)
            }
        }
        return (text, width)
    }

    private static func isControl(_ s: Unicode.Scalar) -> Bool {
        s.value < 0x20 || (0x7F...0x9F).contains(s.value)
    }

    // MARK: Display width

    /// Columns a string takes on a terminal; CSI sequences (colours) take none.
    public static func displayWidth(_ s: String) -> Int {
        var width = 0
        var inSequence = false
        var afterEscape = false
        for c in s {
            if inSequence {
                if let v = c.unicodeScalars.first?.value, (0x40...0x7E).contains(v) { inSequence = false }
                continue
            }
            if afterEscape {
                afterEscape = false
                if c == "[" { inSequence = true; continue }
            }
            if c == "\u{1B}" { afterEscape = true; continue }
            width += cell(c).width
        }
        return width
    }

    /// Columns a character takes, as wcwidth(3) would say: 2 for East Asian wide and fullwidth
    /// characters and for emoji shown as emoji, 0 for combining marks and format characters,
    /// 1 otherwise. The wide table is the main blocks, not the full Unicode data: a rare wide
    /// character counted as 1 only shifts the cursor on that line.
    public static func displayWidth(_ c: Character) -> Int {
        let scalars = c.unicodeScalars
        guard let base = scalars.first else { return 0 }
        let width = scalarWidth(base)
        // A text-style symbol followed by VARIATION SELECTOR-16 is drawn as a (wide) emoji: ❤️.
        if width == 1, base.properties.isEmoji, scalars.contains("\u{FE0F}") { return 2 }
        return width
    }

    static func scalarWidth(_ s: Unicode.Scalar) -> Int {
        let v = s.value
        if v < 0x7F { return v < 0x20 ? 0 : 1 }
        switch s.properties.generalCategory {
        case .nonspacingMark, .enclosingMark, .format: return 0
        default: break
        }
        if (0x1160...0x11FF).contains(v) { return 0 }  // Hangul medial vowels and final consonants
        if s.properties.isEmojiPresentation { return 2 }
        return wideRanges.contains { $0.contains(v) } ? 2 : 1
    }

    /// East Asian Wide (W) and Fullwidth (F) blocks, from Unicode's EastAsianWidth.txt.
    private static let wideRanges: [ClosedRange<UInt32>] = [
        0x1100...0x115F,    // Hangul Jamo initial consonants
        0x2E80...0x303E,    // CJK radicals, Kangxi radicals, CJK symbols and punctuation
        0x3041...0x33FF,    // Hiragana, Katakana, Bopomofo, Hangul compatibility Jamo, CJK compatibility
        0x3400...0x4DBF,    // CJK extension A
        0x4E00...0x9FFF,    // CJK unified ideographs
        0xA000...0xA4CF,    // Yi
        0xA960...0xA97F,    // Hangul Jamo extended A
        0xAC00...0xD7A3,    // Hangul syllables
        0xF900...0xFAFF,    // CJK compatibility ideographs
        0xFE10...0xFE19,    // vertical forms
        0xFE30...0xFE6F,    // CJK compatibility forms, small form variants
        0xFF00...0xFF60,    // fullwidth forms
        0xFFE0...0xFFE6,    // fullwidth signs
        0x16FE0...0x16FE4,  // ideographic symbols
        0x17000...0x18CFF,  // Tangut, Khitan
        0x1B000...0x1B2FF,  // Kana supplement and extensions, Nushu
        0x1F300...0x1F64F,  // pictographs and emoticons (those not already emoji presentation)
        0x1F900...0x1F9FF,  // supplemental symbols and pictographs
        0x20000...0x2FFFD,  // CJK extensions B-F, compatibility supplement
        0x30000...0x3FFFD,  // CJK extensions G-H
    ]
}

/// Collects the bytes of one UTF-8 character. Invalid input (a stray continuation byte, an
/// overlong form, a surrogate) is dropped rather than shown as U+FFFD: it comes from a wrongly
/// configured terminal, and garbage in the line would only be sent on.
struct UTF8Assembler: Sendable {
    private var value: UInt32 = 0
    private var needed = 0
    private var minimum: UInt32 = 0

    var isPending: Bool { needed > 0 }

    mutating func start(_ lead: UInt8) {
        switch lead {
        case 0xC2...0xDF: value = UInt32(lead & 0x1F); needed = 1; minimum = 0x80
        case 0xE0...0xEF: value = UInt32(lead & 0x0F); needed = 2; minimum = 0x800
        case 0xF0...0xF4: value = UInt32(lead & 0x07); needed = 3; minimum = 0x10000
        default: reset()
        }
    }

    /// Adds a continuation byte; the scalar when the character is complete and valid.
    mutating func add(_ continuation: UInt8) -> Unicode.Scalar? {
        value = value << 6 | UInt32(continuation & 0x3F)
        needed -= 1
        guard needed == 0 else { return nil }
        guard value >= minimum else { return nil }
        return Unicode.Scalar(value)  // nil for surrogates and values past U+10FFFF
    }

    mutating func reset() {
        needed = 0
        value = 0
    }
}
