import ClawReactor

/// One kind of local time a zone uses: its offset, whether it is daylight saving time, and its
/// abbreviation ("EST", "+0530").
struct LocalTimeType: Sendable, Equatable {
    /// Seconds east of UTC.
    var utoff: Int
    var isDST: Bool
    var abbreviation: String
}

/// The rules of one time zone, parsed from a TZif file (RFC 8536) or a POSIX TZ string, answering
/// "what time is it there at this instant" and "which instants have this wall-clock time".
///
/// Every query is a pure function of the parsed data. The process-global C machinery (`TZ`,
/// `tzset`, `localtime_r`) is deliberately not used: it cannot answer for several zones at once,
/// and tests that run in parallel would race on it.
///
/// Instants before the first listed transition use the file's first local time type (usually
/// local mean time); instants after the last one follow the footer's TZ string, or the last type
/// if there is no footer. A file with no transitions but a footer follows the footer throughout,
/// as "slim" files for fixed-offset zones do.
public struct TimeZoneRules: Sendable, Equatable {
    public let name: String
    /// Transition instants, strictly ascending.
    let transitions: [Int64]
    /// For each transition, the index into `types` in force from that instant on.
    let transitionTypes: [UInt8]
    let types: [LocalTimeType]
    let footer: PosixTZRule?
    /// Every offset the zone ever uses, ascending and without repeats: the only candidates for
    /// the instants of a local time.
    let offsets: [Int]

    init(name: String, transitions: [Int64], transitionTypes: [UInt8], types: [LocalTimeType], footer: PosixTZRule?) {
        self.name = name
        self.transitions = transitions
        self.transitionTypes = transitionTypes
        self.types = types
        self.footer = footer
        var all = types.map(\.utoff)
        if let footer {
            all.append(footer.standard.utoff)
            if let d = footer.daylight { all.append(d.type.utoff) }
        }
        offsets = Array(Set(all)).sorted()
    }

    public static let utc = TimeZoneRules(name: "UTC", transitions: [], transitionTypes: [],
                                          types: [LocalTimeType(utoff: 0, isDST: false, abbreviation: "UTC")], footer: nil)

    /// Rules from a POSIX TZ string alone, e.g. `CET-1CEST,M3.5.0,M10.5.0/3` or `<+0330>-3:30`.
    public init(posix: String, name: String) throws(TimeZoneError) {
        let rule: PosixTZRule
        do { rule = try PosixTZRule(parsing: posix) } catch {
            throw .malformedPosixTZ(name: name, string: posix, problem: error.problem)
        }
        self.init(name: name, transitions: [], transitionTypes: [], types: [rule.standard], footer: rule)
    }

    // MARK: Queries

    /// The UTC offset at `unix`, in seconds east of UTC (New York in winter: -18000).
    public func offset(at unix: Int64) -> Int { type(at: unix).utoff }

    /// The wall-clock time at `unix`.
    public func local(_ unix: Int64) -> LocalDateTime {
        LocalDateTime(asIfUTC: unix + Int64(offset(at: unix)))
    }

    /// The abbreviation in use at `unix`, such as "EDT".
    public func abbreviation(at unix: Int64) -> String { type(at: unix).abbreviation }

    /// The instants whose local time is exactly `local`, earliest first: none when the clocks
    /// skip it (spring forward), two when they pass it twice (fall back), otherwise one.
    public func instants(for local: LocalDateTime) -> [Int64] {
        instants(asIfUTC: local.secondsAsIfUTC)
    }

    /// `instants(for:)` with the local time given as `LocalDateTime.secondsAsIfUTC`.
    func instants(asIfUTC local: Int64) -> [Int64] {
        // An instant t shows `local` exactly when offset(t) == local - t, so it suffices to try
        // each offset the zone ever uses; ascending offsets give descending instants.
        var found: [Int64] = []
        for o in offsets.reversed() where offset(at: local - Int64(o)) == o {
            found.append(local - Int64(o))
        }
        return found
    }

