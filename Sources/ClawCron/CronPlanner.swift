/// What the scheduler remembers of a job across restarts.
public struct CronJobState: Equatable, Sendable {
    /// The schedule text `nextRun` was computed from: a changed schedule drops a missed run.
    public var schedule: String
    /// When the job's next scheduled run is due (unix seconds); nil for disabled and @reboot jobs.
    public var nextRun: Int64?
    public var lastRun: Int64?
    public var lastFinished: Int64?
    public var lastOK: Bool?
    /// The start of the last answer, or the error.
    public var lastResult: String?
    public var runCount: Int

    public init(schedule: String, nextRun: Int64? = nil, lastRun: Int64? = nil, lastFinished: Int64? = nil,
                lastOK: Bool? = nil, lastResult: String? = nil, runCount: Int = 0) {
        self.schedule = schedule
        self.nextRun = nextRun
        self.lastRun = lastRun
        self.lastFinished = lastFinished
        self.lastOK = lastOK
        self.lastResult = lastResult
        self.runCount = runCount
    }
}

/// What to do about scheduled runs that fell while the daemon was not running.
public enum CatchUpPolicy: String, Sendable, CaseIterable {
    /// Forget them; the job next runs at its next scheduled time.
    case skip
    /// Run the job once at start (however many runs were missed), then keep to the schedule.
    /// The default: the complaint about schedulers is jobs that silently never ran.
    case once
}

/// Why a job runs.
public enum CronRunReason: String, Sendable {
    case scheduled
    case manual
    case catchUp = "catch-up"
    case reboot
}

/// The scheduler's decisions, with no clock, timer, file or LLM: inputs are the job list, the
/// time and the end of runs; outputs are the runs to start and when to wake up next. The daemon's
/// glue arms one timer for ``nextWakeup`` and performs the actions.
///
/// Rules: a job never overlaps itself (a run due while the previous one is still going is
/// skipped and reported); a late wake-up (a suspended machine, a stalled loop) runs each due job
/// once, not once per missed minute; a disabled job has no next run but can still be run by hand.
public struct CronPlanner {
    public struct Job: Sendable {
        public var spec: CronJob
        public var schedule: CronSchedule
        public init(spec: CronJob, schedule: CronSchedule) {
            self.spec = spec
            self.schedule = schedule
        }
        public var name: String { spec.name }
    }

    public enum Action: Equatable, Sendable {
        case run(name: String, reason: CronRunReason)
        /// A due run that did not start, and why (for the log and the run history).
        case skipped(name: String, reason: String)
    }

    public enum RunError: Error, Equatable, CustomStringConvertible {
        case noSuchJob(String, known: [String])
        case alreadyRunning(String)
        public var description: String {
            switch self {
            case .noSuchJob(let n, let known):
                return "no job named \"\(n)\"" + (known.isEmpty ? " (CRON.md has no jobs)" : " (jobs: \(known.joined(separator: ", ")))")
            case .alreadyRunning(let n): return "\"\(n)\" is already running"
            }
        }
    }

    public let zone: TimeZoneRules
    public let policy: CatchUpPolicy
    public private(set) var jobs: [Job] = []
    /// By job name; kept for jobs that disappear from CRON.md, so a job removed and added back
    /// keeps its history.
    public private(set) var state: [String: CronJobState]
    public private(set) var running: Set<String> = []
    private var started = false

    public init(zone: TimeZoneRules, policy: CatchUpPolicy = .once, state: [String: CronJobState] = [:]) {
        self.zone = zone
        self.policy = policy
        self.state = state
    }

    /// The earliest next run of an enabled job.
    public var nextWakeup: Int64? {
        jobs.compactMap { $0.spec.enabled ? state[$0.name]?.nextRun : nil }.min()
    }

    /// Takes the job list (at start, and whenever CRON.md changes). The first call is the
    /// start: `@reboot` jobs run, and runs missed while the daemon was down follow `policy`.
    public mutating func load(_ list: [Job], now: Int64) -> [Action] {
        let startup = !started
        started = true
        jobs = list
        var actions: [Action] = []
        for job in list {
            let text = job.schedule.description
            var s = state[job.name] ?? CronJobState(schedule: text)
            let sameSchedule = s.schedule == text
            let missed = startup && sameSchedule && job.spec.enabled && (s.nextRun.map { $0 <= now } ?? false)
            s.schedule = text
            if !job.spec.enabled || job.schedule.isReboot {
                s.nextRun = nil
            } else if !sameSchedule || startup || s.nextRun == nil {
                // (An unchanged job that is due keeps its due time: the next tick runs it. A reload
                // in the second between due time and wake-up must not skip the run.)
                s.nextRun = job.schedule.next(after: now, in: zone)
            }
            state[job.name] = s
            if startup && job.spec.enabled && job.schedule.isReboot {
                actions += begin(job.name, reason: .reboot, now: now)
            } else if missed {
                switch policy {
                case .once: actions += begin(job.name, reason: .catchUp, now: now)
                case .skip: actions.append(.skipped(name: job.name, reason: "missed while the daemon was down (catch-up policy: skip)"))
                }
            }
        }
        return actions
    }

    /// Starts every enabled job that is due; call when the wake-up time has come.
    public mutating func tick(now: Int64) -> [Action] {
        var actions: [Action] = []
        for job in jobs where job.spec.enabled {
            guard var s = state[job.name], let due = s.nextRun, due <= now else { continue }
            s.nextRun = job.schedule.next(after: now, in: zone)
            state[job.name] = s
            if running.contains(job.name) {
                actions.append(.skipped(name: job.name, reason: "the previous run is still going"))
            } else {
                actions += begin(job.name, reason: .scheduled, now: now)
            }
        }
        return actions
    }

    /// `/cron run NAME`: runs a job now, enabled or not; its schedule is unchanged.
    public mutating func runNow(_ name: String, now: Int64) throws(RunError) -> [Action] {
        guard jobs.contains(where: { $0.name == name }) else { throw .noSuchJob(name, known: jobs.map(\.name)) }
        guard !running.contains(name) else { throw .alreadyRunning(name) }
        return begin(name, reason: .manual, now: now)
    }

    /// A run ended. `summary` is the answer (or the error), shortened by the caller.
    public mutating func finished(_ name: String, ok: Bool, summary: String, now: Int64) {
        running.remove(name)
        var s = state[name] ?? CronJobState(schedule: "")
        s.lastFinished = now
        s.lastOK = ok
        s.lastResult = summary
        s.runCount += 1
        state[name] = s
    }

    public func job(named name: String) -> Job? { jobs.first { $0.name == name } }

    private mutating func begin(_ name: String, reason: CronRunReason, now: Int64) -> [Action] {
        running.insert(name)
        state[name, default: CronJobState(schedule: "")].lastRun = now
        return [.run(name: name, reason: reason)]
    }
}
