/// A job to add to CRON.md. Name, schedule and command are trimmed of spaces and tabs.
public struct NewCronJob: Equatable, Sendable {
    public var name: String
    public var schedule: String
    public var command: String
    /// Free text, several lines allowed; leading and trailing blank lines are dropped.
    public var context: String
    public var enabled: Bool

    public init(name: String, schedule: String, command: String, context: String = "", enabled: Bool = true) {
        self.name = name
        self.schedule = schedule
        self.command = command
        self.context = context
        self.enabled = enabled
    }
}

/// Why an edit of CRON.md was refused; the file is unchanged.
public enum CronEditError: Error, Equatable, CustomStringConvertible {
    /// `jobs` are the names an edit can target, in file order.
    case noSuchJob(name: String, jobs: [String])
    case nameTaken(name: String, line: Int)
    case invalidName(name: String, reason: String)
    case invalidSchedule(schedule: String, reason: String)
    case invalidCommand(reason: String)
    /// `line` is 1-based within the context given.
    case invalidContext(line: Int, reason: String)

    /// How many names a "no such job" message lists before it only counts.
    static let namesListed = 20

    public var description: String {
        switch self {
        case .noSuchJob(let name, let jobs):
            if jobs.isEmpty { return "no job named \"\(name)\" (the file has no jobs)" }
            var list = jobs.prefix(Self.namesListed).joined(separator: ", ")
            if jobs.count > Self.namesListed { list += " and \(jobs.count - Self.namesListed) more" }
            return "no job named \"\(name)\" (jobs: \(list))"
        case .nameTaken(let name, let line):
            return "a job named \"\(name)\" already exists (line \(line))"
        case .invalidName(let name, let reason):
            return "invalid job name \"\(name)\": \(reason)"
        case .invalidSchedule(let schedule, let reason):
            return "invalid schedule \"\(schedule)\": \(reason)"
        case .invalidCommand(let reason):
            return "invalid command: \(reason)"
        case .invalidContext(let line, let reason):
            return "invalid context, line \(line): \(reason)"
        }
    }
}

/// Edits of CRON.md that return the new text and change only the bytes they must: the rest of
/// the file is the owner's. The original rewrote the whole file from what it had parsed, which
/// duplicated jobs and brought removed ones back.
extension CronFile {
    /// The longest job name ``adding(_:)`` accepts, in characters.
    public static let maxNameLength = 80

    /// The file with `job` appended as its own section: a blank line, a separator line, then the
    /// job. The separator is written even after a trailing non-job section, so the job never
    /// becomes part of it (the original's add appended into "Best Practices"). The file keeps its
    /// line endings and whether it ends in a newline; ``removing(named:)`` undoes this exactly.
    public func adding(_ job: NewCronJob) throws(CronEditError) -> String {
        let name = CronLine.trimmed(job.name)
        if let reason = Self.nameProblem(name) { throw .invalidName(name: name, reason: reason) }
        if let clash = entry(named: name) { throw .nameTaken(name: clash.name, line: clash.heading + 1) }
        let schedule = CronLine.trimmed(job.schedule)
        if let reason = Self.lineProblem(schedule) ?? validateSchedule(schedule) {
            throw .invalidSchedule(schedule: schedule, reason: reason)
        }
        let command = CronLine.trimmed(job.command)
        if let reason = Self.lineProblem(command) {
            throw .invalidCommand(reason: reason == Self.lineBreak ? reason + "; put the details in the context" : reason)
        }
        var context: [String] = []
        for (index, raw) in job.context.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = Substring(raw)
            while line.utf8.last == CronLine.cr { line = line.dropLast() }
            if let reason = Self.contextProblem(String(line)) { throw .invalidContext(line: index + 1, reason: reason) }
            context.append(String(line))
        }
        while let first = context.first, CronLine.isBlank(first) { context.removeFirst() }
        while let last = context.last, CronLine.isBlank(last) { context.removeLast() }

