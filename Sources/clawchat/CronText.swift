import ClawReactor
import ClawAssistant

/// Turns the daemon's `cron-list` and `cron-results` answers into text for a terminal.
enum CronText {
    static func list(_ body: [UInt8]) -> String {
        guard let v = try? JSONValue.parse(body), let jobs = v["jobs"]?.arrayValue else {
            return "[the daemon's cron answer was not understood]"
        }
        var rows: [[String]] = [["NAME", "SCHEDULE", "NEXT RUN", "LAST RUN", "RESULT", "RUNS", "ENABLED"]]
        for j in jobs {
            let last: String
            switch j["lastOK"]?.boolValue {
            case true?: last = "ok"
            case false?: last = "failed"
            default: last = "-"
            }
            let running = j["running"]?.boolValue == true ? " (running)" : ""
            rows.append([j["name"]?.stringValue ?? "?", j["schedule"]?.stringValue ?? "",
                         j["nextRunText"]?.stringValue ?? "-", j["lastRunText"]?.stringValue ?? "-", last + running,
                         String(j["runCount"]?.intValue ?? 0), j["enabled"]?.boolValue == true ? "yes" : "no"])
        }
        var out = jobs.isEmpty ? "no jobs in CRON.md\n" : table(rows)
        out += "time zone \(v["timeZone"]?.stringValue ?? "?"), missed runs: \(v["catchUp"]?.stringValue ?? "?")\n"
        for p in v["problems"]?.arrayValue ?? [] {
            out += "problem: CRON.md line \(p["line"]?.intValue ?? 0)"
            if let job = p["job"]?.stringValue { out += " (job \"\(job)\")" }
            out += ": \(p["reason"]?.stringValue ?? "")\n"
        }
        return out
    }

    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }
                .joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// One run, as pushed or fetched: a heading line and the result.
    static func result(job: String, ok: Bool, reason: String, text: String) -> String {
        "[cron] \(job) (\(reason)) \(ok ? "done" : "FAILED"):\n\(text)"
    }

    /// The runs in a `cron-results` answer, and the newest sequence number in it.
    static func results(_ body: [UInt8]) -> (text: [String], last: Int) {
        guard let v = try? JSONValue.parse(body), let items = v["results"]?.arrayValue else { return ([], 0) }
        var out: [String] = []
        var last = 0
        for r in items {
            out.append(result(job: r["job"]?.stringValue ?? "?", ok: r["ok"]?.boolValue == true,
                              reason: r["reason"]?.stringValue ?? "", text: r["result"]?.stringValue ?? ""))
            last = max(last, r["seq"]?.intValue ?? 0)
        }
        return (out, last)
    }
}
