import ClawReactor
import Testing
@testable import ClawCron

/// Stands in for the cron expression parser: only "61 …" is wrong.
private let rejectsMinute61: @Sendable (String) -> String? = {
    $0.hasPrefix("61 ") ? "minute: 61 is out of range 0-59" : nil
}

/// A file with a header that documents the fields, two jobs and a trailing reference section.
private let sampleCron = """
    # Jobs

    - `**Command**:` what to do
    - `**Schedule**:` when

    ---

    ## Alpha

    **Schedule**: 0 1 * * *
    **Command**: do alpha

    Alpha context.

    ---

    ## Beta
    **schedule**:   0 2 * * *
    **COMMAND**: do beta
    **Enabled**:  no

    ---

    ## Notes

    - a reference section, not a job

    """

private func withCRLF(_ text: String) -> String {
    String(decoding: Array(text.utf8).flatMap { $0 == 10 ? [13, 10] : [$0] }, as: UTF8.self)
}

private func utf8Bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

@Suite struct CronFileParseTests {
    @Test func fieldsContextAndHeaderAreReadAsDocumented() {
        let file = CronFile(text: sampleCron)
        #expect(file.problems == [])
        #expect(file.jobs == [
            CronJob(name: "Alpha", schedule: "0 1 * * *", command: "do alpha", enabled: true, context: "Alpha context.", line: 8),
            CronJob(name: "Beta", schedule: "0 2 * * *", command: "do beta", enabled: false, context: "", line: 17),
        ])
    }

    @Test func crlfFilesParseTheSame() {
        #expect(CronFile(text: withCRLF(sampleCron)).jobs == CronFile(text: sampleCron).jobs)
    }

    @Test func aBrokenJobBetweenTwoGoodOnesIsOneProblemOnItsScheduleLine() {
        let text = """
            ## First
            **Schedule**: 0 * * * *
            **Command**: one
            ---
            ## Broken

            **Schedule**: 61 * * * *
            **Command**: two
            ---
            ## Third
            **Schedule**: 5 * * * *
            **Command**: three

            """
        let file = CronFile(text: text, validateSchedule: rejectsMinute61)
        #expect(file.jobs.map(\.name) == ["First", "Third"])
        #expect(file.problems == [CronFileProblem(line: 7, job: "Broken", reason: "schedule: minute: 61 is out of range 0-59")])
        #expect(file.problems.first?.description == #"CRON.md line 7 (job "Broken"): schedule: minute: 61 is out of range 0-59"#)
        #expect(CronFileProblem(line: 3, job: nil, reason: "why").description == "CRON.md line 3: why")
    }

    /// Each broken job: its text, the line the problem points at, and the start of the reason.
    @Test(arguments: [
        ("## J\n**Schedule**: 0 * * * *\n", 1, "no **Command**: line"),
        ("## J\n**Schedule**: 0 * * * *\n**Command**:   \n", 3, "the command is empty"),
        ("## J\n\n**Command**: x\n", 1, "no **Schedule**: line"),
        ("## J\n**Schedule**:\n**Command**: x\n", 2, "the schedule is empty"),
        ("## J\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: maybe\n", 4, #"enabled: "maybe" is not true"#),
        ("## J\n**Schedule**: 0 * * * *\n**Command**: x\n**schedule**: 1 * * * *\n", 4,
         "a second **Schedule**: line (the first is line 6)"),
        ("##   \n**Schedule**: 0 * * * *\n**Command**: x\n", 1, "the \"## \" heading has no name"),
        ("intro\n**Command**: x\n", 2, "job fields but no \"## \" heading"),
    ])
    func eachKindOfBrokenJobIsReportedOnTheRightLine(text: String, line: Int, reason: String) {
        let file = CronFile(text: "## Good\n**Schedule**: 0 * * * *\n**Command**: fine\n---\n" + text)
        #expect(file.jobs.map(\.name) == ["Good"])
        #expect(file.problems.count == 1)
        #expect(file.problems.first?.line == line + 4)
        #expect(file.problems.first?.reason.hasPrefix(reason) == true, "\(file.problems)")
        #expect(file.problems.first?.description.hasPrefix("CRON.md line \(line + 4)") == true)
    }

    @Test func theSecondOfTwoJobsWithTheSameNameIsTheProblem() {
        let file = CronFile(text: "## Backup\n**Schedule**: 0 * * * *\n**Command**: a\n---\n## BACKUP\n**Schedule**: 1 * * * *\n**Command**: b\n")
        #expect(file.jobs.map(\.command) == ["a"])
        #expect(file.problems == [CronFileProblem(line: 5, job: "BACKUP",
                                                  reason: #"duplicate name: line 1 already has a job called "Backup""#)])
    }

    @Test func enabledAcceptsYesNoOnOffInAnyCase() {
        for (value, expected) in [("true", true), ("FALSE", false), ("Yes", true), ("no", false), ("on", true), ("Off", false)] {
            let file = CronFile(text: "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: \(value)\n")
            #expect(file.jobs.map(\.enabled) == [expected], "\(value)")
        }
    }

    @Test func fieldsCountOnlyAtTheStartOfALine() {
        // A heading plus fields mentioned in backticks, list items or indented: reference text.
        let header = "## How to\n- `**Command**:` the task\n  **Command**: indented\n`**Schedule**:` x\n"
        let file = CronFile(text: header + "---\n## Real\n**Schedule**: 0 * * * *\n**Command**: go\n   **Enabled**: false\n")
        #expect(file.problems == [])
        #expect(file.jobs.map(\.name) == ["Real"])
        #expect(file.jobs.first?.enabled == true)
        #expect(file.jobs.first?.context == "   **Enabled**: false")
    }

    @Test func separatorsAreThreeOrMoreDashesAlone() {
        let job = "## J%d\n**Schedule**: 0 * * * *\n**Command**: x\n"
        func jobs(_ separator: String) -> Int {
            CronFile(text: job.replacingOccurrences("%d", "1") + separator + "\n" + job.replacingOccurrences("%d", "2")).jobs.count
        }
        for separator in ["---", "-----", "---  ", "---\t", "---\r"] { #expect(jobs(separator) == 2, "\(separator)") }
        // Not separators: the two sections merge into one job with a second heading line and a
        // duplicate field, which is a problem.
        for notSeparator in ["--", " ---", "- - -", "---x", "***"] { #expect(jobs(notSeparator) == 0, "\(notSeparator)") }
    }

    @Test func contextKeepsInnerBlankLinesAndTextBeforeTheFields() {
        let file = CronFile(text: "\n## J\nWhy this job exists.\n**Schedule**: 0 * * * *\n**Command**: x\n\n\nA\n\n  B\n\n\n")
        #expect(file.jobs.first?.context == "Why this job exists.\n\n\nA\n\n  B")
    }

    @Test func aHugeFileParsesInLinearTime() throws {
        var text = "# Header\n"
        for i in 0..<10_000 {
            text += "\n---\n\n## Job \(i)\n\n**Schedule**: \(i % 60) * * * *\n**Command**: task \(i)\n**Enabled**: true\n\nSome context.\n"
        }
        let clock = ContinuousClock()
        var file: CronFile?
        let elapsed = clock.measure { file = CronFile(text: text) }
        #expect(file?.jobs.count == 10_000)
        #expect(file?.problems == [])
        #expect(elapsed < .seconds(10), "\(elapsed)")
        let removed = try clock.measure { _ = try file?.removing(named: "job 5000") }
        #expect(removed < .seconds(2), "\(removed)")
    }

    @Test func randomBytesNeverCrashAndEditsStayExact() throws {
        var rng = SplitMix64(seed: 0xC0FFEE)
        let tokens = ["---", "## ", "**Command**:", "**Schedule**:", "**enabled**:", " yes", " maybe", "\n", "\n", "\r\n",
                      "\r", " ", "Job", "job", " 0 * * * *", " 61 * * * *", "#", "*", "-", "é", "\u{0}", "```", ":"]
        for iteration in 0..<2_000 {
            let text: String
            if iteration % 2 == 0 {
                let raw = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                text = String(decoding: raw, as: UTF8.self)
            } else {
                text = (0..<Int.random(in: 0...60, using: &rng)).map { _ in tokens.randomElement(using: &rng)! }.joined()
            }
            let file = CronFile(text: text, validateSchedule: rejectsMinute61)
            let lineCount = text.utf8.split(separator: 10, omittingEmptySubsequences: false).count
            #expect(file.jobs.allSatisfy { (1...lineCount).contains($0.line) })
            #expect(file.problems.allSatisfy { (1...lineCount).contains($0.line) })
            try checkAddThenRemove(text, NewCronJob(name: "Fuzz", schedule: "1 2 * * *", command: "fuzz", context: "c\n\nd"))
            if let job = file.jobs.first {
                let flipped = CronFile(text: try file.settingEnabled(!job.enabled, named: job.name)).jobs
                #expect(flipped.map(\.name) == file.jobs.map(\.name))
                #expect(flipped.first?.enabled == !job.enabled, "\(Array(text.utf8))")
            }
        }
    }
}

/// Adds `job` to `text`, checks the result parses as the old jobs plus the new one, then removes
/// it and checks the original bytes come back.
private func checkAddThenRemove(_ text: String, _ job: NewCronJob, context: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let file = CronFile(text: text, validateSchedule: rejectsMinute61)
    let added: String
    do {
        added = try file.adding(job)
    } catch .nameTaken {
        return
    }
    let after = CronFile(text: added, validateSchedule: rejectsMinute61)
    #expect(Array(after.jobs.dropLast()) == file.jobs, "\(Array(text.utf8))", sourceLocation: sourceLocation)
    #expect(after.problems == file.problems, "\(Array(text.utf8))", sourceLocation: sourceLocation)
    let new = try #require(after.jobs.last, "\(Array(text.utf8))", sourceLocation: sourceLocation)
    #expect(CronJob(name: new.name, schedule: new.schedule, command: new.command, enabled: new.enabled,
                    context: new.context, line: 0)
            == CronJob(name: job.name, schedule: job.schedule, command: job.command, enabled: job.enabled,
                       context: context ?? job.context, line: 0), sourceLocation: sourceLocation)
    #expect(utf8Bytes(try after.removing(named: job.name)) == utf8Bytes(text), "\(Array(text.utf8))", sourceLocation: sourceLocation)
}

