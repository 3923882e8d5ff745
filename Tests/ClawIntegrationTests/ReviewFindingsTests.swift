import ClawAssistant
import ClawChannel
import ClawClient
import ClawCron
import ClawCrypto
import ClawDaemon
import ClawFiles
import ClawReactor
import ClawTransport
import Glibc
import Testing

/// Review findings (security and robustness), each a failing test until fixed. The crash findings
/// run in a child process (exit tests): a paired client sends one request and the daemon must
/// still be alive afterwards.
@Suite(.serialized) struct ReviewFindingsTests {
    /// A string just under the message layer's 1 MiB + 4 KiB limit once encoded.
    static let huge = String(repeating: "x", count: 1 << 20)

    /// Sends one request and runs the loop until it is answered (or 10 s).
    static func ask(_ loop: EventLoop, _ session: ClientSession, _ method: String, params: [String: String] = [:],
                    body: [UInt8] = []) -> Result<Message, RequestFailure>? {
        var outcome: Result<Message, RequestFailure>?
        session.request(method, params: params, body: body).onDone = { outcome = $0 }
        _ = loop.run(until: .seconds(10)) { outcome != nil }
        return outcome
    }

    // MARK: Crashes: error bodies that repeat a client's string grow past Message.maxBody, and
    // MessageConnection.send traps (precondition) on them.

    @Test func unknownMethodWithAHugeNameDoesNotCrashTheDaemon() async {
        await #expect(processExitsWith: .success) {
            let f = try Fixture()
            let session = try f.connect(try f.pair()).0
            _ = Self.ask(f.loop, session, Self.huge)
            // Still serving?
            let after = Self.ask(f.loop, session, "echo", body: Array("alive".utf8))
            guard case .success(let m)? = after, m.text == "alive" else { exit(3) }
        }
    }

    @Test func fsGetWithAHugePathAndABadOffsetDoesNotCrashTheDaemon() async {
        await #expect(processExitsWith: .success) {
            let f = try FilesFixture()
            _ = Self.ask(f.loop, f.session, "fs-get", params: ["path": Self.huge, "offset": "x"])
            let after = Self.ask(f.loop, f.session, "echo", body: Array("alive".utf8))
            guard case .success? = after else { exit(3) }
        }
    }

    @Test func cronRunWithAHugeNameDoesNotCrashTheDaemon() async {
        await #expect(processExitsWith: .success) {
            let f = try CronFixture(baseURL: "http://127.0.0.1:9/v1", cronText: nil)
            let session = f.a.session
            _ = Self.ask(f.loop, session, "cron-run", params: ["name": Self.huge])
            let after = Self.ask(f.loop, session, "echo", body: Array("alive".utf8))
            guard case .success? = after else { exit(3) }
        }
    }

    @Test func cronListOfJobsLargerThanOneBodyDoesNotCrashTheDaemon() async {
        await #expect(processExitsWith: .success) {
            let f = try CronFixture(baseURL: "http://127.0.0.1:9/v1", cronText: nil)
            let session = f.a.session
            let command = String(repeating: "c", count: 600_000)
            for name in ["Big One", "Big Two"] {
                guard case .success? = Self.ask(f.loop, session, "cron-add", params: [
                    "name": name, "schedule": "0 9 * * *", "command": command, "enabled": "true"]) else { exit(4) }
            }
            _ = Self.ask(f.loop, session, "cron-list")
            let after = Self.ask(f.loop, session, "echo", body: Array("alive".utf8))
            guard case .success? = after else { exit(3) }
        }
    }

    // MARK: Leaks: handlers store closures on the IncomingRequest that capture the request itself.

    final class WeakRequests {
        var refs: [() -> IncomingRequest?] = []
        func add(_ r: IncomingRequest) { refs.append { [weak r] in r } }
        var alive: Int { refs.filter { $0() != nil }.count }
    }

    @Test func aFinishedDownloadReleasesItsRequestAndBuffer() throws {
        let f = try FilesFixture()
        try makeFile("\(f.root)/small.bin", size: 1000, seed: 1)
        let seen = WeakRequests()
        let original = try #require(f.fixture.daemon.handlers["fs-get"])
        f.fixture.daemon.handlers["fs-get"] = { r in seen.add(r); original(r) }
        for _ in 0..<5 {
            guard case .success? = Self.ask(f.loop, f.session, "fs-get", params: ["path": "small.bin"]) else {
                Issue.record("fs-get failed"); return
            }
        }
        _ = f.loop.run(until: .milliseconds(300)) { false }
        // Each leaked fs-get keeps its IncomingRequest and a 1 MiB read buffer forever.
        #expect(seen.alive == 0, "\(seen.alive) of 5 finished fs-get requests are still alive")
    }

    @Test func aFinishedChatReleasesItsRequest() throws {
        let f = try AssistantFixture(.none, baseURL: "")
        let seen = WeakRequests()
        let original = try #require(f.fixture.daemon.handlers["chat"])
        f.fixture.daemon.handlers["chat"] = { r in seen.add(r); original(r) }
        for _ in 0..<5 { _ = f.chat("hello") }
        _ = f.request("history")   // the daemon forgets finished requests at the connection's next event
        _ = f.loop.run(until: .milliseconds(300)) { false }
        #expect(seen.alive == 0, "\(seen.alive) of 5 finished chat requests are still alive (each keeps its body)")
    }

    // MARK: Two uploads of the same path share one part file.

    @Test func twoUploadsToTheSamePathDoNotCorruptTheCommittedFile() throws {
        let f = try FilesFixture()
        let a = [UInt8](repeating: 0x41, count: 100_000)
        let b = [UInt8](repeating: 0x42, count: 100_000)
        func start(_ bytes: [UInt8]) -> (OutgoingRequest, () -> Bool, () -> Result<Message, RequestFailure>?) {
            var ready = false
            var outcome: Result<Message, RequestFailure>?
            let r = f.session.request("fs-put", params: ["path": "same.bin", "size": String(bytes.count),
                                                         "sha256": hexString(SHA256.hash(bytes)), "overwrite": "true"],
                                      finish: false)
            r.onPartial = { _ in ready = true }
            r.onDone = { outcome = $0 }
            return (r, { ready }, { outcome })
        }
        let (ra, readyA, doneA) = start(a)
        _ = f.loop.run(until: .seconds(5)) { readyA() }
        let (_, _, doneB) = start(b)          // would truncate the part file A is writing
        _ = f.loop.run(until: .seconds(5)) { doneB() != nil }
        guard case .failure(.server(let code, _))? = doneB() else {
            Issue.record("a second upload of the same path was let in: \(String(describing: doneB()))"); return
        }
        #expect(code == "exists")
        ra.data(a); ra.finish()
        _ = f.loop.run(until: .seconds(5)) { doneA() != nil }
        guard case .success? = doneA() else { Issue.record("upload A failed: \(String(describing: doneA()))"); return }
        let onDisk = try #require(try AtomicFile.read("\(f.root)/same.bin"))
        let holdsA = onDisk == a   // (compared outside #expect, which would print 100,000 bytes)
        #expect(holdsA, "the file acknowledged as A's upload holds \(onDisk.first.map { String($0) } ?? "-")...")
    }
}

