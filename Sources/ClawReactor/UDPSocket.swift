import CLibevent
import CShim
import Glibc

/// What became of one outgoing datagram. UDP is lossy anyway: callers count these, they do not
/// retry them (the transport above recovers losses).
public enum SendResult: Equatable, Sendable {
    case sent
    /// The socket buffer is full; the datagram was dropped.
    case wouldBlock
    /// The kernel reported an error (an ICMP unreachable from an earlier send, no route, ...).
    case failed(errno: Int32)
}

/// Counters a socket keeps about what it could not deliver.
public struct UDPSocketStats: Sendable {
    public var received = 0
    public var sent = 0
    public var truncatedDropped = 0
    public var receiveErrors = 0
    public var sendWouldBlock = 0
    public var sendErrors = 0
}

/// A non-blocking UDP socket on the loop (IPv4 or IPv6). Incoming datagrams are read in batches
/// with `recvmmsg` into buffers owned by the socket and handed to `onDatagram` one by one; the
/// bytes are valid only during that call. ICMP errors (port unreachable and the like) are counted
/// and reported to `onError`; they never stop the socket.
public final class UDPSocket {
    public let fd: Int32
    public let localAddress: SocketAddress
    public private(set) var peerAddress: SocketAddress?
    public private(set) var stats = UDPSocketStats()

    /// Called for each datagram received. Set it before the loop runs.
    public var onDatagram: (UnsafeRawBufferPointer, SocketAddress) -> Void = { _, _ in }
    /// Called with the errno of an asynchronous error (ICMP) the kernel reported.
    public var onError: (Int32) -> Void = { _ in }

    /// Largest datagram accepted; larger ones are dropped (the protocol never sends them).
    public static let maxDatagramSize = 2048
    static let batchSize = 64
    /// Bound on datagrams handled per wake-up, so one flooded socket cannot starve timers.
    static let maxPerWakeup = 1024

    private var ioEvent: IOEvent?
    private let buffers: UnsafeMutableRawPointer
    private let slots: UnsafeMutablePointer<cshim_dgram>
    /// Sends have their own buffers, so `sendBatch` is safe inside `onDatagram` (while the
    /// receive buffers are still being handed out).
    private let sendBuffers: UnsafeMutableRawPointer
    private let sendSlots: UnsafeMutablePointer<cshim_dgram>