@Suite struct CronFileEditTests {
    static let variants: [String] = {
        let endingInJob = "# H\n\n---\n\n## Alpha\n\n**Schedule**: 0 1 * * *\n**Command**: a\n\nctx\n"
        let startingWithJob = "## Alpha\n**Schedule**: 0 1 * * *\n**Command**: a\n---\n## Beta\n**Schedule**: 0 2 * * *\n**Command**: b\n"
        let base = [sampleCron, endingInJob, startingWithJob, CronFile.defaultTemplate]
        return base + base.map { String($0.dropLast()) } + base.map(withCRLF) + base.map { String(decoding: utf8Bytes(withCRLF($0)).dropLast(2), as: UTF8.self) }
            + ["", "\n", "\n\n\n", "text", "x\r", "a\r\nb\r", "---", "---\n", "## Notes\n\n- ref", "**Command**: orphan\n"]
    }()

    @Test(arguments: variants)
    func addThenRemoveGivesBackTheOriginalBytes(text: String) throws {
        try checkAddThenRemove(text, NewCronJob(name: "Backup", schedule: "0 3 * * *", command: "Back up the notes.",
                                                context: "\n\nFirst line.\n\n  - item\r\nLast line.\n\n"),
                               context: "First line.\n\n  - item\nLast line.")
        try checkAddThenRemove(text, NewCronJob(name: "Quiet", schedule: "@daily", command: "q", enabled: false))
    }