    /// The first instant strictly after `unix` at which the local time type may change, or nil if
    /// it never changes again. Some transitions change only the abbreviation or the DST flag.
    func nextTransition(after unix: Int64) -> Int64? {
        if let last = transitions.last, unix < last {
            return transitions[firstIndex(after: unix)]
        }
        if transitions.isEmpty || footer != nil { return footer?.nextSwitch(after: unix) }
        return nil
    }

    func type(at unix: Int64) -> LocalTimeType {
        guard let last = transitions.last else { return footer?.type(at: unix) ?? types[0] }
        if unix > last, let footer { return footer.type(at: unix) }
        let i = firstIndex(after: unix)
        return i == 0 ? types[0] : types[Int(transitionTypes[i - 1])]
    }

    /// The index of the first transition strictly after `unix` (`transitions.count` if none).
    private func firstIndex(after unix: Int64) -> Int {
        var lo = 0, hi = transitions.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if transitions[mid] <= unix { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    // MARK: Loading

    /// Reads and parses `root/name`, e.g. "Europe/Paris". The name is checked first so that it
    /// cannot leave `root`; "UTC" and "Etc/UTC" need no file.
    public static func load(named name: String, root: String = "/usr/share/zoneinfo") throws(TimeZoneError) -> TimeZoneRules {
        if let reason = problem(withName: name) { throw .invalidName(name, reason: reason) }
        if name == "UTC" || name == "Etc/UTC" {
            return TimeZoneRules(name: name, transitions: [], transitionTypes: [], types: utc.types, footer: nil)
        }
        let path = root + "/" + name
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path, limit: maxFileSize) } catch {
            throw .unreadable(name: name, path: path, reason: error.description)
        }
        guard let bytes else { throw .notFound(name: name, path: path) }
        return try TimeZoneRules(tzif: bytes, name: name)
    }

    /// Real zone files are a few kilobytes; anything much larger is not one.
    static let maxFileSize = 1 << 20
    static let maxNameLength = 100

    /// Why `name` is not an acceptable zone name, or nil if it is.
    static func problem(withName name: String) -> String? {
        if name.isEmpty { return "the name is empty" }
        if name.utf8.count > maxNameLength { return "the name is longer than \(maxNameLength) characters" }
        if name.hasPrefix("/") { return "it is an absolute path; give a name relative to the zoneinfo directory" }
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        if parts.contains("..") { return "it contains a \"..\" component" }
        if parts.contains("") { return "it contains an empty path component" }
        for c in name.utf8 {
            let ok = (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
                || c == UInt8(ascii: "_") || c == UInt8(ascii: "+") || c == UInt8(ascii: "-") || c == UInt8(ascii: "/")
            if !ok { return "it contains a character other than letters, digits, '_', '+', '-' and '/'" }
        }
        return nil
    }
}

/// A zone that could not be loaded, with the zone's name and what is wrong.
public enum TimeZoneError: Error, Equatable, CustomStringConvertible {
    case invalidName(String, reason: String)
    case notFound(name: String, path: String)
    case unreadable(name: String, path: String, reason: String)
    case malformedTZif(name: String, problem: String)
    case malformedPosixTZ(name: String, string: String, problem: String)

