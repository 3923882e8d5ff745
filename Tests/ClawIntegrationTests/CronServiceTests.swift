import ClawAssistant
import ClawChannel
import ClawClient
import ClawCron
import ClawDaemon
import ClawReactor
import ClawTransport
import Glibc
import Testing

/// The scheduler in a real daemon with the assistant pointed at the mock LLM, and paired clients.
final class CronFixture {
    let a: AssistantFixture
    let cron: CronService
    var loop: EventLoop { a.loop }
    var dir: String { a.fixture.dir }
    var cronPath: String { "\(dir)/state/context/CRON.md" }

    init(baseURL: String, cronText: String?, policy: CatchUpPolicy = .once) throws {
        let a = try AssistantFixture(.openai, baseURL: baseURL)
        self.a = a
        let dir = a.fixture.dir
        if let cronText { try AtomicFile.write(Array(cronText.utf8), to: "\(dir)/state/context/CRON.md") }
        var config = CronConfig(cronPath: "\(dir)/state/context/CRON.md", statePath: "\(dir)/state/cron-state.json",
                                logDirectory: "\(dir)/state/logs/cron", zone: .utc)
        config.policy = policy
        cron = try CronService(loop: a.loop, config: config, assistant: a.assistant, log: Logger("test-cron", minimum: .error))
        a.fixture.daemon.attach(cron)
        cron.start()
    }

    /// Runs the loop until `condition` or `timeout`.
    @discardableResult
    func run(_ timeout: Duration = .seconds(10), until condition: () -> Bool) -> Bool {
        loop.run(until: timeout, condition: condition)
    }

    func request(_ session: ClientSession, _ method: String, params: [String: String] = [:], body: String = "") -> Result<Message, RequestFailure>? {
        var outcome: Result<Message, RequestFailure>?
        session.request(method, params: params, body: Array(body.utf8)).onDone = { outcome = $0 }
        run(.seconds(5)) { outcome != nil }
        return outcome
    }
}

@Suite(.serialized) struct CronServiceTests {
    static let jobs = """
        # Jobs

        ---

        ## Good One

        **Schedule**: 0 9 * * *
        **Command**: Summarise the news
        **Enabled**: true

        ---

        ## Broken

        **Schedule**: 61 * * * *
        **Command**: Never runs

        ---

        ## Good Two

        **Schedule**: @daily
        **Command**: Check the backups
        Look at the logs.

        """

    func mock() throws -> MockLLM { try AssistantTests.mock.get() }

