/// One context file as read from the context directory: its name relative to the directory
/// (`SOUL.md`, `memory/2026-11-30.md`) and its text, nil when it does not exist.
public struct ContextFile: Equatable, Sendable {
    public var name: String
    public var content: String?

    public init(name: String, content: String?) {
        self.name = name
        self.content = content
    }

    /// A daily log (`memory/<date>.md`) grows at its end, so when it must be cut its end is kept.
    public var isDailyLog: Bool { name.hasPrefix("memory/") && name.hasSuffix(".md") }
}

/// The system prompt built from the context files, and what had to be cut to fit.
public struct AssembledContext: Equatable, Sendable {
    /// A file that did not fit whole: `keptBytes` of its `originalBytes` (its text trimmed of
    /// surrounding whitespace) are in the prompt; 0 means it was dropped.
    public struct Trim: Equatable, Sendable {
        public var name: String
        public var keptBytes: Int
        public var originalBytes: Int

        public init(name: String, keptBytes: Int, originalBytes: Int) {
            self.name = name
            self.keptBytes = keptBytes
            self.originalBytes = originalBytes
        }
    }

    public var prompt: String
    /// The files with a section in the prompt, whole or cut, in prompt order.
    public var included: [String]
    /// The files cut or dropped, in the order they were cut (lowest priority first).
    public var trimmed: [Trim]

    public init(prompt: String, included: [String], trimmed: [Trim]) {
        self.prompt = prompt
        self.included = included
        self.trimmed = trimmed
    }
}

/// Builds the system prompt from the context files. Pure.
///
/// Each present, non-empty file becomes a section, in the order given (which is the priority
/// order, highest first):
///
///     ## SOUL
///
///     <SOUL.md, trimmed>
///
///     ---
///
///     ## MEMORY 2026-11-30 (daily log)
///     …
///
/// and a fixed closing section (``DefaultContext/closingInstruction``) ends the prompt. When the
/// whole exceeds `budgetBytes`, files are cut lowest priority first (yesterday's log, today's,
/// MEMORY, USER, AGENTS, SOUL last), each only as far as needed. A cut daily log keeps its end,
/// the newest entries, under a marker line; any other file keeps its beginning, above a marker.
/// Cuts fall on a line boundary when that keeps at least half of what fits, otherwise on a
/// character boundary, never inside a UTF-8 sequence. A file cut to nothing is dropped and named
/// in a marker in the closing section. The prompt never exceeds the budget: below the size of the
/// closing section alone, even that is cut.
public enum ContextAssembler {
    /// About 6k tokens at 4 bytes a token.
    public static let defaultBudgetBytes = 24_000

    static let separator = "\n\n---\n\n"
    static let closingTitle = "CLAWCHAT"

    public static func assemble(_ files: [ContextFile], budgetBytes: Int = defaultBudgetBytes) -> AssembledContext {
        let budget = max(budgetBytes, 0)
        var sections: [PromptSection] = files.compactMap { file in
            guard let body = file.content.map(trimmed), !body.isEmpty else { return nil }
            return PromptSection(file: file, body: body)
        }
        guard !sections.isEmpty else {
            return AssembledContext(prompt: cut(DefaultContext.fallbackPrompt, toBytes: budget), included: [], trimmed: [])
        }
        var dropped: [PromptSection] = []
        var trims: [AssembledContext.Trim] = []
        func size() -> Int { promptBytes(sections, dropped: dropped) }

        while size() > budget, let section = sections.popLast() {
            // Would it fit with this section dropped? If not, drop it and go on to the next.
            dropped.append(section)
            let sizeWithout = size()
            dropped.removeLast()
            if sizeWithout <= budget, let kept = largestFittingCut(of: section, sections: sections, dropped: dropped, budget: budget) {
                sections.append(kept)
                trims.append(.init(name: section.file.name, keptBytes: kept.keptBody.utf8.count, originalBytes: section.bodyBytes))
                break
            }
            dropped.append(section)
            trims.append(.init(name: section.file.name, keptBytes: 0, originalBytes: section.bodyBytes))
        }
        let prompt = render(sections, dropped: dropped)
        return AssembledContext(prompt: cut(prompt, toBytes: budget), included: sections.map(\.file.name), trimmed: trims)
    }

    /// The section cut to the most bytes that still fit, or nil if not even one character does.
    /// The prompt's size never falls as more bytes are kept (a byte more shortens the marker's
    /// count by at most one digit), so a binary search finds the limit, and the cut actually
    /// chosen, at a boundary and trimmed, keeps no more than the limit and so fits too.
    private static func largestFittingCut(of section: PromptSection, sections: [PromptSection], dropped: [PromptSection], budget: Int) -> PromptSection? {
        var low = 0, high = section.bodyBytes - 1   // largest limit known to fit, largest to try
        while low < high {
            let mid = (low + high + 1) / 2
            if promptBytes(sections + [section.cut(rawLimit: mid)], dropped: dropped) <= budget { low = mid } else { high = mid - 1 }
        }
        guard low > 0 else { return nil }
        let cut = section.cut(atBoundaryWithin: low)
        return cut.keptBody.isEmpty ? nil : cut
    }

