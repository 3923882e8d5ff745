import ClawAssistant
import ClawCron
import ClawReactor
import ClawTransport
import Glibc

/// Where cron keeps its files, and its rules.
public struct CronConfig {
    /// The jobs, in the seed's Markdown format (created from the template when missing).
    public var cronPath: String
    /// Run state of every job (JSON, written atomically after each change).
    public var statePath: String
    /// `YYYY-MM.log` (for people) and `runs.jsonl` (the run history, for programs and clients).
    public var logDirectory: String
    public var zone: TimeZoneRules
    public var policy: CatchUpPolicy = .once
    /// How far the one timer may sleep before looking at the wall clock again (a clock step by
    /// NTP or a suspended machine would otherwise delay jobs by as much).
    public var maxSleep: Duration = .seconds(900)

    public init(cronPath: String, statePath: String, logDirectory: String, zone: TimeZoneRules) {
        self.cronPath = cronPath
        self.statePath = statePath
        self.logDirectory = logDirectory
        self.zone = zone
    }
}

/// One finished (or skipped) run, as kept in `runs.jsonl` and sent to clients.
public struct CronRunRecord: Equatable, Sendable {
    public var seq: Int
    public var job: String
    public var reason: String
    public var started: Int64
    public var finished: Int64
    public var ok: Bool
    /// The answer, or the error, or why it was skipped.
    public var result: String

    var json: JSONValue {
        ["seq": .number(Double(seq)), "job": .string(job), "reason": .string(reason), "started": .number(Double(started)),
         "finished": .number(Double(finished)), "ok": .bool(ok), "result": .string(result)]
    }

    init?(_ v: JSONValue) {
        guard let seq = v["seq"]?.intValue, let job = v["job"]?.stringValue, let ok = v["ok"]?.boolValue else { return nil }
        self.init(seq: seq, job: job, reason: v["reason"]?.stringValue ?? "",
                  started: v["started"]?.doubleValue.flatMap { Int64(exactly: $0) } ?? 0,
                  finished: v["finished"]?.doubleValue.flatMap { Int64(exactly: $0) } ?? 0, ok: ok, result: v["result"]?.stringValue ?? "")
    }

    init(seq: Int, job: String, reason: String, started: Int64, finished: Int64, ok: Bool, result: String) {
        self.seq = seq
        self.job = job
        self.reason = reason
        self.started = started
        self.finished = finished
        self.ok = ok
        self.result = result
    }
}

/// The cron scheduler on the daemon's loop: CRON.md (watched with inotify), the pure
/// ``CronPlanner``, one wake-up timer, jobs run through the assistant (each its own LLM call, beside
/// chat), results logged, pushed to connected clients and kept for the ones that connect later
/// (`cron-results`), and the `cron-*` request handlers (PROTOCOL.md 10.5).
public final class CronService {
    public let config: CronConfig
    public private(set) var planner: CronPlanner
    public private(set) var problems: [CronFileProblem] = []
    /// The newest runs, oldest first (the tail of `runs.jsonl`).
    public private(set) var recent: [CronRunRecord] = []
    static let keepRecent = 200
    static let maxResult = 64 << 10
    private var nextSeq = 1
    private let loop: EventLoop
    private let assistant: Assistant
    private let log: Logger
    private var timer: Timer!
    private var debounce: Timer!
    private var watch: IOEvent?
    private var inotifyFD: Int32 = -1
    private var calls: [String: LLMCall] = [:]
    private var lastText: String?
    /// Sends a push to every connected device.
    public var broadcast: (_ method: String, _ params: [String: String], _ body: [UInt8]) -> Void = { _, _, _ in }

    public init(loop: EventLoop, config: CronConfig, assistant: Assistant, log: Logger = Logger("cron")) throws(DaemonError) {
        self.loop = loop
        self.config = config
        self.assistant = assistant
        self.log = log
        do { try AtomicFile.ensureDirectory(config.logDirectory, mode: 0o700) } catch { throw .storage(error.description) }
        planner = CronPlanner(zone: config.zone, policy: config.policy, state: Self.loadState(config.statePath, log: log))
        nextSeq = Self.lastSeq(config.statePath) + 1
        loadHistory()
        timer = Timer(loop: loop) { [unowned self] in self.wake() }
        debounce = Timer(loop: loop) { [unowned self] in self.reload(reason: "CRON.md changed") }
    }

