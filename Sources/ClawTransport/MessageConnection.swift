import ClawReactor

/// What a message connection tells the application.
public enum MessageEvent: Equatable {
    /// A whole message arrived on a stream.
    case message(stream: UInt64, Message)
    /// The peer finished its half of the stream (after its last message).
    case streamEnded(stream: UInt64)
    /// The peer abandoned the stream (a cancelled request), or the stream carried bytes that are
    /// not messages (then we reset it ourselves and say why).
    case streamReset(stream: UInt64, reason: String)
    /// Everything queued on the stream went to the transport; the writer may produce more.
    case streamWritable(stream: UInt64)
    /// The connection ended; every open stream ended with it.
    case closed(reason: String)
}

/// One end of a transport connection with the message layer on top. Pure: it takes channel
/// payloads and time, and returns channel payloads and events.
///
/// Each channel payload starts with a 5-byte header (PROTOCOL.md section 10.1): the connection's
/// 32-bit id, which the client picks at random, and a flags byte. The client sets `open` until it
/// has heard from the server, so that a server which restarted (and lost the connection) can tell
/// a new connection from the remains of an old one, and answers the latter with `unknown`.
public final class MessageConnection {
    public static let headerSize = 5
    public static let flagOpen: UInt8 = 0x01
    public static let flagUnknown: UInt8 = 0x02
    /// A diagnostic echo: the server sends the payload back unchanged, outside any connection
    /// (`clawchat-bench echo` measures the channel and the reactor with it).
    public static let flagEcho: UInt8 = 0x80
    /// A transport packet plus the header fits the channel's application payload.
    public static let maxPayload = 1167

    public let connectionID: UInt32
    public let transport: TransportConnection
    public var isClient: Bool { transport.isClient }
    public var isClosed: Bool { transport.isClosed }
    private var heardFromPeer: Bool
    private var decoders: [UInt64: MessageDecoder] = [:]
    private var outgoing: [UInt64: Outgoing] = [:]
    private var nextMessageID: UInt64 = 1
    private var events: [MessageEvent] = []

    struct Outgoing {
        var chunks: [[UInt8]] = []
        var offset = 0
        var bytes = 0
        var fin = false
    }

    public init(isClient: Bool, connectionID: UInt32, config: TransportConfig = .forChannel, now: Instant) {
        self.connectionID = connectionID
        transport = TransportConnection(isClient: isClient, config: config, now: now)
        heardFromPeer = !isClient
    }

