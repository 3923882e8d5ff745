/// The application message layer (PROTOCOL.md section 10): what requests, replies and pushes look
/// like on a stream. Pure: encoding to bytes, and a per-stream decoder that takes bytes as the
/// transport delivers them and returns whole messages.
public struct Message: Equatable, Sendable {
    /// The only version this build speaks. A peer that sends another gets an error naming it.
    public static let version: UInt8 = 1
    /// Largest encoded message. Bigger payloads (files, long replies) go as several `data` or
    /// `partial` messages on the same stream.
    public static let maxEncodedSize = (1 << 20) + 4096
    /// Largest body of a single message.
    public static let maxBody = 1 << 20
    static let maxParams = 64

    public enum Kind: UInt8, Sendable {
        /// Opens a request on a new stream; `method` names what is asked.
        case request = 1
        /// A piece of the answer (a streamed LLM delta, a page of a listing). More follow.
        case partial = 2
        /// The final, successful answer; the stream ends after it.
        case reply = 3
        /// The final, failed answer: `params["code"]` and a human-readable body; the stream ends.
        case error = 4
        /// Something the server sends unasked (a cron result), on a stream of its own.
        case push = 5
        /// A chunk of a request's or reply's byte payload (an upload, a download).
        case data = 6
    }

    public var kind: Kind
    /// The request this message belongs to (the request's own id; pushes carry their own).
    public var id: UInt64
    /// What is asked (`request`) or announced (`push`); empty otherwise.
    public var method: String
    public var params: [String: String]
    public var body: [UInt8]

    public init(_ kind: Kind, id: UInt64, method: String = "", params: [String: String] = [:], body: [UInt8] = []) {
        self.kind = kind
        self.id = id
        self.method = method
        self.params = params
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// `varint length` then the message: version, kind, id, method, params (sorted by key, so the
    /// encoding is canonical), body.
    public func encoded() -> [UInt8] {
        var m: [UInt8] = []
        m.reserveCapacity(body.count + method.utf8.count + 32)
        m.append(Self.version)
        m.append(kind.rawValue)
        Varint.append(id & Varint.max, to: &m)
        Self.appendBytes(Array(method.utf8), to: &m)
        Varint.append(UInt64(params.count), to: &m)
        for (k, v) in params.sorted(by: { $0.key < $1.key }) {
            Self.appendBytes(Array(k.utf8), to: &m)
            Self.appendBytes(Array(v.utf8), to: &m)
        }
        Self.appendBytes(body, to: &m)
        var out: [UInt8] = []
        out.reserveCapacity(m.count + 4)
        Varint.append(UInt64(m.count), to: &out)
        out += m
        return out
    }

    private static func appendBytes(_ b: [UInt8], to out: inout [UInt8]) {
        Varint.append(UInt64(b.count), to: &out)
        out += b
    }

    /// Parses one message without its length prefix.
    static func decode(_ bytes: [UInt8]) throws(MessageError) -> Message {
        var r = FrameReader(bytes)
        guard let version = r.byte() else { throw .malformed("empty message") }
        guard version == Self.version else { throw .unsupportedVersion(version) }
        guard let k = r.byte() else { throw .malformed("no kind") }
        guard let kind = Kind(rawValue: k) else { throw .malformed("unknown kind \(k)") }
        guard let id = r.varint() else { throw .malformed("no id") }
        let method = try string(&r, "method")
        guard let count = r.varint(), count <= maxParams else { throw .malformed("bad parameter count") }
        var params: [String: String] = [:]
        for _ in 0..<count {
            let k = try string(&r, "parameter name")
            params[k] = try string(&r, "parameter value")
        }
        guard let n = r.varint(), let body = r.take(n) else { throw .malformed("truncated body") }
        guard r.atEnd else { throw .malformed("bytes after the body") }
        return Message(kind, id: id, method: method, params: params, body: Array(body))
    }

    private static func string(_ r: inout FrameReader, _ what: String) throws(MessageError) -> String {
        guard let n = r.varint(), let b = r.take(n) else { throw .malformed("truncated \(what)") }
        guard let s = String(validating: b, as: UTF8.self) else { throw .malformed("\(what) is not UTF-8") }
        return s
    }
}

public enum MessageError: Error, Equatable, CustomStringConvertible {
    case malformed(String)
    case unsupportedVersion(UInt8)
    case tooLarge(UInt64)

    public var description: String {
        switch self {
        case .malformed(let why): return "malformed message: \(why)"
        case .unsupportedVersion(let v): return "unsupported message version \(v) (this build speaks \(Message.version))"
        case .tooLarge(let n): return "message of \(n) bytes exceeds the limit of \(Message.maxEncodedSize)"
        }
    }
}

/// Reassembles messages from one stream's bytes. Memory is bounded by one message.
public struct MessageDecoder {
    private var buffer: [UInt8] = []
    private var consumed = 0

    public init() {}

    /// Bytes not yet part of a whole message (a stream that ends with some is truncated).
    public var pendingBytes: Int { buffer.count - consumed }

    /// Adds bytes and returns every message they complete. After an error the stream is unusable.
    public mutating func feed(_ bytes: [UInt8]) throws(MessageError) -> [Message] {
        if consumed == buffer.count { buffer.removeAll(keepingCapacity: true); consumed = 0 }
        buffer += bytes
        var out: [Message] = []
        while true {
            var r = FrameReader(buffer, offset: consumed)
            guard let length = r.varint() else { break }
            guard length <= UInt64(Message.maxEncodedSize) else { throw .tooLarge(length) }
            guard let body = r.take(length) else { break }
            out.append(try Message.decode(Array(body)))
            consumed = r.offset
        }
        if consumed > 1 << 16 && consumed * 2 > buffer.count {
            buffer.removeFirst(consumed)
            consumed = 0
        }
        return out
    }
}
