// The file rows of the `transfer` report: ClawChat's file manager and the scp baseline, as a
// table, a comparison and JSON.

extension FileRow {
    var name: String {
        switch tool {
        case .clawchat: return "ClawChat file manager"
        case .scp(let cipher?): return "scp -c \(cipher)"
        case .scp(nil): return "scp, default cipher"
        }
    }

    var isScp: Bool { if case .scp = tool { return true } else { return false } }

    /// The cipher of an scp row, with the default one's name filled in.
    func cipher(_ facts: SSHFacts?) -> String? {
        guard case .scp(let c) = tool else { return nil }
        return c ?? facts?.defaultCipher ?? "default"
    }
}

extension TransferScenario {
    static func fileTable(_ r: TransferReport, _ s: TransferSettings) -> String {
        let mb = r.fileBytes / 1_000_000
        var text = "transfer, files: one \(mb) MB file of random bytes, \(r.place.description); every copy checked by SHA-256\n"
        text += "ClawChat: FileClient uploads it (fs-put, timed from the call to the daemon's verified reply), then downloads it "
        text += "to a new path (fs-get, timed to the verified rename), direct to 127.0.0.1, each on a fresh session whose "
        text += "handshake is not timed, channel cipher \(s.cipher)\n"
        if let f = r.ssh {
            text += "scp: the same file up to a private sshd on 127.0.0.1:\(f.port) and back (\(f.version); scp speaks SFTP "
            text += "to Subsystem sftp \(f.sftpSubsystem)), timed from starting scp to its exit, a new SSH connection each time\n"
        }
        text += "server = the daemon, or every sshd process of the connection; client = this process, or scp and its ssh; "
        text += "CPU over the wall time (100% = one core); CPU ms/MB = server + client CPU time per MB moved; "
        text += "peak RSS the highest of the rounds\n"

        var t = Table(headers: ["tool", "direction", "MB/s", "server CPU", "client CPU", "CPU ms/MB", "server peak RSS", "client peak RSS"],
                      leftAligned: [0, 1])
        var failures: [String] = []
        for row in r.files {
            var name = row.name
            if case .scp(nil) = row.tool, let c = r.ssh?.defaultCipher { name += " (\(c))" }
            for direction in [TransferDirection.upload, .download] {
                let series = row[direction]
                let samples = series.samples
                func cpu(_ pick: (FileSample) -> Double) -> String {
                    let values = samples.map(pick)
                    return values.isEmpty || values.contains(where: \.isNaN) ? "-" : spread(Summary(values), percent)
                }
                func peak(_ pick: (FileSample) -> Int) -> String {
                    samples.map(pick).max().map { fixed(Double($0) / 1024, 1) + " MiB" } ?? "-"
                }
                var rate = samples.isEmpty ? "" : spread(Summary(samples.map(\.megabytesPerSecond))) { fixed($0, 1) }
                func then(_ more: String) { rate += (rate.isEmpty ? "" : ", then ") + more }
                if series.timedOut { then("timed out (> \(Int(s.timeout.seconds)) s)") }
                if let why = series.failure {
                    then("failed (below)")
                    failures.append("\(row.name) \(direction) failed: \(why)")
                }
                let cost = samples.isEmpty || samples.contains(where: { $0.cpuMsPerMB.isNaN }) ? "-"
                    : spread(Summary(samples.map(\.cpuMsPerMB))) { fixed($0, 1) }
                t.rows.append([name, direction.rawValue, rate, cpu(\.serverCPU), cpu(\.clientCPU), cost,
                               peak(\.serverPeakKiB), peak(\.clientPeakKiB)])
            }
        }
        text += t.render()

        var notes: [String] = []
        if let up = r.files.first(where: { !$0.isScp })?.upload.samples, !up.isEmpty, !up.contains(where: { $0.hashingSeconds.isNaN }) {
            let hashing = Summary(up.map(\.hashingSeconds)), total = Summary(up.map(\.seconds))
            notes.append("the ClawChat upload time includes hashing the whole file before the first byte goes (fs-put carries "
                         + "its SHA-256): \(fixed(hashing.median, 2)) s of \(fixed(total.median, 2)) s (medians)")
        }
        if r.files.contains(where: { !$0.peakResetEverywhere }) {
            notes.append("the kernel refused to reset VmHWM (/proc/PID/clear_refs): some ClawChat peaks are since the process started")
        }
        let logins = r.files.filter { $0.isScp && !$0.loginSeconds.isEmpty }
        if !logins.isEmpty {
            notes.append("each scp run includes a new connection, key exchange and key login, which the ClawChat rows do not time: "
                         + "`ssh HOST true` took " + logins.map { row in
                             "\(fixed(Summary(row.loginSeconds).median * 1000, 0)) ms with \(row.cipher(r.ssh) ?? "")"
                         }.joined(separator: ", ") + " (medians)")
            notes.append("scp's peak RSS is the sum of each process's VmHWM (sshd's session processes and sftp-server; scp and ssh)")
        }
        if let note = r.scp.note { notes.append(note) }
        notes += failures
        if !notes.isEmpty { text += "\n" + notes.joined(separator: "\n") }

        if let comparison = comparisonTable(r) { text += "\n\n" + comparison }
        return text
    }

