/// QUIC variable-length integers (RFC 9000 section 16): the two high bits of the first byte give
/// the length (1, 2, 4 or 8 bytes); values up to 2^62 − 1.
enum Varint {
    static let max: UInt64 = (1 << 62) - 1

    static func append(_ v: UInt64, to out: inout [UInt8]) {
        precondition(v <= max, "varint out of range")
        switch v {
        case 0..<(1 << 6): out.append(UInt8(v))
        case 0..<(1 << 14): out.append(UInt8(0x40 | v >> 8)); out.append(UInt8(truncatingIfNeeded: v))
        case 0..<(1 << 30):
            out.append(UInt8(0x80 | v >> 24))
            for s in stride(from: 16, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
        default:
            out.append(UInt8(0xC0 | v >> 56))
            for s in stride(from: 48, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) }
        }
    }

    static func size(_ v: UInt64) -> Int {
        v < 1 << 6 ? 1 : v < 1 << 14 ? 2 : v < 1 << 30 ? 4 : 8
    }
}

/// A bounds-checked reader over a received packet: every read returns nil instead of trapping.
struct FrameReader {
    let bytes: [UInt8]
    var offset = 0
    init(_ bytes: [UInt8], offset: Int = 0) { self.bytes = bytes; self.offset = offset }

    var atEnd: Bool { offset >= bytes.count }
    var remaining: Int { bytes.count - offset }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func varint() -> UInt64? {
        guard let first = byte() else { return nil }
        let extra = (1 << Int(first >> 6)) - 1
        guard remaining >= extra else { return nil }
        var v = UInt64(first & 0x3F)
        for _ in 0..<extra { v = v << 8 | UInt64(bytes[offset]); offset += 1 }
        return v
    }

    mutating func u64() -> UInt64? {
        guard remaining >= 8 else { return nil }
        var v: UInt64 = 0
        for _ in 0..<8 { v = v << 8 | UInt64(bytes[offset]); offset += 1 }
        return v
    }

    mutating func take(_ n: UInt64) -> ArraySlice<UInt8>? {
        guard n <= UInt64(remaining) else { return nil }
        defer { offset += Int(n) }
        return bytes[offset..<offset + Int(n)]
    }
}