    public var description: String {
        switch self {
        case .invalidName(let name, let reason):
            return "time zone \"\(name)\" is not a valid zone name: \(reason) (expected a name like \"Europe/Paris\")"
        case .notFound(let name, let path):
            return "time zone \"\(name)\" is unknown: \(path) does not exist "
                + "(names are like \"America/New_York\"; see the tz database list)"
        case .unreadable(let name, _, let reason):
            return "time zone \"\(name)\" cannot be read: \(reason)"
        case .malformedTZif(let name, let problem):
            return "time zone \"\(name)\" is not a valid TZif file: \(problem)"
        case .malformedPosixTZ(let name, let string, let problem):
            return "time zone \"\(name)\": invalid POSIX TZ string \"\(string)\": \(problem)"
        }
    }
}

// MARK: - TZif

extension TimeZoneRules {
    /// Parses a TZif file (RFC 8536): versions 1 to 4, using the 64-bit data block and the footer
    /// when the file has them. Every read is bounds-checked, so a truncated or corrupt file gives
    /// an error naming what is wrong rather than a crash.
    public init(tzif bytes: [UInt8], name: String) throws(TimeZoneError) {
        do throws(TZifProblem) {
            var r = TZifReader(bytes: bytes)
            let first = try r.header()
            if first.version == 1 {
                let block = try r.dataBlock(first, timeSize: 4)
                self.init(name: name, transitions: block.transitions, transitionTypes: block.transitionTypes,
                          types: block.types, footer: nil)
                return
            }
            try r.skip(first.blockSize(timeSize: 4), "the version 1 data block")
            let second = try r.header()
            let block = try r.dataBlock(second, timeSize: 8)
            let footer = try r.footer()
            self.init(name: name, transitions: block.transitions, transitionTypes: block.transitionTypes,
                      types: block.types, footer: footer)
        } catch {
            throw .malformedTZif(name: name, problem: error.problem)
        }
    }
}

/// What is wrong with a TZif file.
struct TZifProblem: Error {
    let problem: String
}

/// A bounds-checked reader over the bytes of a TZif file.
private struct TZifReader {
    struct Header {
        var version: Int
        var isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt: Int

        func blockSize(timeSize: Int) -> Int {
            timecnt * timeSize + timecnt + typecnt * 6 + charcnt + leapcnt * (timeSize + 4) + isstdcnt + isutcnt
        }
    }

    struct Block {
        var transitions: [Int64]
        var transitionTypes: [UInt8]
        var types: [LocalTimeType]
    }

    /// Offsets beyond ±25:59:59 are not local times (RFC 8536 section 3.2).
    static let maxOffset = 93_599

    let bytes: [UInt8]
    var index = 0

    mutating func take(_ count: Int, _ what: String) throws(TZifProblem) -> ArraySlice<UInt8> {
        guard count <= bytes.count - index else {
            throw TZifProblem(problem: "truncated: the file ends inside \(what) "
                + "(\(count) bytes needed at offset \(index), \(bytes.count - index) left)")
        }
        defer { index += count }
        return bytes[index..<(index + count)]
    }

    mutating func skip(_ count: Int, _ what: String) throws(TZifProblem) { _ = try take(count, what) }

    static func bigEndian(_ s: ArraySlice<UInt8>) -> UInt64 { s.reduce(0) { $0 << 8 | UInt64($1) } }

    mutating func header() throws(TZifProblem) -> Header {
        let h = try take(44, "the header")
        guard h.prefix(4).elementsEqual("TZif".utf8) else {
            throw TZifProblem(problem: "the \(index == 44 ? "file" : "second header") does not start with \"TZif\"")
        }
        let v = h[h.startIndex + 4]
        let version: Int
        switch v {
        case 0: version = 1
        case UInt8(ascii: "2")...UInt8(ascii: "9"): version = Int(v - UInt8(ascii: "0"))
        default: throw TZifProblem(problem: "unknown version byte \(v)")
        }
        var counts: [Int] = []
        for i in 0..<6 {
            let start = h.startIndex + 20 + 4 * i
            counts.append(Int(Self.bigEndian(h[start..<(start + 4)])))
        }
        let header = Header(version: version, isutcnt: counts[0], isstdcnt: counts[1], leapcnt: counts[2],
                            timecnt: counts[3], typecnt: counts[4], charcnt: counts[5])
        guard (1...256).contains(header.typecnt) else {
            throw TZifProblem(problem: "\(header.typecnt) local time types (1 to 256 are possible)")
        }
        guard header.charcnt >= 1 else { throw TZifProblem(problem: "no abbreviation characters") }
        guard header.isutcnt == 0 || header.isutcnt == header.typecnt,
              header.isstdcnt == 0 || header.isstdcnt == header.typecnt else {
            throw TZifProblem(problem: "the UT/standard indicator counts do not match the \(header.typecnt) local time types")
        }
        guard header.leapcnt == 0 else {
            throw TZifProblem(problem: "it has leap-second records (a \"right/\" zone, whose clock counts leap seconds); "
                + "use the zone without \"right/\"")
        }
        return header
    }

