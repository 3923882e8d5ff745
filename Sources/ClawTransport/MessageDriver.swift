import ClawReactor

/// The reactor glue of one `MessageConnection`: feeds it payloads and time, hands what it
/// produces to `transmit` (the channel), and reports its events. One timer per connection, armed
/// for the connection's next deadline. Owned by the daemon (one per device) or the client.
public final class MessageDriver {
    public let connection: MessageConnection
    private unowned let loop: EventLoop
    private var timer: Timer!
    private let transmit: ([[UInt8]]) -> Void
    public var onEvent: (MessageEvent) -> Void = { _ in }
    private var servicing = false
    private var again = false

    public init(loop: EventLoop, connection: MessageConnection, transmit: @escaping ([[UInt8]]) -> Void) {
        self.loop = loop
        self.connection = connection
        self.transmit = transmit
        timer = Timer(loop: loop) { [unowned self] in self.flush() }
    }

    deinit { timer.cancel() }

    /// A channel payload for this connection.
    public func receive(_ payload: [UInt8]) {
        connection.receive(payload, now: loop.clock.now)
        flush()
    }

    /// Sends what can be sent, runs due timers, reports events, re-arms the timer. Safe to call
    /// from inside an event handler (the outer call loops once more).
    public func flush() {
        if servicing { again = true; return }
        servicing = true
        defer { servicing = false }
        var rounds = 0
        repeat {
            again = false
            let now = loop.clock.now
            if let t = connection.nextWakeup, t <= now { connection.tick(now: now) }
            let packets = connection.poll(now: now)
            if !packets.isEmpty { transmit(packets) }
            let events = connection.takeEvents()
            for e in events { onEvent(e) }
            if events.isEmpty && !again { break }
            rounds += 1
        } while rounds < 64
        if let t = connection.nextWakeup {
            timer.schedule(after: max(t - loop.clock.now, .microseconds(1)))
        } else {
            timer.cancel()
        }
    }

    /// Stops the timer for good (the connection is being dropped).
    public func shutdown() { timer.cancel() }
}

/// A request the server received, and the way to answer it. Handlers set the callbacks they
/// need; the stream ends with `reply` or `fail`.
public final class IncomingRequest {
    public let device: UInt64
    public let stream: UInt64
    public let message: Message
    private weak var driver: MessageDriver?
    /// `data` messages that follow the request (an upload).
    public var onData: (([UInt8]) -> Void)?
    /// The client finished its half (after its last data message).
    public var onEnd: (() -> Void)?
    /// The client cancelled, or the connection ended: stop working on it.
    public var onCancel: ((String) -> Void)?
    /// Everything queued was handed to the transport: a producer may write more.
    public var onWritable: (() -> Void)?
    public private(set) var isFinished = false

    public init(device: UInt64, stream: UInt64, message: Message, driver: MessageDriver) {
        self.device = device
        self.stream = stream
        self.message = message
        self.driver = driver
    }

    public var method: String { message.method }

    /// Bytes of the answer not yet acknowledged by the client.
    public var queuedBytes: Int { driver?.connection.queuedBytes(stream) ?? 0 }

    public func partial(_ body: [UInt8], params: [String: String] = [:]) {
        send(Message(.partial, id: message.id, params: params, body: body), finish: false)
    }

    public func data(_ bytes: [UInt8]) {
        send(Message(.data, id: message.id, body: bytes), finish: false)
    }

    public func reply(_ body: [UInt8] = [], params: [String: String] = [:]) {
        send(Message(.reply, id: message.id, params: params, body: body), finish: true)
    }

    public func fail(code: String, _ text: String) {
        send(Message(.error, id: message.id, params: ["code": code], body: Array(text.utf8)), finish: true)
    }

    /// Sends `m`, made to fit: a handler may echo what a peer sent (a path, a name), and no
    /// peer may make the daemon build a message over the limits. An oversized error is cut, an
    /// oversized reply becomes an error, an oversized partial or data body goes as several.
    private func send(_ m: Message, finish: Bool) {
        guard !isFinished, let driver else { return }
        var m = m
        let paramBytes = m.params.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count + 8 }
        if paramBytes > Self.maxParamBytes {
            m.params = m.params.mapValues { String(decoding: $0.utf8.prefix(200), as: UTF8.self) }
            if m.kind == .reply {
                m = Message(.error, id: m.id, params: ["code": "too-large"], body: Array("the answer's parameters are too large".utf8))
            }
        }
        if m.body.count > Message.maxBody {
            switch m.kind {
            case .error:
                m.body = Array(m.body.prefix(4096))
            case .reply:
                m = Message(.error, id: m.id, params: ["code": "too-large"],
                            body: Array("the answer is over \(Message.maxBody) bytes".utf8))
            default:
                var rest = m.body[...]
                while rest.count > Message.maxBody {
                    var piece = m
                    piece.body = Array(rest.prefix(Message.maxBody))
                    driver.connection.send(piece, on: stream, finish: false)
                    rest = rest.dropFirst(Message.maxBody)
                    m.params = [:]
                }
                m.body = Array(rest)
            }
        }
        if finish { isFinished = true }
        driver.connection.send(m, on: stream, finish: finish)
        driver.flush()
    }

    static let maxParamBytes = 3072

    /// Called by the owner when the stream is gone.
    public func cancelled(_ reason: String) {
        guard !isFinished else { return }
        isFinished = true
        onCancel?(reason)
    }
}

/// Why a request got no reply.
public enum RequestFailure: Error, Equatable, CustomStringConvertible {
    /// The server answered with an error.
    case server(code: String, message: String)
    /// The stream was reset (cancelled by either side) or carried garbage.
    case reset(String)
    /// The connection ended before the reply.
    case connection(String)

