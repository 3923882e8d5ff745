import ClawReactor

/// STUN (RFC 8489) binding requests and responses: just enough to learn our public address.
/// Pure: it builds and parses bytes; the daemon does the sending.
public enum STUN {
    public static let magicCookie: UInt32 = 0x2112_A442
    static let bindingRequest: UInt16 = 0x0001
    static let bindingSuccess: UInt16 = 0x0101
    static let attrMappedAddress: UInt16 = 0x0001
    static let attrXorMappedAddress: UInt16 = 0x0020
    /// Some servers send the pre-RFC 5389 code point.
    static let attrXorMappedAddressOld: UInt16 = 0x8020

    /// A binding request with the given 12-byte transaction id.
    public static func bindingRequest(transactionID: [UInt8]) -> [UInt8] {
        precondition(transactionID.count == 12, "STUN transaction ids have 12 bytes")
        var out: [UInt8] = []
        out.reserveCapacity(20)
        out.appendBE(bindingRequest)
        out.appendBE(UInt16(0))
        out.appendBE(magicCookie)
        out += transactionID
        return out
    }

    /// Why a datagram was not a usable answer to our request.
    public enum ParseError: Error, Equatable, Sendable {
        case notSTUN
        case wrongTransaction
        case notASuccessResponse
        case noMappedAddress
        case malformedAttribute
    }

    /// Parses a binding success response to the request with `transactionID`, returning the
    /// reflexive address (XOR-MAPPED-ADDRESS preferred, MAPPED-ADDRESS as a fallback).
    public static func parseBindingResponse(_ bytes: [UInt8], transactionID: [UInt8]) throws(ParseError) -> SocketAddress {
        guard bytes.count >= 20, bytes[0] & 0xC0 == 0,
              bytes.readBE32(at: 4) == magicCookie else { throw .notSTUN }
        let length = Int(bytes.readBE16(at: 2))
        guard length % 4 == 0, 20 + length <= bytes.count else { throw .notSTUN }
        guard Array(bytes[8..<20]) == transactionID else { throw .wrongTransaction }
        guard bytes.readBE16(at: 0) == bindingSuccess else { throw .notASuccessResponse }
        var offset = 20
        let end = 20 + length
        var mapped: SocketAddress?
        while offset + 4 <= end {
            let type = bytes.readBE16(at: offset)
            let len = Int(bytes.readBE16(at: offset + 2))
            let value = offset + 4
            guard value + len <= end else { throw .malformedAttribute }
            let attr = Array(bytes[value..<value + len])
            switch type {
            case attrXorMappedAddress, attrXorMappedAddressOld:
                let a = try decodeAddress(attr, xorWith: transactionID)
                // 0.0.0.0 or :: is not a place anyone can send to: not a usable answer.
                guard !a.isUnspecified, a.port != 0 else { throw .noMappedAddress }
                return a
            case attrMappedAddress:
                mapped = try decodeAddress(attr, xorWith: nil)
            default:
                break
            }
            offset = value + (len + 3) / 4 * 4
        }
        if let mapped, !mapped.isUnspecified, mapped.port != 0 { return mapped }
        throw .noMappedAddress
    }

    static func decodeAddress(_ v: [UInt8], xorWith transactionID: [UInt8]?) throws(ParseError) -> SocketAddress {
        guard v.count >= 4 else { throw .malformedAttribute }
        let family = v[1]
        var port = v.readBE16(at: 2)
        var key: [UInt8] = []
        if let transactionID {
            port ^= UInt16(magicCookie >> 16)
            key.appendBE(magicCookie)
            key += transactionID
        }
        switch family {
        case 0x01 where v.count == 8:
            let raw = (0..<4).map { i in v[4 + i] ^ (key.isEmpty ? 0 : key[i]) }
            return SocketAddress(ipv4: raw, port: port)
        case 0x02 where v.count == 20:
            let raw = (0..<16).map { i in v[4 + i] ^ (key.isEmpty ? 0 : key[i]) }
            return SocketAddress(ipv6: raw, port: port)
        default:
            throw .malformedAttribute
        }
    }

    /// Builds a success response (used by tests and by the loopback STUN responder).
    public static func bindingResponse(transactionID: [UInt8], mapped: SocketAddress) -> [UInt8] {
        var key: [UInt8] = []
        key.appendBE(magicCookie)
        key += transactionID
        let raw = mapped.addressBytes
        var value: [UInt8] = [0, mapped.family == .v4 ? 0x01 : 0x02]
        value.appendBE(mapped.port ^ UInt16(magicCookie >> 16))
        value += raw.enumerated().map { $1 ^ key[$0] }
        var out: [UInt8] = []
        out.appendBE(bindingSuccess)
        out.appendBE(UInt16(4 + value.count))
        out.appendBE(magicCookie)
        out += transactionID
        out.appendBE(attrXorMappedAddress)
        out.appendBE(UInt16(value.count))
        out += value
        return out
    }
}
