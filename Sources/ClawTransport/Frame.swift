/// Frames carried in transport packets (a subset of QUIC's, RFC 9000 section 19, with the same
/// type numbers and encodings where they exist). See docs/PROTOCOL.md, "Transport".
enum Frame: Equatable {
    case ping
    /// Acknowledged packet numbers as ranges, highest first; `ackDelay` in microseconds.
    case ack(ranges: [ClosedRange<UInt64>], ackDelay: UInt64)
    case resetStream(id: UInt64, errorCode: UInt64, finalSize: UInt64)
    case stream(id: UInt64, offset: UInt64, data: ArraySlice<UInt8>, fin: Bool)
    case maxData(UInt64)
    case maxStreamData(id: UInt64, max: UInt64)
    case connectionClose(errorCode: UInt64, reason: String)

    static let typePing: UInt64 = 0x01
    static let typeAck: UInt64 = 0x02
    static let typeResetStream: UInt64 = 0x04
    static let typeStream: UInt64 = 0x08      // | 0x01 = FIN; offset and length always present
    static let typeMaxData: UInt64 = 0x10
    static let typeMaxStreamData: UInt64 = 0x11
    static let typeConnectionClose: UInt64 = 0x1c

    /// Frames that oblige the receiver to acknowledge the packet (all but ACK and CLOSE).
    var isAckEliciting: Bool {
        switch self {
        case .ack, .connectionClose: return false
        default: return true
        }
    }

    func encode(into out: inout [UInt8]) {
        switch self {
        case .ping:
            Varint.append(Self.typePing, to: &out)
        case .ack(let ranges, let delay):
            // QUIC layout: largest, delay, range count − 1, first range length, then (gap, length).
            Varint.append(Self.typeAck, to: &out)
            let first = ranges[0]
            Varint.append(first.upperBound, to: &out)
            Varint.append(delay, to: &out)
            Varint.append(UInt64(ranges.count - 1), to: &out)
            Varint.append(first.upperBound - first.lowerBound, to: &out)
            var previousLower = first.lowerBound
            for r in ranges.dropFirst() {
                Varint.append(previousLower - r.upperBound - 2, to: &out)
                Varint.append(r.upperBound - r.lowerBound, to: &out)
                previousLower = r.lowerBound
            }
        case .resetStream(let id, let code, let size):
            Varint.append(Self.typeResetStream, to: &out)
            Varint.append(id, to: &out); Varint.append(code, to: &out); Varint.append(size, to: &out)
        case .stream(let id, let offset, let data, let fin):
            Varint.append(Self.typeStream | (fin ? 1 : 0), to: &out)
            Varint.append(id, to: &out); Varint.append(offset, to: &out)
            Varint.append(UInt64(data.count), to: &out)
            out += data
        case .maxData(let m):
            Varint.append(Self.typeMaxData, to: &out); Varint.append(m, to: &out)
        case .maxStreamData(let id, let m):
            Varint.append(Self.typeMaxStreamData, to: &out); Varint.append(id, to: &out); Varint.append(m, to: &out)
        case .connectionClose(let code, let reason):
            let r = Array(reason.utf8.prefix(200))
            Varint.append(Self.typeConnectionClose, to: &out); Varint.append(code, to: &out)
            Varint.append(UInt64(r.count), to: &out); out += r
        }
    }

    /// Bytes the encoding of a STREAM frame adds to its data.
    static func streamOverhead(id: UInt64, offset: UInt64, length: Int) -> Int {
        1 + Varint.size(id) + Varint.size(offset) + Varint.size(UInt64(length))
    }

    /// Parses one frame; nil on any malformation (the caller closes the connection).
    static func decode(_ r: inout FrameReader, maxAckRanges: Int) -> Frame? {
        guard let type = r.varint() else { return nil }
        switch type {
        case typePing:
            return .ping
        case typeAck:
            guard let largest = r.varint(), let delay = r.varint(), let count = r.varint(),
                  count < UInt64(maxAckRanges), let firstLen = r.varint(), firstLen <= largest else { return nil }
            var ranges = [(largest - firstLen)...largest]
            var lower = largest - firstLen
            for _ in 0..<count {
                guard let gap = r.varint(), let len = r.varint(), gap + 2 <= lower else { return nil }
                let upper = lower - gap - 2
                guard len <= upper else { return nil }
                ranges.append((upper - len)...upper)
                lower = upper - len
            }
            return .ack(ranges: ranges, ackDelay: delay)
        case typeResetStream:
            guard let id = r.varint(), let code = r.varint(), let size = r.varint() else { return nil }
            return .resetStream(id: id, errorCode: code, finalSize: size)
        case typeStream, typeStream | 1:
            guard let id = r.varint(), let offset = r.varint(), let len = r.varint(),
                  offset <= Varint.max - len, let data = r.take(len) else { return nil }
            return .stream(id: id, offset: offset, data: data, fin: type & 1 == 1)
        case typeMaxData:
            guard let m = r.varint() else { return nil }
            return .maxData(m)
        case typeMaxStreamData:
            guard let id = r.varint(), let m = r.varint() else { return nil }
            return .maxStreamData(id: id, max: m)
        case typeConnectionClose:
            guard let code = r.varint(), let len = r.varint(), let reason = r.take(len) else { return nil }
            return .connectionClose(errorCode: code, reason: String(decoding: reason, as: UTF8.self))
        default:
            return nil
        }
    }
}

/// Error codes carried in CONNECTION_CLOSE and RESET_STREAM.
public enum TransportErrorCode: UInt64, Sendable {
    case noError = 0x0
    case internalError = 0x1
    case flowControlError = 0x3
    case streamLimitError = 0x4
    case streamStateError = 0x5
    case finalSizeError = 0x6
    case frameEncodingError = 0x7
    case protocolViolation = 0xa
    /// The application cancelled the stream (e.g. the user pressed Ctrl-C).
    case cancelled = 0x100
}