    @Test func aBrokenJobIsReportedWithItsLineAndTheGoodOnesRun() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-broken"), cronText: Self.jobs)
        #expect(f.cron.planner.jobs.map(\.name) == ["Good One", "Good Two"])
        let problem = try #require(f.cron.problems.first)
        #expect(f.cron.problems.count == 1 && problem.line == 15 && problem.description.contains("61"))
        for name in ["Good One", "Good Two"] { try f.cron.runNow(name) }
        #expect(f.run { f.cron.recent.count == 2 })
        #expect(f.cron.recent.allSatisfy { $0.ok && $0.result.hasPrefix("You said: Scheduled task") })
        #expect(f.cron.recent.map(\.job).sorted() == ["Good One", "Good Two"])
        // The job's own context went to the model, and no chat history did.
        let req = try #require(m.events("request", scenario: "ok,id=cron-broken").first { ($0["body"]?["messages"]?[1]?["content"]?.stringValue ?? "").contains("Good Two") })
        #expect(req["body"]?["messages"]?[1]?["content"]?.stringValue?.contains("Look at the logs.") == true)
        #expect(req["body"]?["messages"]?.arrayValue?.count == 2)
        #expect(try f.a.storedExchanges().isEmpty, "cron results never enter the chat history")
        // The month's log and the machine-readable history.
        let logs = try #require(try AtomicFile.read("\(f.dir)/state/logs/cron/runs.jsonl"))
        #expect(logs.split(separator: 10).count == 2)
    }

    @Test func aConnectedClientGetsThePushAndALaterClientGetsWhatItMissed() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-push"), cronText: Self.jobs)
        var pushes: [Message] = []
        f.a.session.onPush = { pushes.append($0) }
        // As the interactive client does on connecting: ask for missed results (none yet), which
        // opens the message connection that pushes travel on.
        guard case .success(let empty)? = f.request(f.a.session, "cron-results", params: ["after": "0"]) else {
            Issue.record("no cron-results answer"); return
        }
        #expect(try JSONValue.parse(empty.body)["results"]?.arrayValue?.isEmpty == true)
        try f.cron.runNow("Good Two")
        #expect(f.run { !pushes.isEmpty })
        let push = try #require(pushes.first)
        #expect(push.method == "cron-result" && push.params["job"] == "Good Two" && push.params["ok"] == "true")
        #expect(push.text.hasPrefix("You said: Scheduled task \"Good Two\""))

        // A second device pairs and connects only now: it asks for what it missed.
        f.a.fixture.daemon.newSecurityFile()
        let later = try f.a.fixture.pair(name: "later", identityPath: "\(f.dir)/later/identity")
        let (session, _) = try f.a.fixture.connect(later)
        guard case .success(let missed)? = f.request(session, "cron-results", params: ["after": "0"]) else {
            Issue.record("no cron-results answer"); return
        }
        let parsed = try JSONValue.parse(missed.body)
        #expect(parsed["results"]?.arrayValue?.count == 1 && parsed["results"]?[0]?["job"] == "Good Two")
        let seq = parsed["last"]?.intValue ?? 0
        guard case .success(let none)? = f.request(session, "cron-results", params: ["after": String(seq)]) else { return }
        #expect(try JSONValue.parse(none.body)["results"]?.arrayValue?.isEmpty == true, "nothing twice")
    }

    @Test func aSlowJobDoesNotDelayAChat() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-slow,slow_match=Scheduled,slow_delay_ms=800"), cronText: Self.jobs)
        try f.cron.runNow("Good One")   // 5 pieces, 800 ms apart: about 3 s
        let start = f.loop.clock.now
        let chat = f.a.chat("quick question")
        let took = f.loop.clock.now - start
        #expect(chat.text == "You said: quick question")
        print("cron: a chat beside a slow cron job was answered in \(Int(took.seconds * 1000)) ms")
        #expect(took < promptLimit(.seconds(2)), "the chat waited \(took) behind the cron job")
        #expect(f.cron.recent.isEmpty && f.cron.planner.running == ["Good One"], "the job is still running")
        #expect(f.run { !f.cron.recent.isEmpty })
        #expect(f.cron.recent.first?.ok == true)
    }

    @Test func addListEnableDisableAndRemoveOverTheWireKeepTheFileByteForByte() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-edit"), cronText: Self.jobs)
        let s = f.a.session
        let before = try #require(try AtomicFile.read(f.cronPath))
        guard case .success? = f.request(s, "cron-add", params: ["name": "Standup", "schedule": "0 9 * * 1-5", "command": "Plan my day"],
                                         body: "Keep it short.") else { Issue.record("add failed"); return }
        #expect(f.cron.planner.jobs.map(\.name) == ["Good One", "Good Two", "Standup"])
        guard case .success(let list)? = f.request(s, "cron-list") else { Issue.record("list failed"); return }
        let parsed = try JSONValue.parse(list.body)
        let standup = try #require(parsed["jobs"]?.arrayValue?.first { $0["name"] == "Standup" })
        #expect(standup["schedule"] == "0 9 * * 1-5" && standup["enabled"] == true && standup["nextRun"] != nil)
        #expect(parsed["problems"]?.arrayValue?.count == 1)

        guard case .success? = f.request(s, "cron-disable", params: ["name": "Standup"]) else { Issue.record("disable failed"); return }
        #expect(f.cron.planner.job(named: "Standup")?.spec.enabled == false)
        guard case .success? = f.request(s, "cron-enable", params: ["name": "Standup"]) else { Issue.record("enable failed"); return }
        guard case .success? = f.request(s, "cron-remove", params: ["name": "Standup"]) else { Issue.record("remove failed"); return }
        let after = try #require(try AtomicFile.read(f.cronPath))
        #expect(after == before, "add, disable, enable, remove leave CRON.md as it was")

        guard case .failure(.server(let code, let text))? = f.request(s, "cron-add", params: ["name": "Bad", "schedule": "* * *", "command": "x"]) else {
            Issue.record("a bad schedule was accepted"); return
        }
        #expect(code == "cron" && text.contains("field"))
        guard case .failure(.server(_, let missing))? = f.request(s, "cron-run", params: ["name": "Nope"]) else { return }
        #expect(missing.contains("no job named \"Nope\""))
    }

    @Test func editingTheFileIsNoticedWithoutPolling() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-watch"), cronText: Self.jobs)
        #expect(f.cron.planner.jobs.count == 2)
        let edited = Self.jobs.replacing("## Broken\n\n**Schedule**: 61 * * * *", with: "## Fixed\n\n**Schedule**: 1 * * * *")
        try AtomicFile.write(Array(edited.utf8), to: f.cronPath)   // a rename, as editors do
        #expect(f.run(.seconds(5)) { f.cron.planner.jobs.count == 3 }, "inotify saw the change")
        #expect(f.cron.problems.isEmpty)
    }

    @Test func aRestartRestoresRunStateAndHistory() throws {
        let m = try mock()
        let f = try CronFixture(baseURL: m.base("ok,id=cron-restart"), cronText: Self.jobs)
        try f.cron.runNow("Good One")
        #expect(f.run { !f.cron.recent.isEmpty })
        f.cron.shutdown()
        // A second service on the same files, as after a daemon restart.
        let again = try CronService(loop: f.loop, config: f.cron.config, assistant: f.a.assistant, log: Logger("t", minimum: .error))
        again.start()
        #expect(again.planner.state["Good One"]?.runCount == 1 && again.planner.state["Good One"]?.lastOK == true)
        #expect(again.recent.map(\.job) == ["Good One"])
        #expect(again.planner.running.isEmpty, "nothing was missed, nothing is caught up")
        #expect(again.planner.state["Good One"]?.nextRun == f.cron.planner.state["Good One"]?.nextRun)
        again.shutdown()
    }
}
