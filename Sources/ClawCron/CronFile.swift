/// One job of CRON.md that loaded: it has a name, a valid schedule and a command.
public struct CronJob: Equatable, Sendable {
    public var name: String
    /// The cron expression as written (trimmed); the scheduler parses it.
    public var schedule: String
    /// The task for the assistant, one line.
    public var command: String
    public var enabled: Bool
    /// The section's free text, sent to the assistant with the command; lines end in LF.
    public var context: String
    /// 1-based line of the job's `## ` heading.
    public var line: Int

    public init(name: String, schedule: String, command: String, enabled: Bool = true, context: String = "",
                line: Int) {
        self.name = name
        self.schedule = schedule
        self.command = command
        self.enabled = enabled
        self.context = context
        self.line = line
    }
}

/// Why one section of CRON.md did not load as a job, pointing at the line to fix.
public struct CronFileProblem: Equatable, Sendable, CustomStringConvertible {
    /// 1-based line of the offending field, or of the heading when a field is missing.
    public var line: Int
    /// The job's name, nil when the section has none.
    public var job: String?
    public var reason: String

    public init(line: Int, job: String?, reason: String) {
        self.line = line
        self.job = job
        self.reason = reason
    }

    public var description: String {
        if let job { return "CRON.md line \(line) (job \"\(job)\"): \(reason)" }
        return "CRON.md line \(line): \(reason)"
    }
}

/// CRON.md, the owner's scheduled jobs, parsed (pure) and edited in place (CronFileEdit.swift).
///
/// The file is Markdown, split into sections by lines of three or more `-` (trailing spaces
/// allowed). A section is a job when a line starts with `## ` (the name) and a line starts with
/// `**Command**:`. The other fields, also at the start of a line and with case-insensitive names,
/// are `**Schedule**:` (required) and `**Enabled**:` (`true`/`false`, `yes`/`no`, `on`/`off`;
/// default true). Every other line is the job's context. Fields must start the line so that a
/// header documenting them (``- `**Command**:` …``) is not a job. Fenced code blocks are not
/// special: an example job in the header is written indented.
///
/// Parsing never fails as a whole, because in the original one bad field stopped every job: a
/// section that looks like a job (a heading and a field) but is broken becomes one entry of
/// ``problems`` and the others load. Sections without fields (the header, reference notes) are
/// kept in the text and ignored.
public struct CronFile: Sendable {
    public let text: String
    /// The jobs that loaded, in file order.
    public private(set) var jobs: [CronJob] = []
    /// One entry per section that looks like a job but did not load, in file order.
    public private(set) var problems: [CronFileProblem] = []

    /// Says why a schedule is invalid, nil when it is fine. Kept for ``adding(_:)``.
    let validateSchedule: @Sendable (String) -> String?
    let bytes: [UInt8]
    let lines: [CronLine]
    /// Line indices of each section; the separator before section k > 0 is its first line - 1.
    let sections: [Range<Int>]
    /// Every section that looks like a job, loaded or not, with a name: what edits can target.
    let entries: [CronEntry]

    public init(text: String, validateSchedule: @escaping @Sendable (String) -> String? = { _ in nil }) {
        self.text = text
        self.validateSchedule = validateSchedule
        let bytes = Array(text.utf8)
        let lines = CronLine.split(bytes)
        var sections: [Range<Int>] = []
        var sectionStart = 0
        for (index, line) in lines.enumerated() where line.isSeparator(in: bytes) {
            sections.append(sectionStart..<index)
            sectionStart = index + 1
        }
        sections.append(sectionStart..<lines.count)

        var entries: [CronEntry] = []
        var entryByKey: [String: Int] = [:]
        for (sectionIndex, range) in sections.enumerated() {
            let scan = SectionScan(range, lines: lines, bytes: bytes)
            guard let firstField = scan.firstFieldLine else { continue }
            guard let heading = scan.heading else {
                problems.append(CronFileProblem(line: firstField + 1, job: nil,
                                                reason: "job fields but no \"## \" heading line naming the job"))
                continue
            }
            let name = lines[heading].text(in: bytes, from: 3)
            guard !name.isEmpty else {
                problems.append(CronFileProblem(line: heading + 1, job: nil, reason: "the \"## \" heading has no name"))
                continue
            }
            let key = name.lowercased()
            if let first = entryByKey[key] {
                let other = entries[first]
                let reason = "duplicate name: line \(other.heading + 1) already has a job called \"\(other.name)\""
                problems.append(CronFileProblem(line: heading + 1, job: name, reason: reason))
                continue
            }
            entryByKey[key] = entries.count
            entries.append(CronEntry(name: name, key: key, section: sectionIndex, heading: heading,
                                     command: scan.fields[.command]?.line, enabled: scan.fields[.enabled]?.line))
            switch Self.load(scan, name: name, heading: heading, lines: lines, bytes: bytes,
                             validateSchedule: validateSchedule) {
            case .job(let job): jobs.append(job)
            case .problem(let problem): problems.append(problem)
            }
        }
        self.bytes = bytes
        self.lines = lines
        self.sections = sections
        self.entries = entries
    }