    deinit {
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    /// Creates CRON.md from the template if missing, loads it (running @reboot and missed jobs),
    /// arms the timer and starts watching the file.
    public func start() {
        if AtomicFile.mode(of: config.cronPath) == nil {
            do {
                try AtomicFile.write(Array(CronFile.defaultTemplate.utf8), to: config.cronPath, mode: 0o600)
                log.notice("cron: created \(config.cronPath) from the template")
            } catch {
                log.error("cron: cannot create \(config.cronPath): \(error)")
            }
        }
        reload(reason: "start")
        startWatching()
    }

    public func shutdown() {
        timer.cancel()
        debounce.cancel()
        watch = nil
        for c in calls.values { c.cancel() }
    }

    // MARK: The file

    /// Re-reads CRON.md. An unreadable file keeps the jobs already loaded.
    @discardableResult
    public func reload(reason: String) -> Bool {
        let text: String
        do {
            guard let bytes = try AtomicFile.read(config.cronPath, limit: 4 << 20) else {
                apply(CronFile(text: ""), reason: reason)
                log.warning("cron: \(config.cronPath) does not exist; no jobs")
                return true
            }
            text = String(decoding: bytes, as: UTF8.self)
        } catch {
            log.error("cron: cannot read \(config.cronPath): \(error); keeping \(planner.jobs.count) job(s)")
            return false
        }
        if reason != "start", text == lastText { return true }   // an editor's extra events
        lastText = text
        apply(CronFile(text: text, validateSchedule: Self.validate), reason: reason)
        return true
    }

    static func validate(_ text: String) -> String? {
        do { _ = try CronSchedule.parse(text); return nil } catch { return error.description }
    }

    private func apply(_ file: CronFile, reason: String) {
        problems = file.problems
        for p in file.problems { log.warning("cron: \(p) (the job is skipped; the others run)") }
        var list: [CronPlanner.Job] = []
        for j in file.jobs {
            guard let s = try? CronSchedule.parse(j.schedule) else { continue }
            list.append(CronPlanner.Job(spec: j, schedule: s))
        }
        let actions = planner.load(list, now: loop.clock.unixTime)
        log.info("cron: \(list.count) job(s) loaded (\(reason))" + (problems.isEmpty ? "" : ", \(problems.count) with problems"))
        perform(actions)
        saveState()
        arm()
    }

    private func startWatching() {
        let dir = AtomicFile.directory(of: config.cronPath)
        inotifyFD = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotifyFD >= 0,
              inotify_add_watch(inotifyFD, dir, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM)) >= 0 else {
            log.warning("cron: cannot watch \(dir) (\(String(cString: strerror(errno)))); use /cron reload or SIGHUP after editing CRON.md")
            return
        }
        let name = String(config.cronPath.split(separator: "/").last ?? "")
        let w = IOEvent(loop: loop, fd: inotifyFD) { [unowned self] _ in self.drainEvents(watching: name) }
        w.watch(.readable)
        watch = w
    }