    public var description: String {
        switch self {
        case .server(let code, let message): return "\(message) (\(code))"
        case .reset(let why): return "request abandoned: \(why)"
        case .connection(let why): return "connection lost: \(why)"
        }
    }
}

/// A request the client sent, waiting for its answer.
public final class OutgoingRequest {
    public let stream: UInt64
    public let id: UInt64
    public let method: String
    private weak var driver: MessageDriver?
    public var onPartial: (Message) -> Void = { _ in }
    public var onData: ([UInt8]) -> Void = { _ in }
    public var onWritable: () -> Void = {}
    /// Called once: the final reply, or why there is none.
    public var onDone: (Result<Message, RequestFailure>) -> Void = { _ in }
    public private(set) var isDone = false

    init(stream: UInt64, id: UInt64, method: String, driver: MessageDriver) {
        self.stream = stream
        self.id = id
        self.method = method
        self.driver = driver
    }

    /// Bytes of the request's upload not yet acknowledged by the server.
    public var queuedBytes: Int { driver?.connection.queuedBytes(stream) ?? 0 }

    /// A chunk of the request's upload (at most `Message.maxBody` bytes).
    public func data(_ bytes: [UInt8]) {
        guard !isDone, let driver else { return }
        driver.connection.send(Message(.data, id: id, body: bytes), on: stream)
        driver.flush()
    }

    /// Ends the upload.
    public func finish() {
        guard !isDone, let driver else { return }
        driver.connection.finish(stream)
        driver.flush()
    }

    /// Abandons the request: the server is told at once and stops working on it.
    public func cancel() {
        guard !isDone else { return }
        if let driver {
            driver.connection.cancel(stream)
            driver.flush()
        }
        complete(.failure(.reset("cancelled")))
    }

    func complete(_ r: Result<Message, RequestFailure>) {
        guard !isDone else { return }
        isDone = true
        onDone(r)
    }
}

/// The client's side of the message layer: sends requests, routes answers to them, and pushes to
/// `onPush`. Holds one driver; when its connection ends, pending requests fail with the reason
/// and the next request opens a new connection (new random id).
public final class RequestClient {
    private unowned let loop: EventLoop
    private let transmit: ([[UInt8]]) -> Void
    private let config: TransportConfig
    public private(set) var driver: MessageDriver?
    private var retired: MessageDriver?
    private var pending: [UInt64: OutgoingRequest] = [:]
    public var onPush: (Message) -> Void = { _ in }
    /// The connection ended (the reason); the next request starts a new one.
    public var onClosed: (String) -> Void = { _ in }

    public init(loop: EventLoop, config: TransportConfig = .forChannel, transmit: @escaping ([[UInt8]]) -> Void) {
        self.loop = loop
        self.config = config
        self.transmit = transmit
    }

    public var connection: MessageConnection? { driver?.connection }
    public var pendingCount: Int { pending.count }

    /// Opens the connection now (so pushes can arrive before the first request).
    public func open() {
        guard driver == nil else { return }
        retired = nil
        let id = UInt32.random(in: 1...UInt32.max)
        let d = MessageDriver(loop: loop, connection: MessageConnection(isClient: true, connectionID: id, config: config,
                                                                        now: loop.clock.now), transmit: transmit)
        d.onEvent = { [unowned self] in self.handle($0) }
        driver = d
        // An empty request-free connection says nothing until asked; a ping opens it on the wire.
        d.connection.transport.sendPing()
        d.flush()
    }

    /// A channel payload from the server.
    public func receive(_ payload: [UInt8]) {
        guard let driver, let (id, _) = MessageConnection.header(of: payload), id == driver.connection.connectionID else { return }
        driver.receive(payload)
    }

    @discardableResult
    public func request(_ method: String, params: [String: String] = [:], body: [UInt8] = [],
                        finish: Bool = true) -> OutgoingRequest {
        open()
        let d = driver!
        let (stream, id) = d.connection.request(method, params: params, body: body, finish: finish)
        let r = OutgoingRequest(stream: stream, id: id, method: method, driver: d)
        pending[stream] = r
        d.flush()
        return r
    }

    /// Closes the connection (pending requests fail with `reason`).
    public func close(reason: String) {
        driver?.connection.close(reason: reason)
        driver?.flush()
    }

    private func handle(_ e: MessageEvent) {
        switch e {
        case .message(let stream, let m):
            if let r = pending[stream] {
                switch m.kind {
                case .partial: r.onPartial(m)
                case .data: r.onData(m.body)
                case .reply: pending[stream] = nil; r.complete(.success(m))
                case .error:
                    pending[stream] = nil
                    r.complete(.failure(.server(code: m.params["code"] ?? "error", message: m.text)))
                case .request, .push: break
                }
            } else if m.kind == .push {
                onPush(m)
            }
        case .streamEnded(let stream):
            if let r = pending.removeValue(forKey: stream) { r.complete(.failure(.reset("the server ended the stream without a reply"))) }
        case .streamReset(let stream, let reason):
            if let r = pending.removeValue(forKey: stream) { r.complete(.failure(.reset(reason))) }
        case .streamWritable(let stream):
            pending[stream]?.onWritable()
        case .closed(let reason):
            let failed = pending.values.sorted { $0.stream < $1.stream }
            pending = [:]
            driver?.shutdown()
            retired = driver   // it is running this very handler: release it later
            driver = nil
            for r in failed { r.complete(.failure(.connection(reason))) }
            onClosed(reason)
        }
    }
}