    mutating func dataBlock(_ h: Header, timeSize: Int) throws(TZifProblem) -> Block {
        // One check up front so that absurd counts fail before anything is allocated.
        guard h.blockSize(timeSize: timeSize) <= bytes.count - index else {
            throw TZifProblem(problem: "truncated: the header announces \(h.timecnt) transitions and \(h.typecnt) types, "
                + "more than the \(bytes.count - index) bytes left")
        }
        let times = try take(h.timecnt * timeSize, "the transition times")
        var transitions: [Int64] = []
        transitions.reserveCapacity(h.timecnt)
        var at = times.startIndex
        while at < times.endIndex {
            let raw = Self.bigEndian(times[at..<(at + timeSize)])
            let t = timeSize == 8 ? Int64(bitPattern: raw) : Int64(Int32(bitPattern: UInt32(raw)))
            if let previous = transitions.last, t <= previous {
                throw TZifProblem(problem: "transition \(transitions.count) (\(t)) is not after the previous one (\(previous))")
            }
            transitions.append(t)
            at += timeSize
        }
        let indices = Array(try take(h.timecnt, "the transition types"))
        if let bad = indices.firstIndex(where: { Int($0) >= h.typecnt }) {
            throw TZifProblem(problem: "transition \(bad) refers to local time type \(indices[bad]), but there are \(h.typecnt)")
        }
        let records = try take(h.typecnt * 6, "the local time types")
        let chars = Array(try take(h.charcnt, "the abbreviations"))
        var types: [LocalTimeType] = []
        for i in 0..<h.typecnt {
            let r = records.startIndex + 6 * i
            let utoff = Int(Int32(bitPattern: UInt32(Self.bigEndian(records[r..<(r + 4)]))))
            let isDST = records[r + 4], abbrIndex = Int(records[r + 5])
            guard abs(utoff) <= Self.maxOffset else {
                throw TZifProblem(problem: "local time type \(i) has UTC offset \(utoff) s, beyond ±25:59:59")
            }
            guard isDST <= 1 else { throw TZifProblem(problem: "local time type \(i) has DST flag \(isDST), not 0 or 1") }
            guard abbrIndex < chars.count, let end = chars[abbrIndex...].firstIndex(of: 0) else {
                throw TZifProblem(problem: "local time type \(i) has an abbreviation index \(abbrIndex) with no terminated string there")
            }
            types.append(LocalTimeType(utoff: utoff, isDST: isDST == 1,
                                       abbreviation: String(decoding: chars[abbrIndex..<end], as: UTF8.self)))
        }
        try skip(h.isstdcnt + h.isutcnt, "the standard/wall and UT/local indicators")
        return Block(transitions: transitions, transitionTypes: indices, types: types)
    }

    /// The footer of a version 2+ file: a TZ string between two newlines, possibly empty.
    mutating func footer() throws(TZifProblem) -> PosixTZRule? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\n") else {
            throw TZifProblem(problem: "truncated or corrupt: the footer does not start with a newline at offset \(index)")
        }
        let start = index + 1
        guard let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else {
            throw TZifProblem(problem: "truncated: the footer TZ string has no closing newline")
        }
        index = end + 1
        if end == start { return nil }
        let text = String(decoding: bytes[start..<end], as: UTF8.self)
        do { return try PosixTZRule(parsing: text) } catch {
            throw TZifProblem(problem: "footer TZ string \"\(text)\": \(error.problem)")
        }
    }
}
