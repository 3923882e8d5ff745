import ClawReactor

/// The progress line of a transfer. Pure: it is fed byte counts and instants and says what to
/// print, so tests drive it with a fake time.
///
/// On a terminal it is one line redrawn in place (`\r` ... erase to end of line), at most ten
/// times a second, fitted to the terminal's width:
///
///     report.pdf  45% [#######.........]  90.1 MB / 200.0 MB  12.3 MB/s  ETA 0:09
///
/// When the output is a pipe or a file, a plain line at the start and then at most every five
/// seconds, so a log gets a few lines rather than thousands of carriage returns. The rate is a
/// moving average over the last few seconds; sizes are in decimal units (1 MB = 10^6 bytes).
public struct ProgressMeter: Sendable {
    /// The file's size; a negative value while it is unknown.
    public var total: Int64
    /// What is being moved: a file name, shown first.
    public var name: String
    /// Columns available; the line is always shorter, so it never wraps.
    public var width: Int
    public let isTerminal: Bool
    public let start: Instant
    /// Bytes that were already in place (a resume): the average rate leaves them out.
    public let resumedFrom: Int64
    public private(set) var done: Int64

    private struct Sample: Sendable {
        let time: Instant
        let done: Int64
    }
    private var samples: [Sample] = []
    private var lastPrinted: Instant?

    public static let terminalInterval: Duration = .milliseconds(100)
    public static let plainInterval: Duration = .seconds(5)
    /// The moving average covers about this much of the recent past.
    public static let rateWindow: Duration = .seconds(5)
    /// No rate is shown over a shorter span than this (it would be noise).
    static let minimumRateSpan: Duration = .milliseconds(500)
    static let sampleSpacing: Duration = .milliseconds(100)

    public init(total: Int64, start: Instant, isTerminal: Bool, width: Int, name: String = "", resumedFrom: Int64 = 0) {
        self.total = total
        self.start = start
        self.isTerminal = isTerminal
        self.width = width
        self.name = Self.printable(name)
        self.resumedFrom = resumedFrom
        done = resumedFrom
        samples = [Sample(time: start, done: resumedFrom)]
    }

    // MARK: Input

    /// Records progress; returns what to print now, or nil when nothing should be printed yet.
    public mutating func update(done: Int64, now: Instant) -> String? {
        record(done: done, now: now)
        if let last = lastPrinted, now - last < (isTerminal ? Self.terminalInterval : Self.plainInterval) { return nil }
        lastPrinted = now
        return isTerminal ? "\r" + statusLine(now: now) + Self.eraseToEnd : plainLine(now: now) + "\n"
    }

    /// Records progress without printing (for a caller that draws several meters on one line).
    public mutating func record(done: Int64, now: Instant) {
        self.done = done
        if let last = samples.last, now - last.time < Self.sampleSpacing { return }
        samples.append(Sample(time: now, done: done))
        // Keep one sample older than the window, so the average spans the whole window.
        while samples.count > 2, now - samples[1].time >= Self.rateWindow { samples.removeFirst() }
    }

    /// The last line: size, total time, average rate. On a terminal it replaces the progress line.
    public func finish(now: Instant) -> String {
        (isTerminal ? "\r" + summary(now: now) + Self.eraseToEnd : summary(now: now)) + "\n"
    }

    // MARK: What is shown

    /// Bytes per second over the recent past; nil until there is enough of it.
    public func rate(now: Instant) -> Double? {
        guard let first = samples.first else { return nil }
        let span = now - first.time
        guard span >= Self.minimumRateSpan else { return nil }
        return Double(max(done - first.done, 0)) / span.seconds
    }

    /// Seconds left at the current rate; nil while unknown.
    public func eta(now: Instant) -> Double? {
        guard total >= 0, let r = rate(now: now), r > 0 else { return nil }
        return Double(max(total - done, 0)) / r
    }

    /// The progress line without control characters, fitted to `width`.
    public func statusLine(now: Instant) -> String {
        let fields = "  " + Self.formatBytes(done) + (total >= 0 ? " / " + Self.formatBytes(total) : "")
            + "  " + rateText(now: now) + "  ETA " + etaText(now: now)
        guard total >= 0 else { return fit(name: name, rest: fields) }
        let pct = Self.pad(String(percent), to: 3) + "%"
        let head = "  " + pct + " [", tail = "]" + fields
        let fixed = head.count + tail.count
        // The bar takes what the name leaves, 10 to 30 columns; a long name is shortened down to
        // 12 columns before the bar goes.
        let room = width - 1 - LineEditor.displayWidth(name) - fixed
        if room >= 10 { return name + head + Self.bar(percent: percent, width: min(30, room)) + tail }
        let nameRoom = width - 1 - fixed - 10
        if nameRoom >= 12 { return Self.truncate(name, to: nameRoom) + head + Self.bar(percent: percent, width: 10) + tail }
        return fit(name: name, rest: "  " + pct + fields)
    }

