/// Big-endian reading and writing on byte arrays: every multi-byte field on our wire is
/// big-endian (network order).
extension Array where Element == UInt8 {
    mutating func appendBE<T: FixedWidthInteger>(_ v: T) {
        var be = v.bigEndian
        Swift.withUnsafeBytes(of: &be) { append(contentsOf: $0) }
    }

    func readBE16(at i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    func readBE32(at i: Int) -> UInt32 { UInt32(readBE16(at: i)) << 16 | UInt32(readBE16(at: i + 2)) }
    func readBE64(at i: Int) -> UInt64 { UInt64(readBE32(at: i)) << 32 | UInt64(readBE32(at: i + 4)) }
}

extension UnsafeRawBufferPointer {
    func readBE32(at i: Int) -> UInt32 {
        (0..<4).reduce(UInt32(0)) { $0 << 8 | UInt32(self[i + $1]) }
    }
    func readBE64(at i: Int) -> UInt64 {
        (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(self[i + $1]) }
    }
}

/// A cursor over bytes from outside: every read is bounds-checked and fails instead of trapping.
struct ByteReader {
    let bytes: [UInt8]
    private(set) var offset = 0
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func take(_ n: Int) -> [UInt8]? {
        guard n >= 0, remaining >= n else { return nil }
        defer { offset += n }
        return Array(bytes[offset..<offset + n])
    }
    mutating func u8() -> UInt8? { take(1)?[0] }
    mutating func u16() -> UInt16? { take(2).map { $0.readBE16(at: 0) } }
    mutating func u32() -> UInt32? { take(4).map { $0.readBE32(at: 0) } }
    mutating func u64() -> UInt64? { take(8).map { $0.readBE64(at: 0) } }
    mutating func rest() -> [UInt8] { take(remaining) ?? [] }
}

/// Lowercase hex, for keys in text files and logs of public values.
public func hexString(_ bytes: some Collection<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
    return String(decoding: out, as: UTF8.self)
}

/// Parses hex (either case); nil if it is not an even number of hex digits.
public func bytesFromHex(_ text: some StringProtocol) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
    var out = [UInt8]()
    out.reserveCapacity(chars.count / 2)
    var i = 0
    while i < chars.count {
        guard let h = nibble(chars[i]), let l = nibble(chars[i + 1]) else { return nil }
        out.append(h << 4 | l)
        i += 2
    }
    return out
}
