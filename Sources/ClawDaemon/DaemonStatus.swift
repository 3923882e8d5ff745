import ClawAssistant
import ClawChannel
import ClawReactor
import ClawTransport
import Glibc

/// `clawchatd status`: what the daemon knows about itself, gathered on the loop as JSON (the
/// control socket's `status json`) and rendered as aligned lines for people (`status`).
///
/// Times are UNIX seconds (wall clock); durations are seconds or milliseconds as the key says.
/// Instants of the monotonic clock (session events) are converted to wall-clock times.
extension Daemon {
    /// The control socket's requests: `status` (text) and `status json`.
    func controlAnswer(_ request: String) -> String? {
        let words = request.split(whereSeparator: { $0 == " " || $0 == "\t" })
        switch words {
        case ["status"]: return DaemonStatus.render(statusJSON())
        case ["status", "json"]: return statusJSON().encoded() + "\n"
        default: return nil
        }
    }

    /// Opens STATE_DIR/control.sock. Another daemon answering there is an error; any other
    /// problem is logged and the daemon runs without a control socket.
    func startControlSocket() throws(DaemonError) {
        guard control == nil else { return }
        do {
            control = try ControlSocket(loop: loop, path: config.controlSocketPath, log: log) { [unowned self] in
                self.controlAnswer($0)
            }
        } catch {
            if case .inUse = error { throw .storage(error.description) }
            log.warning("no control socket (`clawchatd status` will not answer): \(error)")
        }
    }