/// CronPlanner.load recomputes an overdue nextRun on every reload, so a reload that lands between
/// the due second and the timer's wake-up (which `CronService.arm` lets come up to a second late)
/// drops that run.
@Suite struct ReviewFindingsCronTests {
    @Test func aReloadAtTheDueSecondDoesNotDropTheRun() throws {
        let t0: Int64 = 1_796_115_000   // 2026-12-01 08:50:00 UTC
        let nine: Int64 = 1_796_115_600 // 09:00:00
        let job = CronPlanner.Job(spec: CronJob(name: "nine", schedule: "0 9 * * *", command: "x", line: 1),
                                  schedule: try CronSchedule.parse("0 9 * * *"))
        var p = CronPlanner(zone: .utc)
        _ = p.load([job], now: t0)
        #expect(p.nextWakeup == nine)
        // 09:00:00.4: someone's /cron add (or an editor's save) reloads CRON.md; the timer fires at 09:00:00.9.
        _ = p.load([job], now: nine)
        #expect(p.tick(now: nine) == [.run(name: "nine", reason: .scheduled)], "the 09:00 run was dropped; next: \(String(describing: p.nextWakeup))")
    }
}

extension ReviewFindingsTests {
    /// runs.jsonl is appended forever; past 64 MiB loadHistory's read throws, `try?` swallows it,
    /// and the daemon starts over at seq 1: devices whose cron-seen is higher never get results.
    @Test func aLargeRunHistoryKeepsTheSequenceNumbers() throws {
        let f = try CronFixture(baseURL: "http://127.0.0.1:9/v1", cronText: nil)
        let path = "\(f.cron.config.logDirectory)/runs.jsonl"
        let line = #"{"seq":1,"job":"j","reason":"scheduled","started":0,"finished":0,"ok":true,"result":"\#(String(repeating: "r", count: 60_000))"}"# + "\n"
        var bytes = Array(String(repeating: line, count: 1200).utf8)
        bytes += Array(#"{"seq":5000,"job":"j","reason":"scheduled","started":0,"finished":0,"ok":true,"result":"last"}"#.utf8) + [10]
        try AtomicFile.write(bytes, to: path)
        let again = try CronService(loop: f.loop, config: f.cron.config, assistant: f.a.assistant, log: Logger("t", minimum: .error))
        #expect(again.recent.last?.seq == 5000, "history of \(bytes.count >> 20) MiB: \(again.recent.count) runs loaded")
    }
}