    private enum Loaded {
        case job(CronJob)
        case problem(CronFileProblem)
    }

    /// The job of a named section, or the first thing wrong with it.
    private static func load(_ scan: SectionScan, name: String, heading: Int, lines: [CronLine], bytes: [UInt8],
                             validateSchedule: (String) -> String?) -> Loaded {
        func problem(_ line: Int, _ reason: String) -> Loaded {
            .problem(CronFileProblem(line: line + 1, job: name, reason: reason))
        }
        if let (field, line, first) = scan.duplicate {
            return problem(line, "a second \(field.label) line (the first is line \(first + 1))")
        }
        guard let command = scan.fields[.command] else { return problem(heading, "no **Command**: line") }
        guard !command.value.isEmpty else { return problem(command.line, "the command is empty") }
        guard let schedule = scan.fields[.schedule] else { return problem(heading, "no **Schedule**: line") }
        guard !schedule.value.isEmpty else { return problem(schedule.line, "the schedule is empty") }
        if let reason = validateSchedule(schedule.value) { return problem(schedule.line, "schedule: \(reason)") }
        var enabled = true
        if let field = scan.fields[.enabled] {
            guard let value = CronField.boolean(field.value) else {
                return problem(field.line, "enabled: \"\(field.value)\" is not true or false (nor yes/no, on/off)")
            }
            enabled = value
        }
        let context = scan.contextLines.map { lines[$0].rawText(in: bytes) }
        let first = context.firstIndex { !CronLine.isBlank($0) } ?? context.endIndex
        let last = context.lastIndex { !CronLine.isBlank($0) }.map { $0 + 1 } ?? first
        return .job(CronJob(name: name, schedule: schedule.value, command: command.value, enabled: enabled,
                                context: context[first..<last].joined(separator: "\n"), line: heading + 1))
    }
}

/// A section that looks like a job, as edits need it: line indices into ``CronFile/lines``.
struct CronEntry: Sendable {
    var name: String
    /// The name lowercased: names are unique ignoring case.
    var key: String
    var section: Int
    var heading: Int
    var command: Int?
    var enabled: Int?
}

/// The fields a job line can start with.
enum CronField: CaseIterable, Sendable {
    case schedule, command, enabled

    var label: String {
        switch self {
        case .schedule: "**Schedule**:"
        case .command: "**Command**:"
        case .enabled: "**Enabled**:"
        }
    }

    /// The label in lowercase bytes, to match a line's start ignoring case.
    var lowercaseLabel: [UInt8] { Array(label.lowercased().utf8) }

    /// The field a line's content starts with, and where its label ends.
    static func at(_ bytes: [UInt8], _ range: Range<Int>) -> (CronField, labelEnd: Int)? {
        guard range.count >= 3, bytes[range.lowerBound] == UInt8(ascii: "*") else { return nil }
        for field in allCases {
            let label = field.lowercaseLabel
            guard range.count >= label.count else { continue }
            var i = 0
            while i < label.count, CronLine.lowercased(bytes[range.lowerBound + i]) == label[i] { i += 1 }
            if i == label.count { return (field, range.lowerBound + label.count) }
        }
        return nil
    }