    /// Everything `clawchatd status` shows, as one JSON object.
    public func statusJSON() -> JSONValue {
        let now = loop.clock.now
        let unix = loop.clock.unixTime
        func wall(_ t: Instant) -> JSONValue { .number(Double(unix - Int64((now - t).seconds.rounded()))) }
        func num(_ v: Int) -> JSONValue { .number(Double(v)) }
        func num(_ v: Int64) -> JSONValue { .number(Double(v)) }
        func ms(_ d: Duration) -> JSONValue { .number((d.seconds * 1_000_000).rounded() / 1000) }
        func opt(_ v: Int64?) -> JSONValue { v.map { .number(Double($0)) } ?? .null }

        let names = Dictionary(server.pairedDevices.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var sessions: [JSONValue] = []
        for s in server.sessionInfos.sorted(by: { $0.deviceID < $1.deviceID }) {
            var o: [String: JSONValue] = [
                "device": .string(hexString(withUnsafeBytes(of: s.deviceID.bigEndian) { Array($0) })),
                "name": names[s.deviceID].map { .string($0) } ?? .null,
                "address": .string(s.address.description),
                "establishedAt": s.establishedAt.map(wall) ?? .null,
                "lastRekey": s.keysCreated.map(wall) ?? .null,
                "rekeys": num(s.rekeys),
                "lastReceivedAgoMs": ms(now - s.lastReceived),
                "pairing": .bool(s.pairing),
            ]
            if let c = connection(of: s.deviceID) {
                let t = c.transport
                o["connection"] = .bool(true)
                o["rtt"] = ["smoothedMs": ms(t.rtt.smoothed), "latestMs": ms(t.rtt.latest), "minMs": ms(t.rtt.minimum),
                            "varianceMs": ms(t.rtt.variance), "sampled": .bool(t.rtt.hasSample)]
                o["packetsIn"] = num(t.stats.packetsReceived)
                o["packetsOut"] = num(t.stats.packetsSent)
                o["packetsLost"] = num(t.stats.packetsLost)
                o["bytesOut"] = num(t.stats.bytesSent)
                o["openStreams"] = num(t.openStreams)
            } else {
                o["connection"] = .bool(false)
                o["rtt"] = .null
            }
            sessions.append(.object(o))
        }

        let d = server.drops
        let dropList: [(String, Int)] = [
            ("malformed", d.malformed), ("badMac1", d.badMac1), ("rateLimited", d.rateLimited),
            ("handshakeFailed", d.handshakeFailed), ("unknownDevice", d.unknownDevice),
            ("replayedInitiation", d.replayedInitiation), ("unknownIndex", d.unknownIndex),
            ("authenticationFailed", d.authenticationFailed), ("replayedPacket", d.replayedPacket),
            ("truncated", socket.stats.truncatedDropped),
        ]
        var drops: [String: JSONValue] = ["total": num(dropList.reduce(0) { $0 + $1.1 })]
        for (k, v) in dropList { drops[k] = num(v) }

        let st = socket.stats
        var counters: [String: JSONValue] = [
            "packets": ["received": num(st.received), "sent": num(st.sent), "sendWouldBlock": num(st.sendWouldBlock),
                        "sendErrors": num(st.sendErrors), "receiveErrors": num(st.receiveErrors)],
            "drops": .object(drops),
            "handshakes": num(server.handshakesCompleted),
            "securityFilesWritten": num(securityFilesWritten),
        ]
        if let a = assistant {
            let c = a.bridge.counters
            counters["llm"] = ["requests": num(c.requests), "attempts": num(c.attempts), "retries": num(c.retries),
                               "completed": num(c.completed), "failed": num(c.failed), "cancelled": num(c.cancelled),
                               "active": num(a.bridge.activeCalls)]
        } else {
            counters["llm"] = .null
        }
        if let f = files {
            counters["files"] = ["bytesSent": num(f.bytesSent), "bytesReceived": num(f.bytesReceived),
                                 "activeTransfers": num(f.activeTransfers)]
        } else {
            counters["files"] = .null
        }

        var cronValue: JSONValue = .null
        if let cron {
            var jobs: [JSONValue] = []
            var runs = 0
            for j in cron.planner.jobs {
                let s = cron.planner.state[j.name]
                runs += s?.runCount ?? 0
                jobs.append(["name": .string(j.name), "schedule": .string(j.spec.schedule), "enabled": .bool(j.spec.enabled),
                             "running": .bool(cron.planner.running.contains(j.name)), "nextRun": opt(s?.nextRun),
                             "lastRun": opt(s?.lastRun), "lastOK": s?.lastOK.map { .bool($0) } ?? .null,
                             "runCount": num(s?.runCount ?? 0)])
            }
            counters["cronRuns"] = num(runs)
            cronValue = ["zone": .string(cron.config.zone.name), "jobs": .array(jobs), "problems": num(cron.problems.count),
                         "nextWakeup": opt(cron.planner.nextWakeup)]
        }

        let file = schedule.active.first
        let pairing: JSONValue = [
            "securityFile": .string(config.securityFilePath),
            "present": .bool(AtomicFile.mode(of: config.securityFilePath) != nil),
            "validUntil": opt(file?.validUntil),
            "nextRegeneration": opt(schedule.nextRegeneration),
            "regenerating": .bool(schedule.regenerating),
        ]
        let up = Int64((startedAt.map { now - $0 } ?? .zero).seconds.rounded())
        return [
            "v": 1,
            "pid": num(Int(getpid())),
            "now": num(unix),
            "startedAt": startedAt == nil ? .null : num(unix - up),
            "uptimeSeconds": num(up),
            "listen": .string(socket.localAddress.description),
            // Their ports are ignored: clients are told the listening port.
            "publicAddresses": .array(publicAddresses.map { .string($0.withPort(socket.localAddress.port).description) }),
            "cipher": .string(config.cipher.description),
            "stateDirectory": .string(config.stateDirectory),
            "pairedDevices": num(server.pairedDevices.count),
            "sessions": .array(sessions),
            "pairing": pairing,
            "counters": .object(counters),
            "cron": cronValue,
        ]
    }

    /// The status as aligned lines.
    public func statusText() -> String { DaemonStatus.render(statusJSON()) }
}

/// Renders a status JSON object (``Daemon/statusJSON()``) for people.
public enum DaemonStatus {
    public static func render(_ s: JSONValue) -> String {
        let now = Int64(s["now"]?.doubleValue ?? 0)
        var out: [String] = []
        func time(_ v: JSONValue?) -> String {
            guard let t = v?.doubleValue else { return "-" }
            return "\(utc(Int64(t))) (\(relative(Int64(t) - now)))"
        }
        func int(_ v: JSONValue?) -> String { v?.doubleValue.map { String(Int64($0)) } ?? "-" }
        func ago(_ v: JSONValue?) -> String { v?.doubleValue.map { relative(Int64($0) - now) } ?? "-" }

        var head: [(String, String)] = [
            ("clawchatd", "pid \(int(s["pid"])), up \(span(Int64(s["uptimeSeconds"]?.doubleValue ?? 0))), since \(time(s["startedAt"]))"),
            ("listen", s["listen"]?.stringValue ?? "-"),
            ("public", (s["publicAddresses"]?.arrayValue ?? []).compactMap(\.stringValue).joined(separator: ", ")),
            ("cipher", s["cipher"]?.stringValue ?? "-"),
            ("state", s["stateDirectory"]?.stringValue ?? "-"),
            ("devices", "\(int(s["pairedDevices"])) paired, \(s["sessions"]?.arrayValue?.count ?? 0) session(s)"),
        ]
        if head[2].1.isEmpty { head[2].1 = "(none yet)" }
        out += pairs(head)

        let sessions = s["sessions"]?.arrayValue ?? []
        out.append("")
        out.append("sessions")
        if sessions.isEmpty {
            out.append("  (none)")
        } else {
            var rows = [["DEVICE", "NAME", "ADDRESS", "ESTABLISHED", "RTT", "LAST REKEY", "PACKETS IN/OUT", "LAST HEARD"]]
            for x in sessions {
                var rtt = "-"
                if let r = x["rtt"], r["sampled"]?.boolValue == true, let v = r["smoothedMs"]?.doubleValue { rtt = milliseconds(v) }
                var rekey = ago(x["lastRekey"])
                if let n = x["rekeys"]?.intValue, n > 0 { rekey += " (\(n) in all)" }
                let packets = x["packetsIn"]?.doubleValue == nil ? "-" : "\(int(x["packetsIn"]))/\(int(x["packetsOut"]))"
                let heard = x["lastReceivedAgoMs"]?.doubleValue.map { relative(-Int64($0 / 1000)) } ?? "-"
                rows.append([x["device"]?.stringValue ?? "-", x["name"]?.stringValue ?? "-", x["address"]?.stringValue ?? "-",
                             x["pairing"]?.boolValue == true ? "pairing" : ago(x["establishedAt"]), rtt, rekey, packets, heard])
            }
            out += table(rows)
        }

        let p = s["pairing"] ?? .null
        out.append("")
        out.append("pairing")
        var file = p["securityFile"]?.stringValue ?? "-"
        if p["present"]?.boolValue != true { file += " (none)" }
        let next: String
        if p["nextRegeneration"]?.doubleValue != nil {
            next = time(p["nextRegeneration"])
        } else {
            next = "off (no new file until `clawchatd secfile`)"
        }
        out += pairs([("security file", file), ("valid until", time(p["validUntil"])), ("next regeneration", next)], indent: "  ")

        out.append("")
        if let cron = s["cron"], !cron.isNull {
            out.append("cron (\(cron["zone"]?.stringValue ?? "?"))")
            let jobs = cron["jobs"]?.arrayValue ?? []
            if jobs.isEmpty {
                out.append("  (no jobs)")
            } else {
                var rows = [["JOB", "SCHEDULE", "NEXT RUN", "LAST RUN", "RUNS"]]
                for j in jobs {
                    var nextRun = time(j["nextRun"])
                    if j["running"]?.boolValue == true { nextRun = "running now" }
                    else if j["enabled"]?.boolValue == false { nextRun = "disabled" }
                    var last = time(j["lastRun"])
                    if let ok = j["lastOK"]?.boolValue { last += ok ? " ok" : " FAILED" }
                    rows.append([j["name"]?.stringValue ?? "-", j["schedule"]?.stringValue ?? "-", nextRun, last, int(j["runCount"])])
                }
                out += table(rows)
            }
            if let n = cron["problems"]?.intValue, n > 0 { out.append("  \(n) job(s) in CRON.md with problems (see the log)") }
        } else {
            out.append("cron")
            out.append("  (not running)")
        }

        let c = s["counters"] ?? .null
        func list(_ v: JSONValue?, _ keys: [(String, String)]) -> String {
            guard let v, !v.isNull else { return "(not attached)" }
            return keys.map { "\($0.1) \(int(v[$0.0]))" }.joined(separator: ", ")
        }
        var drops = "\(int(c["drops"]?["total"]))"
        let reasons = (c["drops"]?.objectValue ?? [:]).filter { $0.key != "total" && ($0.value.doubleValue ?? 0) > 0 }
        if !reasons.isEmpty {
            drops += " (" + reasons.sorted { $0.key < $1.key }.map { "\(words($0.key)) \(int($0.value))" }.joined(separator: ", ") + ")"
        }
        var filesLine = "(not attached)"
        if let f = c["files"], !f.isNull {
            filesLine = "sent \(bytes(f["bytesSent"]?.doubleValue ?? 0)), received \(bytes(f["bytesReceived"]?.doubleValue ?? 0)), \(int(f["activeTransfers"])) active"
        }
        out.append("")
        out.append("counters")
        out += pairs([
            ("packets", list(c["packets"], [("received", "received"), ("sent", "sent"), ("sendWouldBlock", "send would block"),
                                            ("sendErrors", "send errors"), ("receiveErrors", "receive errors")])),
            ("drops", drops),
            ("handshakes", int(c["handshakes"])),
            ("security files", int(c["securityFilesWritten"])),
            ("LLM", list(c["llm"], [("requests", "requests"), ("retries", "retries"), ("failed", "failed"),
                                    ("cancelled", "cancelled"), ("active", "active")])),
            ("files", filesLine),
            ("cron runs", c["cronRuns"] == nil ? "(not attached)" : int(c["cronRuns"])),
        ], indent: "  ")
        return out.joined(separator: "\n") + "\n"
    }

