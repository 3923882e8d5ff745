import Testing
@testable import ClawCron

/// The scheduler's decisions on a fake clock: plain unix seconds in, actions out.
@Suite struct CronPlannerTests {
    /// 2026-12-01 08:50:00 UTC, a Tuesday.
    static let t0: Int64 = LocalDateTime(year: 2026, month: 12, day: 1, hour: 8, minute: 50).secondsAsIfUTC

    static func at(_ h: Int, _ m: Int, day: Int = 1) -> Int64 {
        LocalDateTime(year: 2026, month: 12, day: day, hour: h, minute: m).secondsAsIfUTC
    }

    static func job(_ name: String, _ schedule: String, enabled: Bool = true) throws -> CronPlanner.Job {
        CronPlanner.Job(spec: CronJob(name: name, schedule: schedule, command: "do \(name)", enabled: enabled, context: "", line: 1),
                        schedule: try CronSchedule.parse(schedule))
    }

    @Test func jobsFireAtTheirMinutesAndTheTimerAimsAtTheNextOne() throws {
        var p = CronPlanner(zone: .utc)
        #expect(p.load([try Self.job("quarter", "*/15 * * * *"), try Self.job("nine", "0 9 * * *")], now: Self.t0).isEmpty)
        #expect(p.nextWakeup == Self.at(9, 0))
        #expect(p.tick(now: Self.at(8, 59)).isEmpty, "nothing is due a minute early")
        #expect(p.tick(now: Self.at(9, 0)) == [.run(name: "quarter", reason: .scheduled), .run(name: "nine", reason: .scheduled)])
        p.finished("quarter", ok: true, summary: "fine", now: Self.at(9, 0))
        p.finished("nine", ok: true, summary: "fine", now: Self.at(9, 1))
        #expect(p.nextWakeup == Self.at(9, 15))
        #expect(p.state["nine"]?.nextRun == Self.at(9, 0, day: 2))
        #expect(p.state["nine"]?.runCount == 1 && p.state["nine"]?.lastOK == true && p.state["nine"]?.lastRun == Self.at(9, 0))
    }