    /// The meaning of an `**Enabled**:` value, nil when it has none.
    static func boolean(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "true", "yes", "on": true
        case "false", "no", "off": false
        default: nil
        }
    }
}

/// One line of the file as byte offsets: `start..<contentEnd` is its text, `contentEnd..<end`
/// its line ending (LF or CRLF; on a last line without LF, a trailing CR or nothing).
struct CronLine: Sendable {
    static let lf = UInt8(ascii: "\n")
    static let cr = UInt8(ascii: "\r")

    var start: Int
    var contentEnd: Int
    var end: Int
    /// Whether the line ends in LF; only the file's last line may not.
    var terminated: Bool

    /// The lines of a file; text after the last LF, if any, is a last line without one.
    static func split(_ bytes: [UInt8]) -> [CronLine] {
        var lines: [CronLine] = []
        var start = 0
        while start < bytes.count {
            let lf = bytes[start...].firstIndex(of: lf)
            let end = lf.map { $0 + 1 } ?? bytes.count
            let stop = lf ?? bytes.count
            let contentEnd = stop > start && bytes[stop - 1] == cr ? stop - 1 : stop
            lines.append(CronLine(start: start, contentEnd: contentEnd, end: end, terminated: lf != nil))
            start = end
        }
        return lines
    }

    /// Three or more `-` and nothing else but trailing spaces or tabs: a section break.
    func isSeparator(in bytes: [UInt8]) -> Bool {
        let body = Self.trimmed(bytes, start..<contentEnd)
        return body.lowerBound == start && body.count >= 3 && bytes[body].allSatisfy { $0 == UInt8(ascii: "-") }
    }

    func isHeading(in bytes: [UInt8]) -> Bool {
        contentEnd - start >= 3 && bytes[start] == UInt8(ascii: "#") && bytes[start + 1] == UInt8(ascii: "#")
            && bytes[start + 2] == UInt8(ascii: " ")
    }

    /// The content from `offset` bytes in, trimmed of spaces and tabs.
    func text(in bytes: [UInt8], from offset: Int) -> String {
        String(decoding: bytes[Self.trimmed(bytes, min(start + offset, contentEnd)..<contentEnd)], as: UTF8.self)
    }

    /// The content as written, without its line ending.
    func rawText(in bytes: [UInt8]) -> String {
        String(decoding: bytes[start..<contentEnd], as: UTF8.self)
    }

    static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == cr
    }

    static func isBlank(_ text: String) -> Bool { text.utf8.allSatisfy(isSpace) }

    static func trimmed(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        var low = range.lowerBound, high = range.upperBound
        while low < high, isSpace(bytes[low]) { low += 1 }
        while high > low, isSpace(bytes[high - 1]) { high -= 1 }
        return low..<high
    }

    /// A string trimmed the way the parser trims field values, so edits write what re-parses.
    static func trimmed(_ text: String) -> String {
        let bytes = Array(text.utf8)
        return String(decoding: bytes[trimmed(bytes, 0..<bytes.count)], as: UTF8.self)
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
    }
}

/// What one section holds: its first heading, the first line of each field, the first repeated
/// field, and the other lines (the context).
struct SectionScan {
    var heading: Int?
    var fields: [CronField: (line: Int, value: String)] = [:]
    var duplicate: (field: CronField, line: Int, first: Int)?
    var contextLines: [Int] = []
    var firstFieldLine: Int?

    init(_ range: Range<Int>, lines: [CronLine], bytes: [UInt8]) {
        for index in range {
            let line = lines[index]
            if heading == nil, line.isHeading(in: bytes) {
                heading = index
            } else if let (field, labelEnd) = CronField.at(bytes, line.start..<line.contentEnd) {
                firstFieldLine = firstFieldLine ?? index
                if let first = fields[field] {
                    duplicate = duplicate ?? (field, index, first.line)
                } else {
                    fields[field] = (index, line.text(in: bytes, from: labelEnd - line.start))
                }
            } else {
                contextLines.append(index)
            }
        }
    }
}
