import ClawAssistant
import ClawCron
import ClawReactor
import ClawTransport

/// The `cron-*` methods (PROTOCOL.md 10.5). Edits go through ``CronFile``'s in-place edits, are
/// written atomically (temp file, fsync, rename), and take effect at once.
extension CronService {
    public var handlers: [String: (IncomingRequest) -> Void] { [
        "cron-list": { [unowned self] in self.list($0) },
        "cron-run": { [unowned self] in self.runRequest($0) },
        "cron-reload": { [unowned self] in
            if self.reload(reason: "reload requested") {
                $0.reply(Array(self.summary().utf8), params: ["jobs": String(self.planner.jobs.count), "problems": String(self.problems.count)])
            } else {
                $0.fail(code: "storage", "cannot read \(self.config.cronPath); see the daemon's log")
            }
        },
        "cron-add": { [unowned self] in self.add($0) },
        "cron-remove": { [unowned self] r in
            self.edit(r, verb: "removed") { file, name throws(CronEditError) in try file.removing(named: name) }
        },
        "cron-enable": { [unowned self] r in
            self.edit(r, verb: "enabled") { file, name throws(CronEditError) in try file.settingEnabled(true, named: name) }
        },
        "cron-disable": { [unowned self] r in
            self.edit(r, verb: "disabled") { file, name throws(CronEditError) in try file.settingEnabled(false, named: name) }
        },
        "cron-results": { [unowned self] in self.results($0) },
    ] }

    func summary() -> String {
        var s = "\(planner.jobs.count) job(s) loaded from \(config.cronPath)"
        for p in problems { s += "\n  problem: \(p)" }
        return s
    }

    private func stamp(_ t: Int64?) -> JSONValue {
        guard let t else { return .null }
        return .string("\(config.zone.local(t)) \(config.zone.abbreviation(at: t))")
    }

    /// `{"timeZone":..,"jobs":[...],"problems":[...]}`; times as unix seconds and as local text.
    private func list(_ r: IncomingRequest) {
        var jobs: [JSONValue] = []
        for j in planner.jobs {
            let s = planner.state[j.name]
            var o: [String: JSONValue] = [
                "name": .string(j.name), "schedule": .string(j.spec.schedule), "command": .string(j.spec.command),
                "enabled": .bool(j.spec.enabled), "running": .bool(planner.running.contains(j.name)),
                "runCount": .number(Double(s?.runCount ?? 0)), "line": .number(Double(j.spec.line)),
                "nextRunText": stamp(s?.nextRun), "lastRunText": stamp(s?.lastRun),
            ]
            if let v = s?.nextRun { o["nextRun"] = .number(Double(v)) }
            if let v = s?.lastRun { o["lastRun"] = .number(Double(v)) }
            if let v = s?.lastOK { o["lastOK"] = .bool(v) }
            if let v = s?.lastResult { o["lastResult"] = .string(v) }
            jobs.append(.object(o))
        }
        let problems = problems.map { p -> JSONValue in
            ["line": .number(Double(p.line)), "job": p.job.map { .string($0) } ?? .null, "reason": .string(p.reason)]
        }
        let body: JSONValue = ["timeZone": .string(config.zone.name), "catchUp": .string(config.policy.rawValue),
                               "jobs": .array(jobs), "problems": .array(problems)]
        r.reply(Array(body.encoded().utf8), params: ["jobs": String(jobs.count)])
    }

    private func runRequest(_ r: IncomingRequest) {
        let name = r.message.params["name"] ?? r.message.text
        do {
            let actions = try runNow(name)
            r.reply(Array("\"\(name)\" started; its result will be pushed when it is done".utf8),
                    params: ["started": actions.isEmpty ? "false" : "true"])
        } catch {
            r.fail(code: "cron", error.description)
        }
    }

    private func add(_ r: IncomingRequest) {
        let p = r.message.params
        let job = NewCronJob(name: p["name"] ?? "", schedule: p["schedule"] ?? "", command: p["command"] ?? "",
                             context: r.message.text, enabled: p["enabled"] != "false")
        edit(r, verb: "added", name: job.name) { file, _ throws(CronEditError) in try file.adding(job) }
    }

    /// Reads CRON.md, applies one edit, writes it back atomically with its mode kept, reloads.
    private func edit(_ r: IncomingRequest, verb: String, name: String? = nil,
                      _ change: (CronFile, String) throws(CronEditError) -> String) {
        let name = name ?? r.message.params["name"] ?? r.message.text
        let original: String
        do {
            original = try AtomicFile.read(config.cronPath, limit: 4 << 20).map { String(decoding: $0, as: UTF8.self) } ?? ""
        } catch {
            r.fail(code: "storage", "cannot read \(config.cronPath): \(error)")
            return
        }
        let updated: String
        do { updated = try change(CronFile(text: original, validateSchedule: Self.validate), name) } catch {
            r.fail(code: "cron", error.description)
            return
        }
        do {
            try AtomicFile.write(Array(updated.utf8), to: config.cronPath, mode: AtomicFile.mode(of: config.cronPath) ?? 0o600)
        } catch {
            r.fail(code: "storage", "cannot write \(config.cronPath): \(error)")
            return
        }
        reload(reason: "\(verb) \(name)")
        r.reply(Array("\"\(name)\" \(verb); \(summary())".utf8), params: ["jobs": String(planner.jobs.count)])
    }

    /// Runs after `after` (a sequence number the client keeps), at most `limit` (default 50),
    /// oldest first: what a client missed while it was away.
    private func results(_ r: IncomingRequest) {
        let after = Int(r.message.params["after"] ?? "") ?? 0
        let limit = max(1, min(Int(r.message.params["limit"] ?? "") ?? 50, CronService.keepRecent))
        var items: [JSONValue] = []
        var size = 64
        for rec in recent.reversed() where rec.seq > after {
            guard items.count < limit else { break }
            let j = rec.json
            size += j.encoded().utf8.count + 1
            guard size <= Message.maxBody else { break }
            items.append(j)
        }
        let body: JSONValue = ["last": .number(Double(recent.last?.seq ?? 0)), "results": .array(items.reversed())]
        r.reply(Array(body.encoded().utf8), params: ["count": String(items.count)])
    }
}