    /// A short form for a line shared by several transfers: `name 45% 12.3 MB/s`.
    public func compactStatus(now: Instant, nameWidth: Int = 20) -> String {
        let n = Self.truncate(name, to: nameWidth)
        let pct = total >= 0 ? " \(percent)%" : " " + Self.formatBytes(done)
        return n + pct + " " + rateText(now: now, padded: false)
    }

    /// The summary of a finished transfer, without control characters.
    public func summary(now: Instant) -> String {
        let elapsed = now - start
        let moved = max(done - resumedFrom, 0)
        var s = (name.isEmpty ? "" : name + "  ") + Self.formatBytes(done) + " in " + Self.formatElapsed(elapsed)
        s += ", " + Self.formatBytes(Int64(Double(moved) / max(elapsed.seconds, 0.001))) + "/s average"
        if resumedFrom > 0 { s += " (resumed at " + Self.formatBytes(resumedFrom) + ")" }
        return s
    }

    public var percent: Int {
        guard total > 0 else { return 100 }
        return Int(min(max(done, 0), total) * 100 / total)
    }

    private func plainLine(now: Instant) -> String {
        (name.isEmpty ? "" : name + "  ") + (total >= 0 ? "\(percent)%  " : "") + Self.formatBytes(done)
            + (total >= 0 ? " / " + Self.formatBytes(total) : "") + "  " + rateText(now: now, padded: false)
            + "  ETA " + etaText(now: now)
    }

    /// Padded on a terminal, so the fields after it do not jitter as the rate changes.
    private func rateText(now: Instant, padded: Bool = true) -> String {
        let r = rate(now: now).map { Self.formatBytes(Int64($0)) } ?? "--"
        return (padded ? Self.pad(r, to: 8) : r) + "/s"
    }

    private func etaText(now: Instant) -> String {
        eta(now: now).map { Self.formatClock($0) } ?? "--:--"
    }

    /// `name` + `rest`, the name shortened in its middle if the whole would not fit.
    private func fit(name: String, rest: String) -> String {
        let room = width - 1 - rest.count
        if room <= 0 { return String(rest.prefix(max(width - 1, 0))) }
        return Self.truncate(name, to: room) + rest
    }

    // MARK: Formatting

    static let eraseToEnd = "\u{1B}[K"

    /// `999 B`, `1.0 KB`, `90.1 MB`, `1.2 GB`: decimal units, one decimal.
    public static func formatBytes(_ n: Int64) -> String {
        if n < 1000 { return "\(n) B" }
        var value = Double(n)
        for unit in ["KB", "MB", "GB"] {
            value /= 1000
            let tenths = Int64((value * 10).rounded())
            if tenths < 10_000 || unit == "GB" { return "\(tenths / 10).\(tenths % 10) \(unit)" }
        }
        return "\(n) B"
    }

    /// `0:09`, `12:34`, `1:02:03`.
    public static func formatClock(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds < 360_000 else { return "--:--" }
        let s = Int(seconds.rounded(.up))
        let (h, m, sec) = (s / 3600, s / 60 % 60, s % 60)
        let two = { (v: Int) in v < 10 ? "0\(v)" : "\(v)" }
        return h > 0 ? "\(h):\(two(m)):\(two(sec))" : "\(m):\(two(sec))"
    }

    /// A duration for the summary: `0.4 s` under a minute, else a clock.
    public static func formatElapsed(_ d: Duration) -> String {
        let s = d.seconds
        if s < 60 {
            let tenths = Int((s * 10).rounded())
            return "\(tenths / 10).\(tenths % 10) s"
        }
        return formatClock(s)
    }

    static func bar(percent: Int, width: Int) -> String {
        let filled = min(width, percent * width / 100)
        return String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    }

    static func pad(_ s: String, to n: Int) -> String {
        s.count >= n ? s : String(repeating: " ", count: n - s.count) + s
    }

    /// At most `columns` wide: the head and the tail kept (the extension matters), `…` between.
    static func truncate(_ s: String, to columns: Int) -> String {
        if LineEditor.displayWidth(s) <= columns { return s }
        guard columns > 1 else { return String(repeating: ".", count: max(columns, 0)) }
        let chars = Array(s)
        var head = "", tail = ""
        var used = 1
        var i = 0, j = chars.count - 1
        var takeHead = true
        while i <= j {
            let c = takeHead ? chars[i] : chars[j]
            let w = LineEditor.displayWidth(c)
            if used + w > columns { break }
            used += w
            if takeHead { head.append(c); i += 1 } else { tail = String(c) + tail; j -= 1 }
            takeHead.toggle()
        }
        return head + "…" + tail
    }

    /// A name with control characters replaced, so it cannot move the cursor.
    static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.map { u in
            u.value < 0x20 || u.value == 0x7F || (0x80...0x9F).contains(u.value) ? "?" : u
        }))
    }
}
