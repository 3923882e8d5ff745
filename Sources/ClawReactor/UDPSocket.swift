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

/// Counters a socket keeps about what it did and could not deliver.
public struct UDPSocketStats: Sendable {
    public var received = 0
    public var sent = 0
    public var truncatedDropped = 0
    public var receiveErrors = 0
    public var sendWouldBlock = 0
    public var sendErrors = 0
    /// `sendmmsg` calls that sent queued datagrams, and the messages among them that carried a
    /// run of datagrams as one UDP GSO send.
    public var sendCalls = 0
    public var segmentedSends = 0
    /// Receive buffers in which the kernel had coalesced several datagrams (UDP GRO).
    public var coalescedReceives = 0
}

/// The Linux UDP offloads a socket may use. A socket asks for both unless told otherwise and
/// uses what the kernel grants; neither changes what goes on the wire or what `onDatagram` sees.
public struct UDPOffload: OptionSet, Sendable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }
    /// UDP GSO (`UDP_SEGMENT`): a run of same-size datagrams to one address is handed to the
    /// kernel as one message, which cuts it into the same datagrams again.
    public static let segmentation = UDPOffload(rawValue: 1)
    /// UDP GRO: the kernel may hand over several datagrams of one flow in one buffer, which the
    /// socket splits again before `onDatagram`.
    public static let receiveCoalescing = UDPOffload(rawValue: 2)
    public static let all: UDPOffload = [.segmentation, .receiveCoalescing]
}

/// A non-blocking UDP socket on the loop (IPv4 or IPv6). Incoming datagrams are read in batches
/// with `recvmmsg` into buffers owned by the socket and handed to `onDatagram` one by one; the
/// bytes are valid only during that call. ICMP errors (port unreachable and the like) are counted
/// and reported to `onError`; they never stop the socket.
///
/// Outgoing datagrams are either sent at once (`send`) or queued (`enqueue`) and sent together:
/// what is queued while `onDatagram` handles a receive batch leaves when the batch is handed out,
/// anything queued elsewhere at the end of the loop pass, before the loop waits again (or at
/// `flush()`). A flush is one `sendmmsg`, with each run of same-size datagrams to one address as
/// one UDP GSO message where the kernel allows it. Order is kept, per socket.
public final class UDPSocket {
    public let fd: Int32
    public let localAddress: SocketAddress
    public private(set) var peerAddress: SocketAddress?
    public private(set) var stats = UDPSocketStats()
    /// The offloads in use: those asked for that the kernel granted. GSO is dropped for good if
    /// the kernel refuses a segmented send (the datagrams then go one by one).
    public private(set) var offload: UDPOffload = []

    /// Called for each datagram received. Set it before the loop runs.
    public var onDatagram: (UnsafeRawBufferPointer, SocketAddress) -> Void = { _, _ in }
    /// Called with the errno of an asynchronous error (ICMP) the kernel reported.
    public var onError: (Int32) -> Void = { _ in }

    /// Largest datagram accepted; larger ones are dropped (the protocol never sends them).
    public static let maxDatagramSize = 2048
    static let batchSize = 64
    /// With GRO a buffer must hold what the kernel coalesces (up to 64 KB), so there are fewer.
    static let coalescingBatchSize = 16
    static let coalescingBufferSize = 65536
    /// Datagrams `enqueue` holds before it flushes by itself.
    static let sendQueueCapacity = 64
    /// Bound on datagrams handled per wake-up, so one flooded socket cannot starve timers.
    static let maxPerWakeup = 1024

    private var ioEvent: IOEvent?
    private let receiveSlots: Int
    private let receiveBufferSize: Int
    private let buffers: UnsafeMutableRawPointer
    private let slots: UnsafeMutablePointer<cshim_dgram>
    /// Sends have their own buffers, so sending and queueing are safe inside `onDatagram` (while
    /// the receive buffers are still being handed out).
    private let sendBuffers: UnsafeMutableRawPointer
    private let sendSlots: UnsafeMutablePointer<cshim_dgram>
    private var queued = 0
    private var delivering = false
    private var flushPending = false
    private var endOfPass: EndOfPass!
    /// The last destination, as the kernel wants it, and the last source, as a `SocketAddress`:
    /// most datagrams go to and come from the peer before, and converting costs allocations.
    private var cachedDestination: SocketAddress?
    private var cachedAddress = sockaddr_storage()
    private var cachedLength: socklen_t = 0
    private var lastSource: SocketAddress?
    private var lastSourceAddress = sockaddr_storage()
    private var lastSourceLength: socklen_t = 0