    /// Opens a socket bound to `address` (port 0 picks a free port) and starts reading.
    public init(loop: EventLoop, bindTo address: SocketAddress) throws(ReactorError) {
        let domain = address.family == .v4 ? AF_INET : AF_INET6
        let fd = socket(domain, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", errno: errno) }
        if address.family == .v6 {
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        let bound = address.withSockAddr { bind(fd, $0, $1) }
        guard bound == 0 else {
            let e = errno
            close(fd)
            throw .system(call: "bind \(address)", errno: e)
        }
        var storage = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        guard named == 0, let local = withUnsafeBytes(of: &storage, { SocketAddress(storage: $0.baseAddress!) }) else {
            let e = errno
            close(fd)
            throw .system(call: "getsockname", errno: e)
        }
        self.fd = fd
        self.localAddress = local
        buffers = .allocate(byteCount: Self.batchSize * Self.maxDatagramSize, alignment: 16)
        slots = .allocate(capacity: Self.batchSize)
        slots.initialize(repeating: cshim_dgram(), count: Self.batchSize)
        sendBuffers = .allocate(byteCount: Self.batchSize * Self.maxDatagramSize, alignment: 16)
        sendSlots = .allocate(capacity: Self.batchSize)
        sendSlots.initialize(repeating: cshim_dgram(), count: Self.batchSize)
        let event = IOEvent(loop: loop, fd: fd) { [unowned self] _ in withExtendedLifetime(self) { self.readAvailable() } }
        ioEvent = event
        event.watch(.readable)
    }

    deinit {
        ioEvent = nil
        close(fd)
        buffers.deallocate()
        slots.deallocate()
        sendBuffers.deallocate()
        sendSlots.deallocate()
    }

    /// Fixes the peer (the kernel then filters other senders and reports ICMP errors for it).
    public func connect(to peer: SocketAddress) throws(ReactorError) {
        let r = peer.withSockAddr { Glibc.connect(fd, $0, $1) }
        guard r == 0 else { throw .system(call: "connect \(peer)", errno: errno) }
        peerAddress = peer
    }

    /// Sets the kernel receive and send buffer sizes (the kernel may cap them).
    public func setBufferSizes(receive: Int, send: Int) {
        var r = Int32(clamping: receive), s = Int32(clamping: send)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &r, socklen_t(MemoryLayout<Int32>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Sends one datagram to `address` (or to the connected peer when `address` is nil).
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) -> SendResult {
        var n: Int
        repeat {
            if let address {
                n = address.withSockAddr { sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, $1) }
            } else {
                n = Glibc.send(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT))
            }
        } while n < 0 && errno == EINTR
        return record(n >= 0 ? nil : errno)
    }

    @discardableResult
    public func send(_ bytes: [UInt8], to address: SocketAddress?) -> SendResult {
        bytes.withUnsafeBytes { send($0, to: address) }
    }

    /// Sends several datagrams with one `sendmmsg` call per batch of 64. Returns how many left.
    @discardableResult
    public func sendBatch(_ datagrams: [(bytes: [UInt8], to: SocketAddress)]) -> Int {
        var sent = 0
        var index = 0
        while index < datagrams.count {
            let n = min(Self.batchSize, datagrams.count - index)
            for i in 0..<n {
                let d = datagrams[index + i]
                let len = min(d.bytes.count, Self.maxDatagramSize)
                let buf = sendBuffers + i * Self.maxDatagramSize
                d.bytes.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: len) }
                sendSlots[i].buf = buf.assumingMemoryBound(to: UInt8.self)
                sendSlots[i].len = len
                sendSlots[i].addrlen = d.to.write(to: &sendSlots[i].addr)
            }
            let r = cshim_send_batch(fd, sendSlots, UInt32(n))
            if r < 0 {
                _ = record(errno)
                // Skip the datagram that failed; the rest of the batch is still worth sending.
                index += 1
                continue
            }
            sent += Int(r)
            stats.sent += Int(r)
            index += max(Int(r), 1)
            if r == 0 { break }
        }
        return sent
    }

    private func record(_ err: Int32?) -> SendResult {
        guard let err else { stats.sent += 1; return .sent }
        if err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS {
            stats.sendWouldBlock += 1
            return .wouldBlock
        }
        stats.sendErrors += 1
        return .failed(errno: err)
    }

    private func readAvailable() {
        var handled = 0
        while handled < Self.maxPerWakeup {
            for i in 0..<Self.batchSize {
                slots[i].buf = (buffers + i * Self.maxDatagramSize).assumingMemoryBound(to: UInt8.self)
                slots[i].cap = Self.maxDatagramSize
            }
            let n = cshim_recv_batch(fd, slots, UInt32(Self.batchSize))
            if n < 0 {
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK { return }
                // An ICMP error from an earlier send (connected sockets) or a transient failure:
                // report it and keep reading.
                stats.receiveErrors += 1
                onError(e)
                handled += 1
                continue
            }
            if n == 0 { return }
            for i in 0..<Int(n) {
                if slots[i].flags & Int32(MSG_TRUNC) != 0 {
                    stats.truncatedDropped += 1
                    continue
                }
                let from = withUnsafeBytes(of: &slots[i].addr) { SocketAddress(storage: $0.baseAddress!) }
                guard let from else { continue }
                stats.received += 1
                onDatagram(UnsafeRawBufferPointer(start: slots[i].buf, count: slots[i].len), from)
            }
            handled += Int(n)
            if Int(n) < Self.batchSize { return }
        }
    }
}
