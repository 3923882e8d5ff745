import Glibc
import Testing
@testable import ClawConfig

/// The environment file: KEY=VALUE lines, comments, quotes, mistakes by line (never a value),
/// and the mode check.
@Suite struct EnvFileTests {
    @Test func parsesTheFormat() {
        let env = EnvFile(parsing: """
            # secrets
            ; also a comment
            CLAWCHAT_BOOTSTRAP_KEY=abc def
              OPENAI_API_KEY = "sk-\\"quoted\\" # not a comment"   # a comment
            export DEEPSEEK_API_KEY='lit\\eral'
            EMPTY=
            HASH=a#b
            TRAIL=x   \r
            """)
        #expect(env.errors == [])
        #expect(env["CLAWCHAT_BOOTSTRAP_KEY"] == "abc def")
        #expect(env["OPENAI_API_KEY"] == "sk-\"quoted\" # not a comment")
        #expect(env["DEEPSEEK_API_KEY"] == "lit\\eral")
        #expect(env["EMPTY"] == "")
        #expect(env["HASH"] == "a#b")
        #expect(env["TRAIL"] == "x")
        #expect(env.variables.map(\.line) == [3, 4, 5, 6, 7, 8])
    }

    @Test func mistakesByLineWithoutTheValue() {
        let env = EnvFile(parsing: """
            GOOD=1
            just-a-secret-line
            9BAD=x
            OPEN="sk-secret
            AFTER='sk-secret' junk
            GOOD=2
            """)
        #expect(env.errors.map(\.line) == [2, 3, 4, 5, 6])
        #expect(env.errors[3].key == "AFTER")
        #expect(env.errors[4].description == "line 6: GOOD: set twice (first at line 1)")
        for e in env.errors {
            #expect(!e.description.contains("secret"), "\(e)")
        }
        #expect(env["GOOD"] == "1")
        // Printing a variable shows its name, never its value.
        #expect("\(env.variables[0])" == "GOOD (line 1)")
    }

    @Test func modeRule() {
        #expect(EnvFile.modeProblem(0o100600) == nil)
        #expect(EnvFile.modeProblem(0o100640) == nil)
        #expect(EnvFile.modeProblem(0o100400) == nil)
        #expect(EnvFile.modeProblem(0o100440) == nil)
        #expect(EnvFile.modeProblem(0o100644)?.contains("mode 0644") == true)
        #expect(EnvFile.modeProblem(0o100604) != nil)
        #expect(EnvFile.modeProblem(0o100660) != nil)
        #expect(EnvFile.modeProblem(0o100700) != nil)
    }

    @Test func loadChecksTheMode() {
        let dir = TempDir()
        defer { dir.remove() }
        let good = dir.write("good.env", "A=1\n", mode: 0o640)
        let open = dir.write("open.env", "A=1\n", mode: 0o644)
        guard case .loaded(let env) = EnvFile.load(good) else { Issue.record("0640 refused"); return }
        #expect(env["A"] == "1")
        guard case .unusable(let reason) = EnvFile.load(open) else { Issue.record("0644 accepted"); return }
        #expect(reason.contains("0644"))
        guard case .missing = EnvFile.load("\(dir.path)/none.env") else { Issue.record("missing file"); return }
        guard case .unusable = EnvFile.load(dir.path) else { Issue.record("a directory accepted"); return }
    }
}
