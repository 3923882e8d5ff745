import ClawReactor

/// One entry of the daemon's shared folder, as `fs-list` and `fs-stat` describe it
/// (PROTOCOL.md 10.6).
public struct RemoteEntry: Equatable, Sendable {
    public enum Kind: String, Sendable {
        case file, dir, link, other
    }

    /// The entry's name in its directory; for `stat`, the path that was asked about.
    public var name: String
    public var kind: Kind
    public var size: Int64
    /// Permission bits (the protocol writes them in octal).
    public var mode: UInt32
    /// Modification time, UNIX seconds.
    public var mtime: Int64

    public init(name: String, kind: Kind, size: Int64, mode: UInt32, mtime: Int64) {
        self.name = name
        self.kind = kind
        self.size = size
        self.mode = mode
        self.mtime = mtime
    }

    public var isDirectory: Bool { kind == .dir }

    /// The entries of one `fs-list` page: `{"entries":[{"name","type","size","mode","mtime"}]}`.
    /// A type this client does not know reads as `other`; a missing name or a wrong shape is an
    /// error, so a garbled page is never shown as a short listing.
    public static func decodePage(_ body: [UInt8]) throws(FileClientError) -> [RemoteEntry] {
        let root: JSONValue
        do { root = try JSONValue.parse(body, limits: listingLimits) } catch { throw .malformed("listing page: \(error)") }
        guard case .array(let items)? = root["entries"] else { throw .malformed("listing page without \"entries\"") }
        var out: [RemoteEntry] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            guard case .string(let name)? = item["name"], !name.isEmpty else {
                throw .malformed("listing entry \(i) has no name")
            }
            guard let size = integer(item["size"]), let mtime = integer(item["mtime"]) else {
                throw .malformed("listing entry \"\(name)\" has no size or mtime")
            }
            var kind = Kind.other
            if case .string(let t)? = item["type"] { kind = Kind(rawValue: t) ?? .other }
            var mode: UInt32 = 0
            switch item["mode"] {
            case .string(let s)?: mode = UInt32(s, radix: 8) ?? 0
            case .number(let d)?: mode = UInt32(String(Int(exactly: d) ?? 0), radix: 8) ?? 0
            default: break
            }
            out.append(RemoteEntry(name: name, kind: kind, size: size, mode: mode, mtime: mtime))
        }
        return out
    }

    /// The reply of `fs-stat`: params `type`, `size`, `mode`, `mtime`.
    public static func fromStat(path: String, params: [String: String]) throws(FileClientError) -> RemoteEntry {
        guard let t = params["type"], let size = Int64(params["size"] ?? ""), let mtime = Int64(params["mtime"] ?? "") else {
            throw .malformed("stat reply without type, size or mtime")
        }
        return RemoteEntry(name: path, kind: Kind(rawValue: t) ?? .other, size: size,
                           mode: UInt32(params["mode"] ?? "", radix: 8) ?? 0, mtime: mtime)
    }

    /// A page is at most one message body; names are at most 255 bytes.
    static let listingLimits: JSONLimits = {
        var l = JSONLimits()
        l.maxDepth = 8
        l.maxBytes = 1 << 20
        l.maxStringBytes = 4096
        return l
    }()

    private static func integer(_ v: JSONValue?) -> Int64? {
        guard case .number(let d)? = v else { return nil }
        return Int64(exactly: d)
    }

    /// `rwxr-xr-x` style permission bits.
    public var modeString: String {
        let letters: [Character] = ["r", "w", "x"]
        return String((0..<9).map { i in mode & (0o400 >> UInt32(i)) != 0 ? letters[i % 3] : "-" })
    }
}