    /// Opens a socket bound to `address` (port 0 picks a free port) and starts reading, with the
    /// offloads in `wanted` that the kernel has (`offload` says which).
    public init(loop: EventLoop, bindTo address: SocketAddress, offload wanted: UDPOffload = .all) throws(ReactorError) {
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
        if wanted.contains(.segmentation) && cshim_udp_gso_supported(fd) != 0 { offload.insert(.segmentation) }
        if wanted.contains(.receiveCoalescing) && cshim_udp_enable_gro(fd) == 0 { offload.insert(.receiveCoalescing) }
        let coalescing = offload.contains(.receiveCoalescing)
        receiveSlots = coalescing ? Self.coalescingBatchSize : Self.batchSize
        receiveBufferSize = coalescing ? Self.coalescingBufferSize : Self.maxDatagramSize
        buffers = .allocate(byteCount: receiveSlots * receiveBufferSize, alignment: 16)
        slots = .allocate(capacity: receiveSlots)
        slots.initialize(repeating: cshim_dgram(), count: receiveSlots)
        for i in 0..<receiveSlots {
            slots[i].buf = (buffers + i * receiveBufferSize).assumingMemoryBound(to: UInt8.self)
            slots[i].cap = receiveBufferSize
        }
        sendBuffers = .allocate(byteCount: Self.sendQueueCapacity * Self.maxDatagramSize, alignment: 16)
        sendSlots = .allocate(capacity: Self.sendQueueCapacity)
        sendSlots.initialize(repeating: cshim_dgram(), count: Self.sendQueueCapacity)
        for i in 0..<Self.sendQueueCapacity {
            sendSlots[i].buf = (sendBuffers + i * Self.maxDatagramSize).assumingMemoryBound(to: UInt8.self)
            sendSlots[i].cap = Self.maxDatagramSize
        }
        endOfPass = EndOfPass(loop: loop) { [unowned self] in
            self.flushPending = false
            self.transmitQueue()
        }
        let event = IOEvent(loop: loop, fd: fd) { [unowned self] _ in withExtendedLifetime(self) { self.readAvailable() } }
        ioEvent = event
        event.watch(.readable)
    }

    deinit {
        transmitQueue()
        ioEvent = nil
        endOfPass = nil
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

    /// Sends one datagram to `address` (or to the connected peer when `address` is nil) now,
    /// after what is queued.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) -> SendResult {
        if queued > 0 { transmitQueue() }
        var n: Int
        repeat {
            if let address {
                let length = cacheDestination(address)
                n = withUnsafePointer(to: &cachedAddress) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, Int32(MSG_DONTWAIT), $0, length)
                    }
                }
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

    /// Queues one datagram to `address` (nil: the connected peer): the bytes are copied, and sent
    /// with the rest of the queue (see the type's comment). UDP is lossy: what the kernel refuses
    /// at the flush is only counted in `stats`.
    public func enqueue(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress?) {
        guard bytes.count <= Self.maxDatagramSize else {
            send(bytes, to: address)   // larger than a queue buffer: at once, still in order
            return
        }
        if queued == Self.sendQueueCapacity { transmitQueue() }
        let slot = sendSlots + queued
        if let base = bytes.baseAddress { UnsafeMutableRawPointer(slot.pointee.buf).copyMemory(from: base, byteCount: bytes.count) }
        slot.pointee.len = bytes.count
        if let address {
            slot.pointee.addrlen = cacheDestination(address)
            slot.pointee.addr = cachedAddress
        } else {
            slot.pointee.addrlen = 0
        }
        queued += 1
        if !delivering && !flushPending {
            flushPending = true
            endOfPass.activate()
        }
    }

    /// Puts `address` in `cachedAddress` (unless it is there already); returns its length.
    private func cacheDestination(_ address: SocketAddress) -> socklen_t {
        if address != cachedDestination {
            cachedLength = address.write(to: &cachedAddress)
            cachedDestination = address
        }
        return cachedLength
    }