    @Test func anAddedJobIsItsOwnSectionAfterATrailingReferenceSection() throws {
        let added = try CronFile(text: sampleCron).adding(NewCronJob(name: "Gamma", schedule: "0 3 * * *", command: "do gamma",
                                                                   context: "Gamma context.\nSecond line."))
        #expect(added == sampleCron + "\n---\n\n## Gamma\n\n**Schedule**: 0 3 * * *\n**Command**: do gamma\n**Enabled**: true\n\nGamma context.\nSecond line.\n")
        let crlfAdded = try CronFile(text: withCRLF(sampleCron)).adding(NewCronJob(name: "Gamma", schedule: "0 3 * * *", command: "do gamma",
                                                                           context: "Gamma context.\nSecond line."))
        #expect(utf8Bytes(crlfAdded) == utf8Bytes(withCRLF(added)))
        #expect(try CronFile(text: "").adding(NewCronJob(name: "Only", schedule: "0 * * * *", command: "x"))
                == "## Only\n\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: true\n")
    }

    @Test func addRefusesWhatWouldNotReparse() {
        let file = CronFile(text: sampleCron, validateSchedule: rejectsMinute61)
        func refusal(_ job: NewCronJob) -> CronEditError? {
            do { _ = try file.adding(job); return nil } catch { return error }
        }
        func job(name: String = "New", schedule: String = "0 * * * *", command: String = "x", context: String = "") -> NewCronJob {
            NewCronJob(name: name, schedule: schedule, command: command, context: context)
        }
        #expect(refusal(job(name: " alpha ")) == .nameTaken(name: "Alpha", line: 8))
        #expect(refusal(job(name: " alpha "))?.description == #"a job named "Alpha" already exists (line 8)"#)
        #expect(refusal(job(name: "  ")) == .invalidName(name: "", reason: "it is empty"))
        #expect(refusal(job(name: "a\nb")) == .invalidName(name: "a\nb", reason: "it contains a line break"))
        #expect(refusal(job(name: "#tag")) == .invalidName(name: "#tag", reason: "it starts with \"#\""))
        #expect(refusal(job(name: String(repeating: "é", count: 81))) != nil)
        #expect(refusal(job(name: String(repeating: "é", count: 80))) == nil)
        #expect(refusal(job(schedule: "61 * * * *"))?.description == #"invalid schedule "61 * * * *": minute: 61 is out of range 0-59"#)
        #expect(refusal(job(schedule: "")) == .invalidSchedule(schedule: "", reason: "it is empty"))
        #expect(refusal(job(command: " ")) == .invalidCommand(reason: "it is empty"))
        #expect(refusal(job(command: "a\r\nb"))?.description == "invalid command: it contains a line break; put the details in the context")
        #expect(refusal(job(context: "ok\n---\nmore"))?.description
                == #"invalid context, line 2: "---" would end the job's section; indent it or use other characters"#)
        #expect(refusal(job(context: "## Sub")) == .invalidContext(line: 1, reason: "a line starting with \"## \" would be read as a job heading"))
        #expect(refusal(job(context: "a\n\n**enabled**: no")) == .invalidContext(line: 3, reason: "a line starting with **Enabled**: would be read as the job's field"))
        #expect(refusal(job(context: " ---\n### Sub\n- **Command**: in a list")) == nil)
    }

    /// Jobs built from pieces, so the expected text of each removal can be written down.
    static let header = "# H\n\n"
    static let alpha = "\n## A\n\n**Schedule**: 1 * * * *\n**Command**: a\n\nctx a\n\n"
    static let beta = "\n## B\n\n**Schedule**: 2 * * * *\n**Command**: b\n\nctx b\n\n"
    static let gamma = "\n## C\n\n**Schedule**: 3 * * * *\n**Command**: c\n\nctx c\n"

    @Test func removingTakesTheSectionAndOneSeparator() throws {
        let text = Self.header + "---\n" + Self.alpha + "---\n" + Self.beta + "---\n" + Self.gamma
        let file = CronFile(text: text)
        #expect(try file.removing(named: "a") == Self.header + "---\n" + Self.beta + "---\n" + Self.gamma)
        #expect(try file.removing(named: "B") == Self.header + "---\n" + Self.alpha + "---\n" + Self.gamma)
        #expect(try file.removing(named: "C") == Self.header + "---\n" + Self.alpha + "---\n" + "\n## B\n\n**Schedule**: 2 * * * *\n**Command**: b\n\nctx b\n")
        for name in ["A", "B", "C"] {
            let after = CronFile(text: try file.removing(named: name))
            #expect(after.jobs.map(\.name) == ["A", "B", "C"].filter { $0 != name })
            #expect(after.jobs.map(\.context) == file.jobs.filter { $0.name != name }.map(\.context))
        }
        let first = String(Self.alpha.dropFirst()) + "---\n" + Self.beta
        #expect(try CronFile(text: first).removing(named: "A") == Self.beta)
        #expect(try CronFile(text: withCRLF(first)).removing(named: "A") == withCRLF(Self.beta))
        #expect(try CronFile(text: Self.alpha).removing(named: "A") == "")
    }

    @Test func aBrokenJobCanBeRemoved() throws {
        let text = "## Good\n**Schedule**: 0 * * * *\n**Command**: g\n---\n## Bad\n**Schedule**: 61 * * * *\n**Command**: b\n"
        let file = CronFile(text: text, validateSchedule: rejectsMinute61)
        #expect(file.problems.count == 1)
        #expect(try file.removing(named: "Bad") == "## Good\n**Schedule**: 0 * * * *\n**Command**: g\n")
    }

    @Test func unknownNamesListTheJobs() {
        let file = CronFile(text: sampleCron)
        #expect(throws: CronEditError.noSuchJob(name: "Gamma", jobs: ["Alpha", "Beta"])) { _ = try file.removing(named: "Gamma") }
        #expect(CronEditError.noSuchJob(name: "X", jobs: ["A", "B", "C"]).description == #"no job named "X" (jobs: A, B, C)"#)
        #expect(CronEditError.noSuchJob(name: "X", jobs: []).description == #"no job named "X" (the file has no jobs)"#)
        let many = (1...25).map { "J\($0)" }
        #expect(CronEditError.noSuchJob(name: "X", jobs: many).description.hasSuffix("J19, J20 and 5 more)"))
        #expect(throws: CronEditError.noSuchJob(name: "Notes", jobs: ["Alpha", "Beta"])) { _ = try file.settingEnabled(false, named: "Notes") }
    }

    /// The indices of the lines that differ between two texts of the same line count.
    func changedLines(_ a: String, _ b: String) -> [Int] {
        let x = a.utf8.split(separator: 10, omittingEmptySubsequences: false)
        let y = b.utf8.split(separator: 10, omittingEmptySubsequences: false)
        guard x.count == y.count else { return [-1] }
        return x.indices.filter { !x[$0].elementsEqual(y[$0]) }
    }

    @Test func settingEnabledRewritesOnlyTheValue() throws {
        for text in [sampleCron, withCRLF(sampleCron)] {
            let file = CronFile(text: text)
            let enabledBeta = try file.settingEnabled(true, named: "beta")
            #expect(changedLines(text, enabledBeta) == [19])
            #expect(enabledBeta.contains("**Enabled**:  yes"))
            #expect(CronFile(text: enabledBeta).jobs.map(\.enabled) == [true, true])
            #expect(try file.settingEnabled(false, named: "Beta") == text)
            #expect(try file.settingEnabled(true, named: "Alpha") == text)
        }
        let spelled = "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**ENABLED**:\tTrue  \n"
        #expect(try CronFile(text: spelled).settingEnabled(false, named: "j") == "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**ENABLED**:\tfalse  \n")
        let onOff = "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: off"
        #expect(try CronFile(text: onOff).settingEnabled(true, named: "J") == "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: on")
        let broken = "## J\n**Schedule**: 0 * * * *\n**Command**: x\n**Enabled**: maybe\n"
        let fixed = try CronFile(text: broken).settingEnabled(false, named: "J")
        #expect(CronFile(text: fixed).jobs.map(\.enabled) == [false])
    }

    @Test func disablingAJobWithoutTheFieldInsertsItAfterTheCommand() throws {
        for text in [sampleCron, withCRLF(sampleCron), String(sampleCron.dropLast())] {
            let disabled = try CronFile(text: text).settingEnabled(false, named: "Alpha")
            let newline = text.utf8.contains(13) ? "\r\n" : "\n"
            #expect(disabled == text.replacingOccurrences("**Command**: do alpha" + newline,
                                                          "**Command**: do alpha" + newline + "**Enabled**: false" + newline))
            #expect(CronFile(text: disabled).jobs.map(\.enabled) == [false, false])
        }
        let lastLine = "## J\n**Schedule**: 0 * * * *\n**Command**: x"
        #expect(try CronFile(text: lastLine).settingEnabled(false, named: "J") == lastLine + "\n**Enabled**: false")
    }
}