    @Test func aSlowJobDoesNotDelayAnotherAndNeverOverlapsItself() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("slow", "* * * * *"), try Self.job("other", "*/5 * * * *")], now: Self.t0)
        #expect(p.tick(now: Self.at(8, 51)) == [.run(name: "slow", reason: .scheduled)])
        // "slow" is still waiting for its LLM when the next minutes come.
        #expect(p.tick(now: Self.at(8, 52)) == [.skipped(name: "slow", reason: "the previous run is still going")])
        #expect(p.tick(now: Self.at(8, 55)) == [.skipped(name: "slow", reason: "the previous run is still going"),
                                                 .run(name: "other", reason: .scheduled)])
        p.finished("slow", ok: true, summary: "", now: Self.at(8, 55))
        #expect(p.tick(now: Self.at(8, 56)) == [.run(name: "slow", reason: .scheduled)])
        #expect(p.running == ["slow", "other"])
    }

    @Test func aLateWakeUpRunsADueJobOnceNotOncePerMissedMinute() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("quarter", "*/15 * * * *")], now: Self.t0)
        #expect(p.tick(now: Self.at(9, 47)) == [.run(name: "quarter", reason: .scheduled)])
        #expect(p.nextWakeup == Self.at(10, 0))
    }

    @Test func aRestartRestoresTheStateAndKeepsTheSchedule() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("nine", "0 9 * * *")], now: Self.t0)
        _ = p.tick(now: Self.at(9, 0))
        p.finished("nine", ok: false, summary: "error: no provider", now: Self.at(9, 0))
        // The daemon stops at 12:00 and starts again at 13:00 with the saved state: nothing was missed.
        var q = CronPlanner(zone: .utc, state: p.state)
        #expect(q.load([try Self.job("nine", "0 9 * * *")], now: Self.at(13, 0)).isEmpty)
        #expect(q.state["nine"]?.runCount == 1 && q.state["nine"]?.lastOK == false && q.state["nine"]?.lastResult == "error: no provider")
        #expect(q.nextWakeup == Self.at(9, 0, day: 2))
    }

    @Test func aRunMissedWhileDownRunsOnceAtStartUnderTheDefaultPolicy() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("quarter", "*/15 * * * *"), try Self.job("nine", "0 9 * * *")], now: Self.t0)
        let saved = p.state   // down from 08:50 to 11:02: several quarters and the 09:00 run missed
        var q = CronPlanner(zone: .utc, policy: .once, state: saved)
        let actions = q.load([try Self.job("quarter", "*/15 * * * *"), try Self.job("nine", "0 9 * * *")], now: Self.at(11, 2))
        #expect(actions == [.run(name: "quarter", reason: .catchUp), .run(name: "nine", reason: .catchUp)])
        #expect(q.state["quarter"]?.nextRun == Self.at(11, 15) && q.state["nine"]?.nextRun == Self.at(9, 0, day: 2))

        var r = CronPlanner(zone: .utc, policy: .skip, state: saved)
        let skipped = r.load([try Self.job("nine", "0 9 * * *")], now: Self.at(11, 2))
        #expect(skipped == [.skipped(name: "nine", reason: "missed while the daemon was down (catch-up policy: skip)")])
        #expect(r.running.isEmpty)
    }

    @Test func aScheduleChangedWhileDownOrADisabledJobIsNotCaughtUp() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("nine", "0 9 * * *"), try Self.job("off", "0 9 * * *")], now: Self.t0)
        var q = CronPlanner(zone: .utc, state: p.state)
        let actions = q.load([try Self.job("nine", "30 10 * * *"), try Self.job("off", "0 9 * * *", enabled: false)], now: Self.at(11, 0))
        #expect(actions.isEmpty)
        #expect(q.state["nine"]?.nextRun == Self.at(10, 30, day: 2) && q.state["off"]?.nextRun == nil)
        #expect(q.nextWakeup == Self.at(10, 30, day: 2))
    }

    @Test func rebootJobsRunAtStartOnlyNotOnReload() throws {
        var p = CronPlanner(zone: .utc)
        let jobs = [try Self.job("boot", "@reboot"), try Self.job("nine", "0 9 * * *")]
        #expect(p.load(jobs, now: Self.t0) == [.run(name: "boot", reason: .reboot)])
        p.finished("boot", ok: true, summary: "", now: Self.t0)
        #expect(p.load(jobs, now: Self.t0 + 60).isEmpty, "a reload of CRON.md is not a reboot")
        #expect(p.nextWakeup == Self.at(9, 0))
    }

    @Test func runNowWorksForDisabledJobsAndRefusesUnknownOrRunningOnes() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("off", "0 9 * * *", enabled: false)], now: Self.t0)
        #expect(try p.runNow("off", now: Self.t0) == [.run(name: "off", reason: .manual)])
        #expect(throws: CronPlanner.RunError.alreadyRunning("off")) { try p.runNow("off", now: Self.t0) }
        #expect(throws: CronPlanner.RunError.noSuchJob("nope", known: ["off"])) { try p.runNow("nope", now: Self.t0) }
        #expect(p.tick(now: Self.at(9, 0)).isEmpty, "a disabled job does not run on its schedule")
        #expect(p.nextWakeup == nil)
    }

    @Test func reloadKeepsAPendingRunAndAddsNewJobs() throws {
        var p = CronPlanner(zone: .utc)
        _ = p.load([try Self.job("nine", "0 9 * * *")], now: Self.t0)
        #expect(p.load([try Self.job("nine", "0 9 * * *"), try Self.job("new", "55 8 * * *")], now: Self.t0 + 30).isEmpty)
        #expect(p.state["nine"]?.nextRun == Self.at(9, 0) && p.nextWakeup == Self.at(8, 55))
    }
}