    /// The connection id and flags of a channel payload, or nil if it is too short.
    public static func header(of payload: [UInt8]) -> (id: UInt32, flags: UInt8)? {
        guard payload.count >= headerSize else { return nil }
        let id = payload[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (id, payload[4])
    }

    /// What the server answers to a packet of a connection it does not know and that is not
    /// opening: the client then knows its requests in flight are gone.
    public static func unknownConnectionReply(_ id: UInt32) -> [UInt8] {
        var p: [UInt8] = []
        appendHeader(id, flags: flagUnknown, to: &p)
        return p
    }

    /// Whether a payload of ours carries only acknowledgements (nothing the peer will answer):
    /// the client's channel must not wait for a reply to it.
    public static func isAckOnly(_ payload: [UInt8]) -> Bool {
        guard payload.count > headerSize + 8, payload.count < 600 else { return false }
        var r = FrameReader(payload, offset: headerSize + 8)
        while !r.atEnd {
            guard let f = Frame.decode(&r, maxAckRanges: 1 << 10), !f.isAckEliciting else { return false }
        }
        return true
    }

    /// A payload for the diagnostic echo: the header with `flagEcho`, then `data`.
    public static func echoProbe(_ data: [UInt8]) -> [UInt8] {
        var p: [UInt8] = []
        p.reserveCapacity(data.count + headerSize)
        appendHeader(0, flags: flagEcho, to: &p)
        return p + data
    }

    private static func appendHeader(_ id: UInt32, flags: UInt8, to p: inout [UInt8]) {
        for s in [24, 16, 8, 0] { p.append(UInt8(truncatingIfNeeded: id >> UInt32(s))) }
        p.append(flags)
    }

    // MARK: Input

    /// Takes a channel payload addressed to this connection (the caller matched the id).
    public func receive(_ payload: [UInt8], now: Instant) {
        guard let (id, flags) = Self.header(of: payload), id == connectionID, !isClosed else { return }
        if flags & Self.flagUnknown != 0 {
            if isClient { transport.close(reason: "the server has no record of this connection (did it restart?)") }
            drainTransportEvents()
            return
        }
        heardFromPeer = true
        transport.receive(Array(payload[Self.headerSize...]), now: now)
        drainTransportEvents()
    }

    public func tick(now: Instant) {
        transport.tick(now: now)
        drainTransportEvents()
    }

    public var nextWakeup: Instant? { transport.nextWakeup }

    /// Channel payloads to send now.
    public func poll(now: Instant) -> [[UInt8]] {
        flushOutgoing()
        let packets = transport.poll(now: now)
        drainTransportEvents()
        guard !packets.isEmpty else { return [] }
        let flags = heardFromPeer ? 0 : Self.flagOpen
        return packets.map { body in
            var p: [UInt8] = []
            p.reserveCapacity(body.count + Self.headerSize)
            Self.appendHeader(connectionID, flags: flags, to: &p)
            p += body
            return p
        }
    }

    public func takeEvents() -> [MessageEvent] {
        defer { events = [] }
        return events
    }

    // MARK: Application interface

    /// Opens a stream with a request on it; returns the stream and the request id. With
    /// `finish`, the request is all the client sends on the stream.
    @discardableResult
    public func request(_ method: String, params: [String: String] = [:], body: [UInt8] = [],
                        finish: Bool = true) -> (stream: UInt64, id: UInt64) {
        let id = nextMessageID
        nextMessageID += 1
        let stream = transport.openStream()
        send(Message(.request, id: id, method: method, params: params, body: body), on: stream, finish: finish)
        return (stream, id)
    }

    /// Opens a stream of the server's own with one push message on it.
    @discardableResult
    public func push(_ method: String, params: [String: String] = [:], body: [UInt8] = []) -> UInt64 {
        let id = nextMessageID
        nextMessageID += 1
        let stream = transport.openStream()
        send(Message(.push, id: id, method: method, params: params, body: body), on: stream, finish: true)
        return stream
    }

    /// Queues a message on a stream; `finish` ends our half after it. Messages queue without
    /// limit here: bulk writers watch `queuedBytes` and `streamWritable`.
    public func send(_ message: Message, on stream: UInt64, finish: Bool = false) {
        precondition(message.body.count <= Message.maxBody, "split bodies over \(Message.maxBody) bytes into data messages")
        enqueue(message.encoded(), on: stream, fin: finish)
    }

    /// Ends our half of a stream once everything queued is sent.
    public func finish(_ stream: UInt64) { enqueue([], on: stream, fin: true) }

    /// Abandons a stream both ways (the user cancelled, or the handler gave up).
    public func cancel(_ stream: UInt64) {
        outgoing[stream] = nil
        decoders[stream] = nil
        transport.reset(stream)
    }

    /// Bytes queued on a stream and not yet acknowledged by the peer.
    public func queuedBytes(_ stream: UInt64) -> Int {
        (outgoing[stream]?.bytes ?? 0) + transport.bufferedBytes(stream)
    }

    /// Bytes queued above the transport on every stream (what its send buffers did not take).
    public var queuedBytesTotal: Int { outgoing.values.reduce(0) { $0 + $1.bytes } }

    public func close(reason: String) {
        transport.close(reason: reason)
        drainTransportEvents()
    }

    private func enqueue(_ bytes: [UInt8], on stream: UInt64, fin: Bool) {
        guard !isClosed else { return }
        var q = outgoing[stream] ?? Outgoing()
        if q.chunks.isEmpty && !q.fin {
            // The common case: the transport takes it all at once.
            let n = transport.write(bytes, to: stream, fin: fin)
            if n == bytes.count { return }
            q.chunks.append(n == 0 ? bytes : Array(bytes[n...]))
            q.bytes += bytes.count - n
            q.fin = fin
        } else {
            if !bytes.isEmpty { q.chunks.append(bytes); q.bytes += bytes.count }
            q.fin = q.fin || fin
        }
        outgoing[stream] = q
    }

    private func flushOutgoing() {
        guard !outgoing.isEmpty else { return }
        for (stream, var q) in outgoing {
            while let first = q.chunks.first {
                let rest = first.count - q.offset
                let n = transport.write(q.offset == 0 ? first : Array(first[q.offset...]), to: stream,
                                        fin: q.fin && q.chunks.count == 1)
                q.bytes -= n
                if n < rest { q.offset += n; break }
                q.chunks.removeFirst()
                q.offset = 0
            }
            if q.chunks.isEmpty {
                if q.fin { transport.write([], to: stream, fin: true) }
                outgoing[stream] = nil
                events.append(.streamWritable(stream: stream))
            } else {
                outgoing[stream] = q
            }
        }
    }

    private func drainTransportEvents() {
        for e in transport.takeEvents() {
            switch e {
            case .streamOpened:
                break
            case .streamData(let id, let bytes):
                var d = decoders[id] ?? MessageDecoder()
                do {
                    for m in try d.feed(bytes) { events.append(.message(stream: id, m)) }
                    decoders[id] = d
                } catch {
                    cancel(id)
                    events.append(.streamReset(stream: id, reason: error.description))
                }
            case .streamFinished(let id):
                let pending = decoders.removeValue(forKey: id)?.pendingBytes ?? 0
                if pending > 0 {
                    cancel(id)
                    events.append(.streamReset(stream: id, reason: "the stream ended inside a message"))
                } else {
                    events.append(.streamEnded(stream: id))
                }
            case .streamReset(let id, let code):
                decoders[id] = nil
                outgoing[id] = nil
                events.append(.streamReset(stream: id, reason: code == TransportErrorCode.cancelled.rawValue
                                           ? "cancelled by the peer" : "reset by the peer (code \(code))"))
            case .streamWritable(let id):
                if outgoing[id] == nil { events.append(.streamWritable(stream: id)) }
            case .closed(let reason):
                decoders = [:]
                outgoing = [:]
                events.append(.closed(reason: reason))
            }
        }
    }
}

extension TransportConfig {
    /// The transport inside a ClawChat channel: packets sized so that header, transport packet
    /// and the channel's own overhead fit a 1200-byte datagram.
    public static var forChannel: TransportConfig {
        var c = TransportConfig()
        c.maxPacketSize = MessageConnection.maxPayload - MessageConnection.headerSize
        return c
    }
}
