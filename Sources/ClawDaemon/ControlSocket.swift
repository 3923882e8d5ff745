import ClawReactor
import Glibc

/// The daemon's local control socket (`clawchatd status`): an AF_UNIX stream socket, mode 0600,
/// on the loop. Each connection sends one request line and gets one answer, then it is closed.
///
/// Nothing here blocks the loop: the listening socket and every connection are non-blocking and
/// watched with ``IOEvent``s; a partial write waits for writability. A connection has
/// ``timeout`` (2 s) to send its line and read the answer, then it is closed; at most
/// ``maxConnections`` are open at once (the listener stops accepting until one closes, so later
/// clients wait in the kernel's backlog). Only root and the daemon's own user may ask: the
/// kernel's SO_PEERCRED says who connected, anyone else is closed at once.
public final class ControlSocket {
    public static let maxRequest = 1024
    public static let maxConnections = 8
    static let backlog: Int32 = 32

    public enum Failure: Error, CustomStringConvertible {
        /// A daemon already answers on this path (another clawchatd on the same state directory).
        case inUse(String)
        case system(String)

        public var description: String {
            switch self {
            case .inUse(let path): return "another clawchatd answers on \(path); stop it first (one daemon per state directory)"
            case .system(let why): return why
            }
        }
    }

    public let path: String
    /// User ids allowed to ask: root and the daemon's own effective uid.
    public var allowedUIDs: Set<uid_t>
    /// How long a connection may take to send its request, and then to read the answer.
    public var timeout: Duration = .seconds(2)
    public var activeConnections: Int { connections.count }
    /// Most connections open at once since the start (tests check the bound).
    public private(set) var peakConnections = 0
    public private(set) var answered = 0
    public private(set) var refused = 0
    public private(set) var timedOut = 0

    private let loop: EventLoop
    private let log: Logger
    private let respond: (String) -> String?
    private var fd: Int32
    private var inode: (dev: UInt64, ino: UInt64)?
    private var listener: IOEvent!
    private var retry: Timer!
    private var accepting = false
    private var connections: [ObjectIdentifier: Connection] = [:]

