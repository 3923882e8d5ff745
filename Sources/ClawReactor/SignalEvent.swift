import CLibevent
import Glibc

/// Delivers a POSIX signal through the loop, so its handler runs as an ordinary callback rather
/// than in signal context. libevent allows signal events on only one `event_base` per process.
public final class SignalEvent: ReactorEvent {
    public let signal: Int32
    private let event = RawEvent()
    private let handler: () -> Void

    public init(loop: EventLoop, signal: Int32, handler: @escaping () -> Void) throws(ReactorError) {
        self.signal = signal
        self.handler = handler
        super.init()
        event.assign(base: loop.base, fd: signal, flags: Int32(EV_SIGNAL | EV_PERSIST), target: self)
        guard event.add(timeout: nil) else {
            event.free(assigned: true)
            throw .eventRegistrationFailed("signal \(signal)")
        }
        // A blocked signal would never arrive: a process inherits its parent's signal mask, and
        // a parent spawning from a thread that blocks signals (a libdispatch worker, some
        // supervisors) would leave us deaf to SIGTERM.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, signal)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    deinit { event.free(assigned: true) }

    override func handle(fd: Int32, what: Int16) {
        handler()
    }
}

/// Ignores SIGPIPE for the process: writes to closed sockets return EPIPE instead of killing us.
public func ignoreSIGPIPE() {
    signal(SIGPIPE, SIG_IGN)
}