    /// The source of a received datagram; the previous one again if the kernel wrote the same.
    private func source(of slot: UnsafeMutablePointer<cshim_dgram>) -> SocketAddress? {
        let length = slot.pointee.addrlen
        if let lastSource, length == lastSourceLength,
           memcmp(&slot.pointee.addr, &lastSourceAddress, Int(length)) == 0 { return lastSource }
        guard let from = withUnsafeBytes(of: &slot.pointee.addr, { SocketAddress(storage: $0.baseAddress!) }) else { return nil }
        lastSource = from
        lastSourceAddress = slot.pointee.addr
        lastSourceLength = length
        return from
    }

    public func enqueue(_ bytes: [UInt8], to address: SocketAddress?) {
        bytes.withUnsafeBytes { enqueue($0, to: address) }
    }

    /// Datagrams queued and not yet handed to the kernel.
    public var queuedDatagrams: Int { queued }

    /// Hands everything queued to the kernel now; inside `onDatagram`, when the receive batch
    /// has been handed out (still before the loop gets control back).
    public func flush() {
        if !delivering { transmitQueue() }
    }

    private func transmitQueue() {
        guard queued > 0 else { return }
        var report = cshim_send_report()
        cshim_send_queue(fd, sendSlots, UInt32(queued), offload.contains(.segmentation) ? 1 : 0, &report)
        queued = 0
        stats.sent += Int(report.sent)
        stats.sendWouldBlock += Int(report.would_block)
        stats.sendErrors += Int(report.failed)
        stats.sendCalls += Int(report.calls)
        stats.segmentedSends += Int(report.gso_messages)
        if report.gso_refused != 0 { offload.remove(.segmentation) }
    }

    /// Sends several datagrams now, with as few calls as the queue needs. Returns how many left.
    @discardableResult
    public func sendBatch(_ datagrams: [(bytes: [UInt8], to: SocketAddress)]) -> Int {
        transmitQueue()
        let before = stats.sent
        for d in datagrams { enqueue(d.bytes, to: d.to) }
        transmitQueue()
        return stats.sent - before
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
        delivering = true
        defer {
            delivering = false
            transmitQueue()
        }
        var handled = 0
        while handled < Self.maxPerWakeup {
            let n = cshim_recv_batch(fd, slots, UInt32(receiveSlots))
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
            for i in 0..<Int(n) { handled += deliver(slots + i) }
            // The answers to this batch leave together.
            transmitQueue()
            if Int(n) < receiveSlots { return }
        }
    }

    /// Hands the datagrams of one receive buffer to `onDatagram`; returns how many it held.
    private func deliver(_ slot: UnsafeMutablePointer<cshim_dgram>) -> Int {
        let length = slot.pointee.len
        let segment = Int(slot.pointee.segment)
        let truncated = slot.pointee.flags & Int32(MSG_TRUNC) != 0
        let coalesced = segment > 0 && length > segment
        guard !truncated || coalesced, (coalesced ? segment : length) <= Self.maxDatagramSize else {
            stats.truncatedDropped += 1
            return 1
        }
        guard let from = source(of: slot) else { return 1 }
        guard coalesced else {
            stats.received += 1
            onDatagram(UnsafeRawBufferPointer(start: slot.pointee.buf, count: length), from)
            return 1
        }
        // GRO: datagrams of `segment` bytes back to back, the last one possibly shorter. A buffer
        // the kernel had to cut holds only the whole ones.
        stats.coalescedReceives += 1
        if truncated { stats.truncatedDropped += 1 }
        let base = UnsafeRawPointer(slot.pointee.buf!)
        var offset = 0
        var count = 0
        while offset < length {
            let size = min(segment, length - offset)
            if truncated && size < segment { break }
            stats.received += 1
            count += 1
            onDatagram(UnsafeRawBufferPointer(start: base + offset, count: size), from)
            offset += size
        }
        return count
    }
}

/// Runs its handler once, later in the current loop pass: after the callbacks already due and
/// before the loop waits for events again. `activate` again to run it again.
private final class EndOfPass: ReactorEvent {
    private let event = RawEvent()
    private let handler: () -> Void

    init(loop: EventLoop, handler: @escaping () -> Void) {
        self.handler = handler
        super.init()
        event.assign(base: loop.base, fd: -1, flags: 0, target: self)
    }

    deinit { event.free(assigned: true) }

    func activate() { event_active(event.pointer, Int32(EV_TIMEOUT), 1) }

    override func handle(fd: Int32, what: Int16) { handler() }
}