    /// Binds `path` (removing a stale socket file nobody answers on), sets it to 0600 before it
    /// listens, and starts accepting. `respond` turns a request line (without its newline) into
    /// the answer, or nil for an unknown request.
    public init(loop: EventLoop, path: String, log: Logger, respond: @escaping (String) -> String?) throws(Failure) {
        self.loop = loop
        self.path = path
        self.log = log
        self.respond = respond
        self.allowedUIDs = [0, geteuid()]
        guard path.utf8.count < MemoryLayout.size(ofValue: sockaddr_un().sun_path) else {
            throw .system("control socket path too long for AF_UNIX (\(path.utf8.count) bytes): \(path)")
        }
        if Self.answers(path) { throw .inUse(path) }
        unlink(path)   // a stale socket of a daemon that died: nobody answers on it
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system("socket(AF_UNIX): \(String(cString: strerror(errno)))") }
        let bound = Self.withAddress(path) { bind(fd, $0, $1) }
        guard bound == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .system("bind \(path): \(String(cString: strerror(e)))")
        }
        // Bound but not listening yet: nobody can connect before the mode is narrowed.
        var st = stat()
        guard chmod(path, 0o600) == 0, stat(path, &st) == 0, listen(fd, Self.backlog) == 0 else {
            let e = errno
            Glibc.close(fd)
            unlink(path)
            throw .system("cannot set up \(path): \(String(cString: strerror(e)))")
        }
        inode = (UInt64(st.st_dev), UInt64(st.st_ino))
        listener = IOEvent(loop: loop, fd: fd) { [unowned self] _ in self.acceptAll() }
        retry = Timer(loop: loop) { [unowned self] in self.resume() }
        resume()
    }

    deinit { close() }

    /// Stops listening, closes every connection and removes the socket file (if it is still ours).
    public func close() {
        guard fd >= 0 else { return }
        listener.watch([])
        retry.cancel()
        for c in Array(connections.values) { finish(c) }
        Glibc.close(fd)
        fd = -1
        var st = stat()
        if let inode, stat(path, &st) == 0, UInt64(st.st_dev) == inode.dev, UInt64(st.st_ino) == inode.ino { unlink(path) }
    }

    // MARK: Accepting

    private func resume() {
        guard fd >= 0, !accepting, connections.count < Self.maxConnections else { return }
        accepting = true
        listener.watch(.readable)
    }

    private func pause(for delay: Duration? = nil) {
        guard accepting else { return }
        accepting = false
        listener.watch([])
        if let delay { retry.schedule(after: delay) }
    }

    private func acceptAll() {
        while fd >= 0 {
            guard connections.count < Self.maxConnections else { pause(); return }
            let c = accept(fd, nil, nil)
            if c < 0 {
                switch errno {
                case EINTR, ECONNABORTED: continue
                case EAGAIN, EWOULDBLOCK: return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: the pending connection stays readable; do not spin on it.
                    log.warning("control socket: accept: \(String(cString: strerror(errno))); retrying in 1 s")
                    pause(for: .seconds(1))
                    return
                default:
                    log.warning("control socket: accept: \(String(cString: strerror(errno)))")
                    return
                }
            }
            _ = fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK)
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            guard let uid = Self.peerUID(c), allowedUIDs.contains(uid) else {
                refused += 1
                log.warning("control socket: refused a connection from uid \(Self.peerUID(c).map { String($0) } ?? "?")")
                Glibc.close(c)
                continue
            }
            let conn = Connection(fd: c)
            conn.event = IOEvent(loop: loop, fd: c) { [unowned self, unowned conn] ready in self.service(conn, ready) }
            conn.timer = Timer(loop: loop) { [unowned self, unowned conn] in
                self.timedOut += 1
                self.finish(conn)
            }
            connections[ObjectIdentifier(conn)] = conn
            peakConnections = max(peakConnections, connections.count)
            conn.timer.schedule(after: timeout)
            conn.event.watch(.readable)
        }
    }

    // MARK: Connections

    final class Connection {
        let fd: Int32
        var event: IOEvent!
        var timer: Timer!
        var input: [UInt8] = []
        var output: [UInt8] = []
        var written = 0
        var answering = false
        init(fd: Int32) { self.fd = fd }
    }

    private func service(_ c: Connection, _ ready: Readiness) {
        if c.answering { flush(c) } else { read(c) }
    }

    private func read(_ c: Connection) {
        var buf = [UInt8](repeating: 0, count: Self.maxRequest + 1)
        while true {
            let room = Self.maxRequest + 1 - c.input.count
            let n = buf.withUnsafeMutableBytes { Glibc.read(c.fd, $0.baseAddress, room) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                finish(c)
                return
            }
            if n == 0 {
                // The client shut down its side: what it sent is the request, if anything.
                if c.input.isEmpty { finish(c) } else { answer(c, line: c.input) }
                return
            }
            c.input += buf[0..<n]
            if let nl = c.input.firstIndex(of: 0x0A) {
                answer(c, line: Array(c.input[..<nl]))
                return
            }
            if c.input.count > Self.maxRequest {
                answer(c, text: "error: request longer than \(Self.maxRequest) bytes\n")
                return
            }
        }
    }

    private func answer(_ c: Connection, line: [UInt8]) {
        var line = line
        if line.last == 0x0D { line.removeLast() }
        let request = String(decoding: line, as: UTF8.self)
        if let text = respond(request) {
            answered += 1
            answer(c, text: text.hasSuffix("\n") ? text : text + "\n")
        } else {
            answer(c, text: "error: unknown request (ask `status` or `status json`)\n")
        }
    }

    private func answer(_ c: Connection, text: String) {
        c.answering = true
        c.output = Array(text.utf8)
        c.timer.schedule(after: timeout)   // a fresh allowance to read the answer
        flush(c)
    }

    private func flush(_ c: Connection) {
        while c.written < c.output.count {
            let n = c.output[c.written...].withUnsafeBytes { send(c.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    c.event.watch(.writable)
                    return
                }
                break   // the client went away
            }
            c.written += n
        }
        finish(c)
    }

    private func finish(_ c: Connection) {
        guard connections.removeValue(forKey: ObjectIdentifier(c)) != nil else { return }
        c.timer.cancel()
        c.event.watch([])   // before close: the number may be reused at once
        Glibc.close(c.fd)
        resume()
    }

    // MARK: Helpers

    /// Whether something accepts connections on `path` (a running daemon).
    static func answers(_ path: String) -> Bool {
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { return false }
        defer { Glibc.close(s) }
        let r = withAddress(path) { connect(s, $0, $1) }
        // EAGAIN: its backlog is full, so it is alive.
        return r == 0 || errno == EAGAIN || errno == EINPROGRESS
    }

    static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: bytes)
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    /// The uid of the process at the other end (SO_PEERCRED: pid, uid, gid as three 32-bit words).
    static func peerUID(_ fd: Int32) -> uid_t? {
        var cred = [UInt32](repeating: 0, count: 3)
        var len = socklen_t(12)
        let r = cred.withUnsafeMutableBytes { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, $0.baseAddress, &len) }
        guard r == 0, len >= 8 else { return nil }
        return uid_t(cred[1])
    }
}
