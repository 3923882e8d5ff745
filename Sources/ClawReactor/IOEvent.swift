import CLibevent

/// Readiness reported for a file descriptor.
public struct Readiness: OptionSet, Sendable {
    public let rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }
    public static let readable = Readiness(rawValue: Int16(EV_READ))
    public static let writable = Readiness(rawValue: Int16(EV_WRITE))
    public static let timedOut = Readiness(rawValue: Int16(EV_TIMEOUT))
}

/// Persistent readiness notifications for one file descriptor. The descriptor stays owned by
/// whoever opened it; this only watches it.
public final class IOEvent: ReactorEvent {
    private unowned let loop: EventLoop
    public let fd: Int32
    private let event = RawEvent()
    private var assigned = false
    private let handler: (Readiness) -> Void

    public init(loop: EventLoop, fd: Int32, handler: @escaping (Readiness) -> Void) {
        self.loop = loop
        self.fd = fd
        self.handler = handler
    }

    deinit { event.free(assigned: assigned) }

    /// Watches for `interest` (empty stops watching). Safe inside the handler.
    public func watch(_ interest: Readiness) {
        if assigned { event.delete() }
        guard !interest.isEmpty else { return }
        event.assign(base: loop.base, fd: fd, flags: Int32(interest.rawValue) | Int32(EV_PERSIST), target: self)
        assigned = true
        _ = event.add(timeout: nil)
    }

    override func handle(fd: Int32, what: Int16) {
        handler(Readiness(rawValue: what))
    }
}