@Suite struct DefaultCronFileTests {
    @Test func theRepositoryFileMatchesTheConstant() throws {
        let root = String("\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/"))
        let onDisk = try AtomicFile.read("\(root)/context/CRON.md")
        #expect(onDisk == utf8Bytes(CronFile.defaultTemplate), "context/CRON.md differs from CronFile.defaultTemplate")
    }

    @Test func theTemplateHasFourJobsAndNoProblems() {
        let file = CronFile(text: CronFile.defaultTemplate, validateSchedule: rejectsMinute61)
        #expect(file.problems == [])
        #expect(file.jobs.map(\.name) == ["Daily Summary", "Security Check", "Weekly Architecture Review", "Daily Memory Update"])
        #expect(file.jobs.map(\.schedule) == ["0 9 * * *", "0 */6 * * *", "0 10 * * 1", "0 23 * * *"])
        #expect(file.jobs.map(\.enabled) == [true, true, false, true])
        #expect(file.jobs.allSatisfy { !$0.command.isEmpty && $0.context.split(separator: "\n").count >= 3 })
        #expect(!CronFile.defaultTemplate.hasSuffix("---\n"))
    }
}

private extension String {
    /// Plain substring replacement without Foundation.
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = "", rest = self[...]
        while let range = rest.firstRange(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
