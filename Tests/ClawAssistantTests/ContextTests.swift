import ClawReactor
import Testing
@testable import ClawAssistant

/// `count` numbered lines of `width` bytes (newline included), with a multi-byte character in each.
func contextTestLines(_ tag: String, count: Int, width: Int = 40) -> String {
    (0..<count).map { i in
        let head = "\(tag) \(i) é "
        return head + String(repeating: "x", count: max(0, width - 1 - head.utf8.count))
    }.joined(separator: "\n")
}

private let closing = "## CLAWCHAT\n\n" + DefaultContext.closingInstruction

@Suite struct ContextAssemblerTests {
    let six = [
        ContextFile(name: "SOUL.md", content: "  soul text\n\n"),
        ContextFile(name: "AGENTS.md", content: "agents text"),
        ContextFile(name: "USER.md", content: "user text"),
        ContextFile(name: "MEMORY.md", content: "memory text"),
        ContextFile(name: "memory/2026-11-30.md", content: "# 2026-11-30\n\ntoday"),
        ContextFile(name: "memory/2026-11-29.md", content: "# 2026-11-29\n\nyesterday"),
    ]

    @Test func sectionsComeInPriorityOrderThenTheClosingInstruction() {
        let context = ContextAssembler.assemble(six)
        #expect(context.prompt == """
            ## SOUL

            soul text

            ---

            ## AGENTS

            agents text

            ---

            ## USER

            user text

            ---

            ## MEMORY

            memory text

            ---

            ## MEMORY 2026-11-30 (daily log)

            # 2026-11-30

            today

            ---

            ## MEMORY 2026-11-29 (daily log)

            # 2026-11-29

            yesterday

            ---


            """ + closing)
        #expect(context.included == six.map(\.name))
        #expect(context.trimmed.isEmpty)
    }

    @Test func missingAndBlankFilesHaveNoSection() {
        var files = six
        files[1].content = nil
        files[2].content = " \n\t\n"
        files[4].content = ""
        let context = ContextAssembler.assemble(files)
        #expect(context.included == ["SOUL.md", "MEMORY.md", "memory/2026-11-29.md"])
        #expect(!context.prompt.contains("## AGENTS") && !context.prompt.contains("## USER"))
    }

    @Test func withoutAnyContextTheFallbackPromptIsUsed() {
        let none = ["SOUL.md", "AGENTS.md"].map { ContextFile(name: $0, content: nil) } + [ContextFile(name: "USER.md", content: "\n")]
        let context = ContextAssembler.assemble(none)
        #expect(context.prompt == DefaultContext.fallbackPrompt)
        #expect(context.included.isEmpty && context.trimmed.isEmpty)
    }

    /// Yesterday's log goes first, keeping its end under a marker; then today's.
    @Test func theLowestPriorityIsCutFirstAndALogKeepsItsEnd() {
        var files = six
        files[4].content = contextTestLines("today", count: 50)
        files[5].content = contextTestLines("yesterday", count: 50)
        let whole = ContextAssembler.assemble(files, budgetBytes: 1_000_000).prompt.utf8.count
        let budget = whole - 1_000
        let context = ContextAssembler.assemble(files, budgetBytes: budget)
        #expect(context.prompt.utf8.count <= budget)
        #expect(context.included == six.map(\.name))
        #expect(context.trimmed.map(\.name) == ["memory/2026-11-29.md"])
        let trim = context.trimmed[0]
        #expect(trim.originalBytes == files[5].content!.utf8.count)
        #expect(trim.keptBytes > 0 && trim.keptBytes < trim.originalBytes - 1_000)

        let marker = "[… \(trim.originalBytes - trim.keptBytes) bytes of memory/2026-11-29.md cut to fit the context budget]"
        let section = "## MEMORY 2026-11-29 (daily log)\n\n" + marker + "\n\n"
        let start = context.prompt.firstRange(of: section)
        #expect(start != nil, "the marker heads the cut log")
        if let start {
            let kept = String(context.prompt[start.upperBound...].split(separator: "\n\n---\n\n")[0])
            #expect(kept.utf8.count == trim.keptBytes)
            #expect(files[5].content!.hasSuffix(kept), "the newest entries are kept")
            #expect(kept.hasPrefix("yesterday "), "cut on a line boundary")
        }
        #expect(context.prompt.contains("today 49"), "today's log is whole")

        let harder = ContextAssembler.assemble(files, budgetBytes: whole - 3_000)
        #expect(harder.trimmed.map(\.name) == ["memory/2026-11-29.md", "memory/2026-11-30.md"])
        #expect(harder.trimmed[0].keptBytes == 0, "yesterday dropped entirely")
        #expect(!harder.included.contains("memory/2026-11-29.md"))
        #expect(harder.prompt.hasSuffix("\n\n[… \(harder.trimmed[0].originalBytes) bytes of memory/2026-11-29.md cut to fit the context budget]"),
                "a dropped file is still named")
    }

    /// Files other than logs keep their beginning, with the marker at the end.
    @Test func otherFilesKeepTheirBeginningWithTheMarkerAfter() {
        let files = [
            ContextFile(name: "SOUL.md", content: "be kind"),
            ContextFile(name: "MEMORY.md", content: contextTestLines("fact", count: 100)),
        ]
        let context = ContextAssembler.assemble(files, budgetBytes: 2_500)
        #expect(context.prompt.utf8.count <= 2_500)
        #expect(context.included == ["SOUL.md", "MEMORY.md"])
        let trim = context.trimmed[0]
        #expect(trim.name == "MEMORY.md")
        let marker = "\n\n[… \(trim.originalBytes - trim.keptBytes) bytes of MEMORY.md cut to fit the context budget]\n\n---\n\n"
        let body = context.prompt.split(separator: "## MEMORY\n\n")[1].split(separator: marker, omittingEmptySubsequences: false).map(String.init)
        #expect(body.count == 2, "the marker follows the kept text")
        #expect(files[1].content!.hasPrefix(body[0] + "\n"), "the beginning is kept, up to a whole line")
        #expect(body[0].utf8.count == trim.keptBytes)
    }

    @Test func soulIsCutLastAndOnlyWhenNothingElseIsLeft() {
        let files = [
            ContextFile(name: "SOUL.md", content: contextTestLines("soul", count: 40)),
            ContextFile(name: "AGENTS.md", content: contextTestLines("rule", count: 40)),
        ]
        let context = ContextAssembler.assemble(files, budgetBytes: 1_200)
        #expect(context.trimmed.map(\.name) == ["AGENTS.md", "SOUL.md"])
        #expect(context.trimmed.map(\.keptBytes).first == 0)
        #expect(context.included == ["SOUL.md"])
        #expect(context.prompt.hasPrefix("## SOUL\n\nsoul 0 é"))
        #expect(context.prompt.utf8.count <= 1_200)
    }

    /// The invariant: for every budget, the prompt fits, cuts go lowest priority first, and no
    /// character is split.
    @Test func thePromptNeverExceedsTheBudget() {
        let files = [
            ContextFile(name: "SOUL.md", content: contextTestLines("soul", count: 20)),
            ContextFile(name: "AGENTS.md", content: contextTestLines("rule", count: 20, width: 60)),
            ContextFile(name: "USER.md", content: String(repeating: "ü", count: 500)),   // no line breaks at all
            ContextFile(name: "MEMORY.md", content: contextTestLines("fact", count: 30)),
            ContextFile(name: "memory/2026-11-30.md", content: contextTestLines("now", count: 30, width: 80)),
            ContextFile(name: "memory/2026-11-29.md", content: String(repeating: "🙂", count: 300)),
        ]
        let whole = ContextAssembler.assemble(files, budgetBytes: 1_000_000).prompt
        for budget in stride(from: 0, through: whole.utf8.count + 50, by: 7) {
            let context = ContextAssembler.assemble(files, budgetBytes: budget)
            #expect(context.prompt.utf8.count <= budget, "budget \(budget)")
            #expect(!context.prompt.unicodeScalars.contains("\u{FFFD}"), "budget \(budget): a split character")
            if budget >= whole.utf8.count {
                #expect(context.prompt == whole && context.trimmed.isEmpty, "budget \(budget)")
            }
            // Only the highest-priority cut file may keep anything; all below it are dropped.
            let cut = context.trimmed.map(\.name)
            let expectedOrder = Array(files.map(\.name).reversed().prefix(cut.count))
            #expect(cut == expectedOrder, "budget \(budget): cut out of priority order")
            #expect(context.trimmed.dropLast().allSatisfy { $0.keptBytes == 0 }, "budget \(budget)")
            #expect(context.included == files.map(\.name).filter { name in !context.trimmed.contains { $0.name == name && $0.keptBytes == 0 } },
                    "budget \(budget)")
        }
    }

    @Test func tinyBudgetsCutEvenTheFallback() {
        for budget in [0, 1, 5, 50] {
            #expect(ContextAssembler.assemble([], budgetBytes: budget).prompt.utf8.count <= budget)
            #expect(ContextAssembler.assemble(six, budgetBytes: budget).prompt.utf8.count <= budget)
        }
    }
}

@Suite struct DefaultContextTests {
    /// The repository's context/ files are the same bytes as the constants, so the two never drift.
    @Test func theRepositoryTemplatesMatchTheConstants() throws {
        let root = String("\(#filePath)".split(separator: "/", omittingEmptySubsequences: false).dropLast(3).joined(separator: "/"))
        for (name, content) in DefaultContext.files {
            let onDisk = try AtomicFile.read("\(root)/context/\(name)")
            #expect(onDisk == Array(content.utf8), "context/\(name) differs from DefaultContext")
        }
    }

    @Test func theDefaultsFitTheBudgetWithRoomToSpare() {
        let files = DefaultContext.files.map { ContextFile(name: $0.name, content: $0.content) }
        let context = ContextAssembler.assemble(files)
        #expect(context.trimmed.isEmpty)
        #expect(context.prompt.utf8.count < ContextAssembler.defaultBudgetBytes / 4)
        #expect(context.prompt.contains("You are Claw"))
    }
}
