import ClawReactor
import ClawCrypto

/// One line of the conversation journal: compact JSON (keys sorted, so the encoding is
/// canonical) ending in "\n".
///
///     {"assistant":"…","sum":"…","time":1764590000,"type":"exchange","user":"…","v":1}
///     {"sum":"…","time":1764590000,"type":"clear","v":1}
///
/// `sum` is the first 8 bytes, in hex, of the SHA-256 of the record's canonical encoding without
/// `sum`. A torn write is caught by its missing "\n"; the checksum catches what a length cannot: a
/// flipped bit, a block of zeros after a crash on some file systems, a careless hand edit.
enum JournalRecord: Equatable {
    case exchange(Exchange)
    /// `/clear`: the history before it no longer goes to the model.
    case clear(time: Int64)

    /// The record format this code writes and the newest it reads.
    static let version = 1

    /// A line that cannot become a record, with the reason for the log.
    struct Problem: Error, Equatable {
        let reason: String
    }

    /// The whole line, "\n" included.
    var line: [UInt8] {
        var members: [String: JSONValue] = ["v": .number(Double(Self.version))]
        switch self {
        case .exchange(let e):
            members["type"] = "exchange"
            members["time"] = .number(Double(e.time))
            members["user"] = .string(e.user)
            members["assistant"] = .string(e.assistant)
        case .clear(let time):
            members["type"] = "clear"
            members["time"] = .number(Double(time))
        }
        members["sum"] = .string(Self.checksum(JSONValue.object(members)))
        var out = Array(JSONValue.object(members).encoded().utf8)
        out.append(0x0A)
        return out
    }

    /// Decodes one line without its "\n". The version is checked before the checksum, so a record
    /// from a newer program (which may sum differently) is reported as such, not as corruption.
    init(line: ArraySlice<UInt8>) throws(Problem) {
        var limits = JSONLimits()
        limits.maxBytes = ConversationJournal.maxRecordBytes
        limits.maxStringBytes = ConversationJournal.maxRecordBytes
        limits.maxDepth = 2
        let value: JSONValue
        do {
            value = try JSONValue.parse(line, limits: limits)
        } catch {
            throw Problem(reason: "not valid JSON (\(error))")
        }
        guard var members = value.objectValue else { throw Problem(reason: "not a JSON object") }
        guard let v = members["v"]?.intValue else { throw Problem(reason: "no record version \"v\"") }
        guard v <= Self.version else {
            throw Problem(reason: "record version \(v) is newer than this program reads (\(Self.version)); upgrade clawchatd")
        }
        guard v == Self.version else { throw Problem(reason: "unknown record version \(v)") }
        guard let sum = members.removeValue(forKey: "sum")?.stringValue else { throw Problem(reason: "no checksum \"sum\"") }
        guard sum == Self.checksum(.object(members)) else {
            throw Problem(reason: "checksum mismatch: the line was corrupted or edited")
        }
        guard let time = members["time"]?.intValue else { throw Problem(reason: "no integral \"time\"") }
        switch members["type"]?.stringValue {
        case "exchange":
            guard let user = members["user"]?.stringValue, let assistant = members["assistant"]?.stringValue else {
                throw Problem(reason: "an exchange without \"user\" and \"assistant\" strings")
            }
            self = .exchange(Exchange(time: Int64(time), user: user, assistant: assistant))
        case "clear":
            self = .clear(time: Int64(time))
        case let other:
            throw Problem(reason: "unknown record type \(other.map { "\"\($0)\"" } ?? "(none)")")
        }
    }

    private static func checksum(_ record: JSONValue) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var hex: [UInt8] = []
        for byte in SHA256.hash(Array(record.encoded().utf8)).prefix(8) {
            hex.append(digits[Int(byte >> 4)])
            hex.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: hex, as: UTF8.self)
    }
}