    private func drainEvents(watching name: String) {
        var buf = [UInt8](repeating: 0, count: 8192)
        var touched = false
        while true {
            let n = buf.withUnsafeMutableBytes { read(inotifyFD, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            var off = 0
            let header = MemoryLayout<inotify_event>.size
            while off + header <= n {
                let len = buf.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: off + 12, as: UInt32.self)) }
                let nameBytes = buf[(off + header)..<min(n, off + header + len)].prefix { $0 != 0 }
                if String(decoding: nameBytes, as: UTF8.self) == name { touched = true }
                off += header + len
            }
        }
        // Editors write in several steps (truncate, write, rename): settle first.
        if touched { debounce.schedule(after: .milliseconds(200)) }
    }

    // MARK: Time

    private func wake() {
        perform(planner.tick(now: loop.clock.unixTime))
        saveState()
        arm()
    }

    private func arm() {
        guard let next = planner.nextWakeup else { timer.cancel(); return }
        let wait = Duration.seconds(max(next - loop.clock.unixTime, 0))
        timer.schedule(after: max(min(wait, config.maxSleep), .milliseconds(1)))
    }

    // MARK: Runs

    /// `/cron run NAME`: the job runs now, whatever its schedule or Enabled flag.
    @discardableResult
    public func runNow(_ name: String) throws(CronPlanner.RunError) -> [CronPlanner.Action] {
        let actions = try planner.runNow(name, now: loop.clock.unixTime)
        perform(actions)
        saveState()
        return actions
    }

    private func perform(_ actions: [CronPlanner.Action]) {
        for a in actions {
            switch a {
            case .run(let name, let reason): run(name, reason: reason)
            case .skipped(let name, let reason):
                log.warning("cron: \(name): run skipped: \(reason)")
                let now = loop.clock.unixTime
                record(CronRunRecord(seq: 0, job: name, reason: "skipped", started: now, finished: now, ok: false, result: "skipped: \(reason)"))
            }
        }
    }

    private func run(_ name: String, reason: CronRunReason) {
        guard let job = planner.job(named: name) else { return }
        let started = loop.clock.unixTime
        log.info("cron: \(name): started (\(reason.rawValue))")
        var prompt = "Scheduled task \"\(job.spec.name)\" from CRON.md, run \(reason.rawValue) at \(config.zone.local(started)) \(config.zone.abbreviation(at: started)).\n\n"
        prompt += "Task: \(job.spec.command)\n"
        if !job.spec.context.isEmpty { prompt += "\nContext:\n\(job.spec.context)\n" }
        prompt += "\nDo the task and answer with a concise summary of what you found. You cannot run commands or change files: say so if the task needs that."
        let call = assistant.task(prompt) { [unowned self] outcome in
            self.calls[name] = nil
            let finished = self.loop.clock.unixTime
            let ok: Bool
            let text: String
            switch outcome {
            case .success(let c): ok = true; text = c.text
            case .failure(let e): ok = false; text = "error: \(e)"
            }
            let summary = String(text.prefix(500))
            self.planner.finished(name, ok: ok, summary: summary, now: finished)
            self.log.info("cron: \(name): \(ok ? "done" : "failed") in \(finished - started) s")
            self.record(CronRunRecord(seq: 0, job: name, reason: reason.rawValue, started: started, finished: finished, ok: ok,
                                      result: String(decoding: text.utf8.prefix(Self.maxResult), as: UTF8.self)))
            self.saveState()
            self.arm()
        }
        if !call.isFinished { calls[name] = call }
    }

    /// Appends a run to the history and the monthly log, and pushes it to connected clients.
    private func record(_ r: CronRunRecord) {
        var r = r
        r.seq = nextSeq
        nextSeq += 1
        recent.append(r)
        if recent.count > Self.keepRecent { recent.removeFirst(recent.count - Self.keepRecent) }
        let runs = "\(config.logDirectory)/runs.jsonl"
        appendLine(Array((r.json.encoded() + "\n").utf8), to: runs)
        if let size = fileSize(runs), size > Self.maxRunsFile {
            // Keep the file to its newest records (what clients can still ask for), atomically.
            let kept = recent.map { $0.json.encoded() + "\n" }.joined()
            do { try AtomicFile.write(Array(kept.utf8), to: runs, mode: 0o600) } catch {
                log.error("cron: cannot compact \(runs): \(error)")
            }
        }
        let local = config.zone.local(r.finished)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let month = "\(local.year)-\(two(local.month))"
        let stamp = "\(local):\(two(local.second)) \(config.zone.abbreviation(at: r.finished))"
        let entry = "[\(stamp)] \(r.job) (\(r.reason)) \(r.ok ? "ok" : "FAILED")\n\(r.result)\n---\n"
        appendLine(Array(entry.utf8), to: "\(config.logDirectory)/\(month).log")
        broadcast("cron-result", ["seq": String(r.seq), "job": r.job, "ok": r.ok ? "true" : "false", "reason": r.reason,
                                  "finished": String(r.finished)], Array(r.result.utf8.prefix(Message.maxBody - 4096)))
    }

    static let maxRunsFile = 8 << 20

    private func fileSize(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    private func appendLine(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { log.error("cron: cannot open \(path): \(String(cString: strerror(errno)))"); return }
        defer { close(fd) }
        var bytes = bytes
        // A line torn by a crash must not swallow the next record: start a fresh line.
        var st = stat()
        var last: UInt8 = 0x0A
        if fstat(fd, &st) == 0, st.st_size > 0, pread(fd, &last, 1, st.st_size - 1) == 1, last != 0x0A { bytes.insert(0x0A, at: 0) }
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; log.error("cron: cannot write \(path): \(String(cString: strerror(errno)))"); return }
            off += n
        }
        fdatasync(fd)
    }

    private func loadHistory() {
        let path = "\(config.logDirectory)/runs.jsonl"
        // Only the tail matters (the newest records); a file of any size is read in bounded memory.
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno != ENOENT { log.error("cron: cannot read the run history \(path): \(String(cString: strerror(errno)))") }
            return
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return }
        let want = Int(min(Int64(st.st_size), Int64(Self.maxRunsFile)))
        var bytes = [UInt8](repeating: 0, count: want)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(Int64(st.st_size) - Int64(want))) }
        guard got == want else { log.error("cron: cannot read the run history \(path)"); return }
        if Int64(want) < Int64(st.st_size), let nl = bytes.firstIndex(of: 0x0A) { bytes.removeSubrange(...nl) }   // a cut first line
        for line in bytes.split(separator: 0x0A).suffix(Self.keepRecent) {
            if let v = try? JSONValue.parse(Array(line)), let r = CronRunRecord(v) { recent.append(r) }
        }
        nextSeq = max(nextSeq, (recent.last?.seq ?? 0) + 1)
    }

    // MARK: State file

    /// The last sequence number given out, kept in the state file so numbers never restart.
    static func lastSeq(_ path: String) -> Int {
        guard let bytes = try? AtomicFile.read(path), let v = try? JSONValue.parse(bytes) else { return 0 }
        return max(v["lastSeq"]?.intValue ?? 0, 0)
    }

    static func loadState(_ path: String, log: Logger) -> [String: CronJobState] {
        guard let bytes = try? AtomicFile.read(path) else { return [:] }
        guard let v = try? JSONValue.parse(bytes), let jobs = v["jobs"]?.objectValue else {
            log.warning("cron: \(path) is damaged; starting without run state")
            return [:]
        }
        var out: [String: CronJobState] = [:]
        for (name, j) in jobs {
            func int(_ k: String) -> Int64? { j[k]?.doubleValue.flatMap { Int64(exactly: $0) } }
            out[name] = CronJobState(schedule: j["schedule"]?.stringValue ?? "", nextRun: int("nextRun"), lastRun: int("lastRun"),
                                     lastFinished: int("lastFinished"), lastOK: j["lastOK"]?.boolValue,
                                     lastResult: j["lastResult"]?.stringValue, runCount: j["runCount"]?.intValue ?? 0)
        }
        return out
    }

    private func saveState() {
        var jobs: [String: JSONValue] = [:]
        for (name, s) in planner.state {
            var o: [String: JSONValue] = ["schedule": .string(s.schedule), "runCount": .number(Double(s.runCount))]
            if let v = s.nextRun { o["nextRun"] = .number(Double(v)) }
            if let v = s.lastRun { o["lastRun"] = .number(Double(v)) }
            if let v = s.lastFinished { o["lastFinished"] = .number(Double(v)) }
            if let v = s.lastOK { o["lastOK"] = .bool(v) }
            if let v = s.lastResult { o["lastResult"] = .string(v) }
            jobs[name] = .object(o)
        }
        let doc: JSONValue = ["v": 1, "lastSeq": .number(Double(nextSeq - 1)), "jobs": .object(jobs)]
        do { try AtomicFile.write(Array(doc.encoded().utf8), to: config.statePath, mode: 0o600) } catch {
            log.error("cron: cannot save the run state: \(error)")
        }
    }
}
