import CLibevent

/// A timer on the loop: one-shot or periodic, re-armable and cancellable at any time, including
/// from inside its own handler.
public final class Timer: ReactorEvent {
    private unowned let loop: EventLoop
    private let event = RawEvent()
    private var assignedFlags: Int32? = nil
    private var period: Duration? = nil
    private let handler: () -> Void

    public init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
    }

    deinit { event.free(assigned: assignedFlags != nil) }

    /// Fires once after `delay`; replaces any earlier schedule.
    public func schedule(after delay: Duration) {
        arm(flags: 0, timeout: delay)
        period = nil
    }

    /// Fires every `interval`, first after one interval; replaces any earlier schedule.
    /// libevent re-arms from the previous deadline, so the period does not drift.
    public func schedulePeriodic(every interval: Duration) {
        arm(flags: Int32(EV_PERSIST), timeout: interval)
        period = interval
    }

    /// Stops the timer; a no-op when it is not armed.
    public func cancel() {
        if assignedFlags != nil { event.delete() }
        period = nil
    }

    /// Whether the timer will fire.
    public var isPending: Bool { assignedFlags != nil && event.isPending }

    private func arm(flags: Int32, timeout: Duration) {
        if assignedFlags != flags {
            if assignedFlags != nil { event.delete() }
            event.assign(base: loop.base, fd: -1, flags: flags, target: self)
            assignedFlags = flags
        }
        _ = event.add(timeout: timeout)
    }

    override func handle(fd: Int32, what: Int16) {
        handler()
    }
}