    /// The rendered size, computed without rendering, so the search above stays cheap.
    private static func promptBytes(_ sections: [PromptSection], dropped: [PromptSection]) -> Int {
        var total = closingBytes(dropped: dropped)
        for s in sections { total += s.bytes + separator.utf8.count }
        return total
    }

    private static func closingBytes(dropped: [PromptSection]) -> Int {
        var total = "## \(closingTitle)\n\n".utf8.count + DefaultContext.closingInstruction.utf8.count
        if !dropped.isEmpty { total += 1 }
        for s in dropped { total += 1 + s.marker(cutBytes: s.bodyBytes).utf8.count }
        return total
    }

    private static func render(_ sections: [PromptSection], dropped: [PromptSection]) -> String {
        var closing = "## \(closingTitle)\n\n" + DefaultContext.closingInstruction
        if !dropped.isEmpty { closing += "\n" }
        for s in dropped { closing += "\n" + s.marker(cutBytes: s.bodyBytes) }
        return (sections.map(\.rendered) + [closing]).joined(separator: separator)
    }

    /// The longest prefix of `s` within `limit` UTF-8 bytes that ends on a character boundary.
    static func cut(_ s: String, toBytes limit: Int) -> String {
        let bytes = Array(s.utf8)
        guard bytes.count > limit else { return s }
        var end = limit
        while end > 0 && isContinuation(bytes[end]) { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    static func trimmed(_ s: String) -> String {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[first...last])
    }
}

/// One file's section of the prompt, whole or cut.
private struct PromptSection {
    let file: ContextFile
    /// The file's text, trimmed of surrounding whitespace.
    let body: String
    let bodyBytes: Int
    /// What of `body` is in the prompt.
    private(set) var keptBody: String
    private var keptBytes: Int

    init(file: ContextFile, body: String) {
        self.file = file
        self.body = body
        bodyBytes = body.utf8.count
        keptBody = body
        keptBytes = bodyBytes
    }

    /// "SOUL" for SOUL.md, "MEMORY 2026-11-30 (daily log)" for memory/2026-11-30.md.
    var title: String {
        var name = Substring(file.name)
        if name.hasSuffix(".md") { name = name.dropLast(3) }
        if file.isDailyLog { return "MEMORY \(name.dropFirst("memory/".count)) (daily log)" }
        return name.uppercased()
    }

    func marker(cutBytes: Int) -> String {
        "[… \(cutBytes) bytes of \(file.name) cut to fit the context budget]"
    }

    private var header: String { "## \(title)\n\n" }
    private var isCut: Bool { keptBytes < bodyBytes }

    var bytes: Int {
        header.utf8.count + keptBytes + (isCut ? 2 + marker(cutBytes: bodyBytes - keptBytes).utf8.count : 0)
    }

    var rendered: String {
        guard isCut else { return header + body }
        let marker = marker(cutBytes: bodyBytes - keptBytes)
        return file.isDailyLog ? header + marker + "\n\n" + keptBody : header + keptBody + "\n\n" + marker
    }

    /// Exactly `limit` bytes kept, for sizing only (the text may split a character).
    func cut(rawLimit limit: Int) -> PromptSection {
        var s = self
        s.keptBytes = limit
        s.keptBody = ""
        return s
    }

    /// At most `limit` bytes kept from the right end, cut at a line boundary if that keeps at least
    /// half of `limit`, else at a character boundary; whitespace at the cut is trimmed off.
    func cut(atBoundaryWithin limit: Int) -> PromptSection {
        let bytes = Array(body.utf8)
        var kept: ArraySlice<UInt8>
        if file.isDailyLog {
            var start = bytes.count - limit
            while start < bytes.count && ContextAssembler.isContinuation(bytes[start]) { start += 1 }
            if let newline = bytes[(start - 1)...].firstIndex(of: 0x0A), bytes.count - (newline + 1) >= limit / 2 {
                start = newline + 1
            }
            kept = bytes[start...]
            while let b = kept.first, b == 0x0A || b == 0x20 || b == 0x09 || b == 0x0D { kept.removeFirst() }
        } else {
            var end = limit
            while end > 0 && ContextAssembler.isContinuation(bytes[end]) { end -= 1 }
            if let newline = bytes[..<(end + 1)].lastIndex(of: 0x0A), newline >= limit / 2 {
                end = newline
            }
            kept = bytes[..<end]
            while let b = kept.last, b == 0x0A || b == 0x20 || b == 0x09 || b == 0x0D { kept.removeLast() }
        }
        var s = self
        s.keptBody = String(decoding: kept, as: UTF8.self)
        s.keptBytes = kept.count
        return s
    }
}
