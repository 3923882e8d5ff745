// One HTTP request and its transfer: the value the caller describes, the typed outcome, and the
// easy handle with the C callbacks that stream the response back. The multi handle glue that
// drives transfers from the event loop is in CurlMulti.swift.
import CCurl

/// An HTTP request as a plain value. Headers may carry secrets (API keys); they are never copied
/// into errors or descriptions.
public struct HTTPRequest: Sendable {
    /// Aborts a transfer whose speed stays below `bytesPerSecond` for `duration` (whole seconds,
    /// rounded up). `LowSpeedLimit(bytesPerSecond: 1, duration: .seconds(30))` is an idle timeout
    /// for a long-lived stream.
    public struct LowSpeedLimit: Sendable, Equatable {
        public var bytesPerSecond: Int
        public var duration: Duration
        public init(bytesPerSecond: Int, duration: Duration) {
            self.bytesPerSecond = bytesPerSecond
            self.duration = duration
        }
    }

    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// Bound on name resolution plus the TCP and TLS handshakes; nil is curl's default (300 s).
    public var connectTimeout: Duration?
    /// Bound on the whole transfer (CURLOPT_TIMEOUT_MS); nil means none, as for streams.
    public var timeout: Duration?
    public var lowSpeedLimit: LowSpeedLimit?

    public init(method: String = "GET", url: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
                connectTimeout: Duration? = .seconds(10), timeout: Duration? = nil,
                lowSpeedLimit: LowSpeedLimit? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.timeout = timeout
        self.lowSpeedLimit = lowSpeedLimit
    }
}

extension HTTPRequest: CustomStringConvertible, CustomDebugStringConvertible {
    /// Method and URL without its query, header names only: safe for logs.
    public var description: String {
        let path = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        let names = headers.map(\.0).joined(separator: ", ")
        return "\(method) \(path) headers: [\(names)] body: \(body.map { "\($0.count) bytes" } ?? "none")"
    }
    public var debugDescription: String { description }
}

/// Why a transfer did not complete.
public enum HTTPError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No connection could be made (refused, unreachable).
    case connectFailed
    /// The connect timeout, the overall timeout or the low-speed limit expired.
    case timedOut
    /// The caller cancelled the transfer.
    case cancelled
    /// The request was rejected before anything was sent; the text names the field, never a value.
    case invalidRequest(String)
    /// Any other curl failure: the `CURLcode` (or `CURLMcode` for multi-handle failures) and
    /// curl's message.
    case other(code: Int32, message: String)

    public var description: String {
        switch self {
        case .connectFailed: return "could not connect to the server"
        case .timedOut: return "the HTTP transfer timed out"
        case .cancelled: return "the HTTP transfer was cancelled"
        case .invalidRequest(let what): return "invalid HTTP request: \(what)"
        case .other(let code, let message): return "HTTP transfer failed (curl \(code)): \(message)"
        }
    }
}

/// How a transfer ended. `error == nil` means the response arrived in full; the status may still
/// be any HTTP status, 4xx and 5xx included.
public struct HTTPResult: Equatable, Sendable {
    /// The final response's status, or 0 when no response header block arrived.
    public var status: Int
    public var error: HTTPError?

    public init(status: Int, error: HTTPError?) {
        self.status = status
        self.error = error
    }

    public var succeeded: Bool { error == nil }
}

/// One transfer in a `CurlMulti`. Set the callbacks right after `CurlMulti.start` returns: nothing
/// is delivered before control goes back to the loop. Callbacks run on the loop thread:
/// `onHeaders` once, when the final response's header block is complete (interim 1xx blocks are
/// skipped), then `onBody` for each chunk as it arrives (the bytes are valid only during the call),
/// then `onComplete` exactly once. After `onComplete` the callbacks are released, so they may
/// capture the transfer strongly.
public final class HTTPTransfer {
    public var onHeaders: (_ status: Int, _ headers: [(String, String)]) -> Void = { _, _ in }
    public var onBody: (UnsafeRawBufferPointer) -> Void = { _ in }
    public var onComplete: (HTTPResult) -> Void = { _ in }

    /// The final response's status once its headers have arrived, else 0.
    public private(set) var status = 0

    weak var multi: CurlMulti?
    /// The easy handle; nil once freed.
    private(set) var easy: UnsafeMutableRawPointer?
    /// Whether `easy` is currently added to the multi handle.
    var inMulti = false
    /// Set by `cancel()`: no more headers or body are delivered, curl is told to abort.
    private(set) var cancelled = false
    /// Set when `onComplete` has run (or the multi was freed): nothing is delivered any more.
    private(set) var completed = false

    private var headerList: UnsafeMutablePointer<curl_slist>?
    private let errorBuffer: UnsafeMutablePointer<CChar>
    private var headersDelivered = false
    private var blockStatus = 0
    private var blockHeaders: [(String, String)] = []