        var section = ["## \(name)", "", "**Schedule**: \(schedule)", "**Command**: \(command)",
                       "**Enabled**: \(job.enabled)"]
        if !context.isEmpty { section += [""] + context }
        let newline = Self.newline(of: bytes[...])
        guard !bytes.isEmpty else { return section.joined(separator: newline) + newline }
        let block = (["", "---", ""] + section).joined(separator: newline)
        return bytes.last == CronLine.lf ? text + block + newline : text + newline + block
    }

    /// The file without the named job's section and one separator next to it: the one before
    /// it, or after it when it is the first section. A last job also takes the blank line before
    /// its separator, and the file keeps whether it ends in a newline.
    public func removing(named name: String) throws(CronEditError) -> String {
        guard let entry = entry(named: name) else { throw notFound(name) }
        let k = entry.section, section = sections[k]
        let cut: Range<Int>
        if k == 0 {
            cut = 0..<(sections.count > 1 ? lines[section.upperBound].end : bytes.count)
        } else if k < sections.count - 1 {
            cut = lines[section.lowerBound - 1].start..<lines[section.upperBound - 1].end
        } else {
            var first = section.lowerBound - 1
            if first > 0, lines[first - 1].start == lines[first - 1].contentEnd, lines[first - 1].terminated {
                first -= 1
            }
            if bytes.last == CronLine.lf || first == 0 {
                cut = lines[first].start..<bytes.count
            } else {
                // The file did not end in a newline, so the one ending the kept last line goes too.
                let lf = lines[first - 1].end - 1
                cut = (lf + 1 - Self.newline(of: bytes[..<lf]).utf8.count)..<bytes.count
            }
        }
        return String(decoding: bytes[..<cut.lowerBound] + bytes[cut.upperBound...], as: UTF8.self)
    }

    /// The file with the named job's `**Enabled**:` value rewritten, keeping the field's spelling,
    /// spacing and vocabulary (`yes` becomes `no`). A job without the field is enabled by default;
    /// disabling it inserts `**Enabled**: false` after its command line.
    public func settingEnabled(_ enabled: Bool, named name: String) throws(CronEditError) -> String {
        guard let entry = entry(named: name) else { throw notFound(name) }
        if let index = entry.enabled {
            let line = lines[index]
            guard let (_, labelEnd) = CronField.at(bytes, line.start..<line.contentEnd) else { return text }
            let value = CronLine.trimmed(bytes, labelEnd..<line.contentEnd)
            let old = String(decoding: bytes[value], as: UTF8.self)
            guard CronField.boolean(old) != enabled else { return text }
            let new: String = switch old.lowercased() {
            case "yes", "no": enabled ? "yes" : "no"
            case "on", "off": enabled ? "on" : "off"
            default: enabled ? "true" : "false"
            }
            let rewritten = bytes[..<value.lowerBound] + Array(new.utf8) + bytes[value.upperBound...]
            return String(decoding: rewritten, as: UTF8.self)
        }
        guard !enabled else { return text }
        let anchor = lines[entry.command ?? entry.heading]
        let field = "**Enabled**: false"
        let insert = anchor.terminated
            ? field + String(decoding: bytes[anchor.contentEnd..<anchor.end], as: UTF8.self)
            : Self.newline(of: bytes[...]) + field
        return String(decoding: bytes[..<anchor.end] + Array(insert.utf8) + bytes[anchor.end...], as: UTF8.self)
    }

    /// The section an edit targets: names match ignoring case and surrounding spaces.
    func entry(named name: String) -> CronEntry? {
        let key = CronLine.trimmed(name).lowercased()
        return entries.first { $0.key == key }
    }

    private func notFound(_ name: String) -> CronEditError {
        .noSuchJob(name: name, jobs: entries.map(\.name))
    }

    /// The file's line ending: CRLF when its first line ends in one, otherwise LF.
    static func newline(of bytes: ArraySlice<UInt8>) -> String {
        guard let lf = bytes.firstIndex(of: CronLine.lf) else { return "\n" }
        return lf > bytes.startIndex && bytes[lf - 1] == CronLine.cr ? "\r\n" : "\n"
    }

    static let lineBreak = "it contains a line break"

    static func lineProblem(_ value: String) -> String? {
        if value.isEmpty { return "it is empty" }
        if value.utf8.contains(where: { $0 == CronLine.lf || $0 == CronLine.cr }) { return lineBreak }
        return nil
    }

    static func nameProblem(_ name: String) -> String? {
        if let problem = lineProblem(name) { return problem }
        if name.count > maxNameLength { return "it is longer than \(maxNameLength) characters" }
        if name.hasPrefix("#") { return "it starts with \"#\"" }
        return nil
    }

    /// Why a context line would be read as structure rather than text, nil when it is text.
    static func contextProblem(_ line: String) -> String? {
        let bytes = Array(line.utf8)
        let probe = CronLine(start: 0, contentEnd: bytes.count, end: bytes.count, terminated: false)
        if probe.isSeparator(in: bytes) {
            return "\"\(line)\" would end the job's section; indent it or use other characters"
        }
        if probe.isHeading(in: bytes) { return "a line starting with \"## \" would be read as a job heading" }
        if let (field, _) = CronField.at(bytes, 0..<bytes.count) {
            return "a line starting with \(field.label) would be read as the job's field"
        }
        return nil
    }
}
