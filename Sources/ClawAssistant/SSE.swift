/// One server-sent event (WHATWG HTML, "server-sent events", the event stream interpretation).
public struct SSEEvent: Equatable, Sendable {
    /// The `event:` field, or "message" when there was none.
    public var type: String
    /// The `data:` lines joined with "\n".
    public var data: String
    /// The last event id seen so far in the stream (`id:`), if any.
    public var id: String?

    public init(type: String = "message", data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

public enum SSEError: Error, Equatable, CustomStringConvertible {
    /// A line or an event grew past the limit: the stream is not SSE, or is hostile.
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .tooLarge(let limit): return "malformed event stream: an event exceeds \(limit) bytes"
        }
    }
}

/// A sans-I/O parser of `text/event-stream`: feed it body bytes as they arrive, in chunks of any
/// size, and it returns the complete events. Lines end with LF, CR or CRLF (a CR at the end of one
/// chunk and an LF at the start of the next are one line end). Comments (`:` lines) are counted
/// but produce no event, so a caller's idle timer can ignore them.
public struct SSEParser {
    public let maxEventBytes: Int
    private var line: [UInt8] = []
    private var lastWasCR = false
    private var atStart = true
    private var data: [UInt8] = []
    private var hasData = false
    private var type = ""
    public private(set) var lastEventID: String?
    /// The `retry:` reconnection time in milliseconds, if the server sent one.
    public private(set) var retry: Int?
    /// Comment lines seen (`: keep-alive` and the like).
    public private(set) var comments = 0

    public init(maxEventBytes: Int = 4 << 20) {
        self.maxEventBytes = maxEventBytes
    }

    /// True when bytes of an event have arrived but not its terminating blank line: a stream that
    /// ends now was cut in the middle of an event.
    public var hasPartialEvent: Bool { !line.isEmpty || hasData || !type.isEmpty }

    public mutating func feed(_ bytes: some Collection<UInt8>) throws(SSEError) -> [SSEEvent] {
        var events: [SSEEvent] = []
        for b in bytes {
            if b == 0x0A && lastWasCR { lastWasCR = false; continue }   // the LF of a CRLF
            lastWasCR = b == 0x0D
            if b == 0x0A || b == 0x0D {
                if let e = try endOfLine() { events.append(e) }
            } else {
                line.append(b)
                if line.count > maxEventBytes { throw .tooLarge(maxEventBytes) }
            }
        }
        return events
    }

    private mutating func endOfLine() throws(SSEError) -> SSEEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if atStart {
            atStart = false
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }   // a byte order mark
        }
        if line.isEmpty { return dispatch() }
        if line[0] == UInt8(ascii: ":") { comments += 1; return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let name = colon.map { Array(line[..<$0]) } ?? line
        var value = colon.map { Array(line[($0 + 1)...]) } ?? []
        if value.first == UInt8(ascii: " ") { value.removeFirst() }
        switch String(decoding: name, as: UTF8.self) {
        case "data":
            if hasData { data.append(0x0A) }
            data += value
            hasData = true
            if data.count > maxEventBytes { throw .tooLarge(maxEventBytes) }
        case "event":
            type = String(decoding: value, as: UTF8.self)
        case "id":
            if !value.contains(0) { lastEventID = String(decoding: value, as: UTF8.self) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), value.count < 10 {
                retry = Int(String(decoding: value, as: UTF8.self))
            }
        default:
            break   // unknown fields are ignored
        }
        return nil
    }

    private mutating func dispatch() -> SSEEvent? {
        defer {
            data.removeAll(keepingCapacity: true)
            hasData = false
            type = ""
        }
        guard hasData else { return nil }
        return SSEEvent(type: type.isEmpty ? "message" : type, data: String(decoding: data, as: UTF8.self), id: lastEventID)
    }
}