    init(request: HTTPRequest, multi: CurlMulti) throws(HTTPError) {
        self.multi = multi
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE))
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        try configure(request)
    }

    deinit {
        releaseEasy()
        errorBuffer.deallocate()
    }

    /// Stops the transfer and delivers `onComplete` with `.cancelled`, unless it already
    /// completed. Safe at any time, also inside this or another transfer's callbacks. The
    /// completion never runs inside `cancel()` itself: it comes from the loop right after.
    public func cancel() {
        multi?.cancel(self)
    }

    // MARK: - Setup

    private func configure(_ request: HTTPRequest) throws(HTTPError) {
        try Self.validate(request)
        guard let easy = curl_easy_init() else {
            throw .other(code: Int32(CURLE_FAILED_INIT.rawValue), message: "curl_easy_init failed")
        }
        self.easy = easy
        for (name, value) in request.headers {
            // "Name:" with nothing after it would delete a header curl adds; "Name;" sends it empty.
            let line = value.isEmpty ? "\(name);" : "\(name): \(value)"
            guard let list = curl_slist_append(headerList, line) else {
                throw .other(code: Int32(CURLE_OUT_OF_MEMORY.rawValue), message: "curl_slist_append failed")
            }
            headerList = list
        }

        let me = Unmanaged.passUnretained(self).toOpaque()
        var code = CURLE_OK
        func set(_ result: CURLcode) { if code == CURLE_OK { code = result } }
        set(cc_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1))
        set(cc_easy_setopt_str(easy, CURLOPT_URL, request.url))
        set(cc_easy_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https"))
        set(cc_easy_setopt_ptr(easy, CURLOPT_ERRORBUFFER, errorBuffer))
        set(cc_easy_setopt_write(easy, CURLOPT_WRITEFUNCTION) { data, size, count, ctx in
            guard let ctx else { return 0 }
            let transfer = Unmanaged<HTTPTransfer>.fromOpaque(ctx).takeUnretainedValue()
            return transfer.received(body: UnsafeRawBufferPointer(start: data, count: size * count))
        })
        set(cc_easy_setopt_ptr(easy, CURLOPT_WRITEDATA, me))
        set(cc_easy_setopt_write(easy, CURLOPT_HEADERFUNCTION) { data, size, count, ctx in
            guard let ctx else { return 0 }
            let transfer = Unmanaged<HTTPTransfer>.fromOpaque(ctx).takeUnretainedValue()
            return transfer.received(headerLine: UnsafeRawBufferPointer(start: data, count: size * count))
        })
        set(cc_easy_setopt_ptr(easy, CURLOPT_HEADERDATA, me))
        if let headerList { set(cc_easy_setopt_ptr(easy, CURLOPT_HTTPHEADER, headerList)) }

        let method = request.method.uppercased()
        if let body = request.body {
            set(cc_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
            if body.isEmpty {
                set(cc_easy_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, ""))
            } else {
                set(body.withUnsafeBytes { cc_easy_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, $0.baseAddress) })
            }
            if method != "POST" { set(cc_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method)) }
        } else {
            switch method {
            case "GET": set(cc_easy_setopt_long(easy, CURLOPT_HTTPGET, 1))
            case "HEAD": set(cc_easy_setopt_long(easy, CURLOPT_NOBODY, 1))
            case "POST":
                set(cc_easy_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, 0))
                set(cc_easy_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, ""))
            default: set(cc_easy_setopt_str(easy, CURLOPT_CUSTOMREQUEST, method))
            }
        }

        if let t = request.connectTimeout { set(cc_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Self.milliseconds(t))) }
        if let t = request.timeout { set(cc_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Self.milliseconds(t))) }
        if let limit = request.lowSpeedLimit {
            let seconds = max(1, (limit.duration.nanoseconds + 999_999_999) / 1_000_000_000)
            set(cc_easy_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, max(1, limit.bytesPerSecond)))
            set(cc_easy_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, Int(seconds)))
        }
        guard code == CURLE_OK else {
            throw .other(code: Int32(code.rawValue), message: String(cString: curl_easy_strerror(code)))
        }
    }

    /// Rejects what would corrupt the request line or inject headers. Messages name the field,
    /// never its value.
    private static func validate(_ request: HTTPRequest) throws(HTTPError) {
        func isToken(_ s: String) -> Bool {
            !s.isEmpty && s.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                    || "!#$%&'*+-.^_`|~".utf8.contains(c)
            }
        }
        func hasControl(_ s: String) -> Bool { s.utf8.contains { ($0 < 0x20 && $0 != 0x09) || $0 == 0x7F } }
        guard isToken(request.method) else { throw .invalidRequest("method is not an HTTP token") }
        guard !request.url.isEmpty, !hasControl(request.url), !request.url.utf8.contains(0x20) else {
            throw .invalidRequest("URL is empty or contains spaces or control characters")
        }
        for (index, (name, value)) in request.headers.enumerated() {
            guard isToken(name) else { throw .invalidRequest("header #\(index + 1) has an invalid name") }
            guard !hasControl(value) else { throw .invalidRequest("value of header \(name) contains control characters") }
        }
    }

    private static func milliseconds(_ d: Duration) -> Int {
        // curl treats 0 as "no timeout"; a positive bound must stay positive.
        max(1, Int(d.nanoseconds / 1_000_000))
    }

    // MARK: - Lifecycle, driven by CurlMulti

    /// Frees the easy handle and what it points to. The caller has removed it from the multi.
    func releaseEasy() {
        precondition(!inMulti, "an easy handle must leave the multi handle before it is freed")
        if let easy { curl_easy_cleanup(easy) }
        easy = nil
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
    }

    func markCancelled() { cancelled = true }

    /// The last response code curl saw, read before the handle is freed.
    var responseCode: Int {
        guard let easy else { return status }
        var code = 0
        _ = cc_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    /// Maps curl's verdict to a result; reads the error buffer, so call it before `releaseEasy`.
    func result(for code: CURLcode) -> HTTPResult {
        let status = responseCode
        switch code {
        case CURLE_OK: return HTTPResult(status: status, error: nil)
        case CURLE_COULDNT_CONNECT: return HTTPResult(status: status, error: .connectFailed)
        case CURLE_OPERATION_TIMEDOUT: return HTTPResult(status: status, error: .timedOut)
        default:
            let detail = String(cString: errorBuffer)
            let message = detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail
            return HTTPResult(status: status, error: .other(code: Int32(code.rawValue), message: message))
        }
    }

    /// Delivers `onComplete` once, then drops every callback (and what they capture).
    func complete(_ result: HTTPResult) {
        guard !completed else { return }
        let callback = onComplete
        abandon()
        callback(result)
    }

    /// Ends the transfer without a completion: used when the multi itself goes away.
    func abandon() {
        completed = true
        onHeaders = { _, _ in }
        onBody = { _ in }
        onComplete = { _ in }
    }

    // MARK: - curl callbacks (inside curl_multi_socket_action)

    private static let abort = Int(CURL_WRITEFUNC_ERROR)

    private func received(body: UnsafeRawBufferPointer) -> Int {
        guard !cancelled, !completed else { return Self.abort }
        if !headersDelivered {
            // Only a response without a header block (HTTP/0.9) gets here; give it one anyway.
            deliverHeaders(status: blockStatus, headers: blockHeaders)
            if cancelled { return Self.abort }
        }
        onBody(body)
        return cancelled ? Self.abort : body.count
    }

    /// One header line, the status line of each block, or the empty line that ends a block.
    /// Lines after the final block (chunked trailers) are ignored.
    private func received(headerLine raw: UnsafeRawBufferPointer) -> Int {
        guard !cancelled, !completed else { return Self.abort }
        if headersDelivered { return raw.count }
        var line = raw[...]
        while let last = line.last, last == 0x0A || last == 0x0D { line = line.dropLast() }
        if line.isEmpty {
            // An interim 1xx block (100 Continue) is followed by the real one.
            if (100..<200).contains(blockStatus) {
                blockStatus = 0
                blockHeaders = []
                return raw.count
            }
            deliverHeaders(status: blockStatus, headers: blockHeaders)
            return cancelled ? Self.abort : raw.count
        }
        let text = String(decoding: line, as: UTF8.self)
        if text.hasPrefix("HTTP/") {
            let fields = text.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            blockStatus = fields.count >= 2 ? Int(fields[1]) ?? 0 : 0
            blockHeaders = []
        } else if let first = line.first, first == 0x20 || first == 0x09, !blockHeaders.isEmpty {
            // Obsolete line folding: a continuation of the previous header's value.
            blockHeaders[blockHeaders.count - 1].1 += " " + text.trimmingSpaces
        } else if let colon = text.firstIndex(of: ":") {
            blockHeaders.append((String(text[..<colon]).trimmingSpaces, String(text[text.index(after: colon)...]).trimmingSpaces))
        }
        return raw.count
    }

    private func deliverHeaders(status: Int, headers: [(String, String)]) {
        headersDelivered = true
        self.status = status
        blockHeaders = []
        onHeaders(status, headers)
    }
}

extension String {
    fileprivate var trimmingSpaces: String {
        let bytes = utf8
        guard let start = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x09 }),
              let end = bytes.lastIndex(where: { $0 != 0x20 && $0 != 0x09 }) else { return "" }
        return String(self[start...end])
    }
}