    // MARK: Formatting

    static func pairs(_ items: [(String, String)], indent: String = "") -> [String] {
        let width = items.map(\.0.count).max() ?? 0
        return items.map { indent + pad($0.0, width) + "  " + $0.1 }
    }

    static func table(_ rows: [[String]]) -> [String] {
        var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            var line = " "
            for (i, c) in r.enumerated() { line += " " + (i == r.count - 1 ? c : pad(c, widths[i])) }
            while line.last == " " { line.removeLast() }
            return line
        }
    }

    static func pad(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }

    /// "badMac1" -> "bad mac1".
    static func words(_ key: String) -> String {
        var s = ""
        for ch in key { if ch.isUppercase { s += " " + ch.lowercased() } else { s.append(ch) } }
        return s
    }

    static func milliseconds(_ v: Double) -> String {
        if v < 10 { return "\(Double(Int((v * 100).rounded())) / 100) ms" }
        return "\(Int(v.rounded())) ms"
    }

    static func bytes(_ v: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var x = v, i = 0
        while x >= 1024 && i < units.count - 1 { x /= 1024; i += 1 }
        return i == 0 ? "\(Int64(v)) B" : "\(Double(Int((x * 10).rounded())) / 10) \(units[i])"
    }

    /// "3h 05m", "42s", "2d 3h".
    static func span(_ seconds: Int64) -> String {
        let s = max(seconds, 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m \(two(s % 60))s" }
        if s < 86400 { return "\(s / 3600)h \(two(s / 60 % 60))m" }
        return "\(s / 86400)d \(s / 3600 % 24)h"
    }

    /// "in 5m 00s", "12s ago", "now".
    static func relative(_ delta: Int64) -> String {
        if delta == 0 { return "now" }
        return delta > 0 ? "in \(span(delta))" : "\(span(-delta)) ago"
    }

    /// "2025-01-31 12:00:00 UTC".
    static func utc(_ t: Int64) -> String {
        let days = t >= 0 ? t / 86400 : (t - 86399) / 86400
        let secs = t - days * 86400
        // Civil from days (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(year)-\(two(month))-\(two(day)) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) UTC"
    }
}