    /// ClawChat's MB/s next to each scp row's, and the ratio round by round.
    private static func comparisonTable(_ r: TransferReport) -> String? {
        guard let claw = r.files.first(where: { !$0.isScp }) else { return nil }
        let scps = r.files.filter(\.isScp)
        guard !scps.isEmpty else { return nil }
        var t = Table(headers: ["direction", "ClawChat MB/s", "scp cipher", "scp MB/s", "ClawChat / scp",
                                "CPU ms/MB, ClawChat / scp"], leftAligned: [0, 2])
        for direction in [TransferDirection.upload, .download] {
            for (k, row) in scps.enumerated() {
                let ratios = zip(claw[direction].samples, row[direction].samples).map { $0.megabytesPerSecond / $1.megabytesPerSecond }
                t.rows.append([k == 0 ? direction.rawValue : "", k == 0 ? median(claw[direction].samples) : "",
                               row.cipher(r.ssh) ?? "", median(row[direction].samples),
                               ratios.isEmpty ? "-" : spread(Summary(ratios)) { fixed($0, 2) },
                               cost(claw[direction].samples) + " / " + cost(row[direction].samples)])
            }
        }
        var text = "ClawChat file manager against scp, same file, same run (MB/s median; ClawChat / scp is computed round by "
        text += "round, median (min–max): above 1 means ClawChat is faster; CPU ms/MB medians, lower is cheaper)\n" + t.render()
        let logins = scps.compactMap { $0.loginSeconds.isEmpty ? nil : Summary($0.loginSeconds).median }
        if let worst = logins.max(), let best = logins.min() {
            let range = fixed(best * 1000, 0) == fixed(worst * 1000, 0) ? fixed(best * 1000, 0) : "\(fixed(best * 1000, 0))–\(fixed(worst * 1000, 0))"
            text += "\nscp's times include its SSH login (\(range) ms, see above); "
            text += "ClawChat's exclude its handshake"
        }
        return text
    }

    private static func cost(_ samples: [FileSample]) -> String {
        samples.isEmpty || samples.contains(where: { $0.cpuMsPerMB.isNaN }) ? "-" : fixed(Summary(samples.map(\.cpuMsPerMB)).median, 1)
    }

    private static func median(_ samples: [FileSample]) -> String {
        samples.isEmpty ? "-" : fixed(Summary(samples.map(\.megabytesPerSecond)).median, 1)
    }

    static func fileJSON(_ r: TransferReport, _ s: TransferSettings) -> JSON {
        func summary(_ values: [Double]) -> JSON {
            values.isEmpty || values.contains(where: \.isNaN) ? .number(.nan) : .summary(Summary(values))
        }
        func series(_ x: FileSeries, clawchat: Bool, upload: Bool) -> JSON {
            let samples = x.samples
            var fields: [(String, JSON)] = [
                ("megabytesPerSecond", summary(samples.map(\.megabytesPerSecond))),
                ("seconds", summary(samples.map(\.seconds))),
                ("serverCPU", summary(samples.map(\.serverCPU))),
                ("clientCPU", summary(samples.map(\.clientCPU))),
                ("cpuMillisecondsPerMB", summary(samples.map(\.cpuMsPerMB))),
                ("serverPeakRSSKiB", .array(samples.map { .number(Double($0.serverPeakKiB)) })),
                ("clientPeakRSSKiB", .array(samples.map { .number(Double($0.clientPeakKiB)) })),
            ]
            if clawchat {
                fields.append(("peakRSSIsPerTransfer", .bool(samples.allSatisfy(\.peakReset))))
                if upload { fields.append(("hashingSeconds", summary(samples.map(\.hashingSeconds)))) }
                fields.append(("benchPacketsSent", .array(samples.map { .number(Double($0.packetsSent)) })))
                fields.append(("benchPacketsDeclaredLost", .array(samples.map { .number(Double($0.packetsLost)) })))
            }
            fields.append(("timedOut", .bool(x.timedOut)))
            if let why = x.failure { fields.append(("failure", .string(why))) }
            return .object(fields)
        }
        let rows: [JSON] = r.files.map { row in
            var fields: [(String, JSON)] = [("tool", .string(row.isScp ? "scp" : "clawchat"))]
            if let c = row.cipher(r.ssh) { fields.append(("cipher", .string(c))) } else { fields.append(("cipher", .string(s.cipher.description))) }
            fields.append(("upload", series(row.upload, clawchat: !row.isScp, upload: true)))
            fields.append(("download", series(row.download, clawchat: !row.isScp, upload: false)))
            if row.isScp { fields.append(("sshLoginSeconds", summary(row.loginSeconds))) }
            return .object(fields)
        }
        var comparison: [JSON] = []
        if let claw = r.files.first(where: { !$0.isScp }) {
            for row in r.files where row.isScp {
                for direction in [TransferDirection.upload, .download] {
                    let ratios = zip(claw[direction].samples, row[direction].samples).map { $0.megabytesPerSecond / $1.megabytesPerSecond }
                    comparison.append(.object([
                        ("direction", .string(direction.rawValue)),
                        ("scpCipher", .string(row.cipher(r.ssh) ?? "")),
                        ("clawchatOverScp", summary(ratios)),
                    ]))
                }
            }
        }
        let status: String
        switch r.scp {
        case .measured: status = "measured"
        case .skipped: status = "skipped"
        case .unavailable: status = "unavailable"
        case .failed: status = "failed"
        }
        var scp: [(String, JSON)] = [("status", .string(status))]
        if let note = r.scp.note { scp.append(("note", .string(note))) }
        if let f = r.ssh {
            scp += [("version", .string(f.version)), ("defaultCipher", .string(f.defaultCipher)),
                    ("sftpSubsystem", .string(f.sftpSubsystem))]
        }
        return .object([
            ("bytes", .integer(r.fileBytes)),
            ("directory", .string(r.place.base)),
            ("inMemory", .bool(r.place.inMemory)),
            ("rows", .array(rows)),
            ("scp", .object(scp)),
            ("comparison", .array(comparison)),
        ])
    }
}

extension FileRow {
    var peakResetEverywhere: Bool { (upload.samples + download.samples).allSatisfy(\.peakReset) }
}
