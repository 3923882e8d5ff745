// The reactor: one libevent `event_base` on one thread drives every socket, timer and signal.
//
// Ownership rules (they hold for every type in this module):
// - Everything here is confined to the thread that created the `EventLoop`. The types are not
//   `Sendable`; nothing is shared across threads.
// - An `EventLoop` must outlive every event registered on it. Events keep an `unowned` reference
//   to their loop; the daemon and client build the loop first and tear it down last.
// - Each event (`Timer`, `IOEvent`, `SignalEvent`, `UDPSocket`, `CurlMulti`) owns its libevent
//   `struct event`: it allocates it, and frees it in `deinit`. Dropping the last reference to an
//   event is how it is removed from the loop, and that is safe inside the event's own callback:
//   the C trampoline keeps the Swift object alive until the handler returns.
// - libevent receives only `Unmanaged.passUnretained(self)` as callback context, never a retained
//   pointer, so there are no hidden reference cycles. Handlers that refer back to their owner
//   capture it `[unowned self]` or `[weak self]`.
import CLibevent
import Glibc

/// Errors from the reactor layer, each saying which system call failed and why.
public enum ReactorError: Error, CustomStringConvertible, Equatable {
    case eventBaseCreationFailed
    case eventRegistrationFailed(String)
    case system(call: String, errno: Int32)
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .eventBaseCreationFailed: return "libevent could not create an event base"
        case .eventRegistrationFailed(let what): return "libevent refused to register \(what)"
        case .system(let call, let code): return "\(call) failed: \(String(cString: strerror(code)))"
        case .invalidAddress(let text): return "not a valid IP address and port: \(text)"
        }
    }
}

/// The single-threaded event loop over one libevent `event_base`.
public final class EventLoop {
    let base: OpaquePointer
    /// The monotonic clock the loop's timers run on.
    public let clock = MonotonicClock()

    public init() throws(ReactorError) {
        guard let cfg = event_config_new() else { throw .eventBaseCreationFailed }
        defer { event_config_free(cfg) }
        // Timers must be as precise as the clock allows; the loop is never shared between threads.
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_PRECISE_TIMER.rawValue))
        event_config_set_flag(cfg, Int32(EVENT_BASE_FLAG_NOLOCK.rawValue))
        guard let b = event_base_new_with_config(cfg) else { throw .eventBaseCreationFailed }
        base = b
    }

    deinit { event_base_free(base) }

    /// Runs until `stop()` is called or no event is left registered.
    public func run() {
        event_base_loop(base, 0)
    }

    /// Runs until `stop()` is called, even while no event is registered.
    public func runUntilStopped() {
        event_base_loop(base, Int32(EVLOOP_NO_EXIT_ON_EMPTY))
    }

    /// Runs one pass: waits for at least one event, handles what is ready, returns.
    public func runOnce() {
        event_base_loop(base, Int32(EVLOOP_ONCE))
    }

    /// Runs until `condition` returns true or `deadline` passes; returns whether it became true.
    /// Meant for tests and one-shot commands that drive the loop until some outcome.
    @discardableResult
    public func run(until deadline: Duration, condition: () -> Bool) -> Bool {
        let end = clock.now + deadline
        let guardTimer = Timer(loop: self) {}
        while !condition() {
            let left = end - clock.now
            if left <= .zero { return condition() }
            guardTimer.schedule(after: left)
            runOnce()
        }
        return true
    }

    /// Makes `run()` return after the callbacks now running finish.
    public func stop() {
        event_base_loopbreak(base)
    }
}

/// The common base of everything registered on the loop; its handler is called by the C trampoline.
public class ReactorEvent {
    init() {}
    func handle(fd: Int32, what: Int16) {}
}

/// The one C callback for every event. Keeps the Swift object alive across its handler, so a
/// handler may drop the last reference to its own event.
func eventTrampoline(fd: Int32, what: Int16, ctx: UnsafeMutableRawPointer?) {
    guard let ctx else { return }
    let target = Unmanaged<ReactorEvent>.fromOpaque(ctx).takeUnretainedValue()
    withExtendedLifetime(target) { target.handle(fd: fd, what: what) }
}

/// Storage for one `struct event`, assigned (and re-assigned) by its owner.
struct RawEvent {
    let pointer: OpaquePointer

    init() {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: event_get_struct_event_size(), alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: event_get_struct_event_size())
        pointer = OpaquePointer(raw)
    }

    func assign(base: OpaquePointer, fd: Int32, flags: Int32, target: ReactorEvent) {
        event_assign(pointer, base, fd, Int16(truncatingIfNeeded: flags), { fd, what, ctx in
            eventTrampoline(fd: fd, what: what, ctx: ctx)
        }, Unmanaged.passUnretained(target).toOpaque())
    }

    func add(timeout: Duration?) -> Bool {
        if let timeout {
            var tv = timeval(duration: timeout)
            return event_add(pointer, &tv) == 0
        }
        return event_add(pointer, nil) == 0
    }

    func delete() { event_del(pointer) }

    var isPending: Bool {
        event_pending(pointer, Int16(EV_TIMEOUT | EV_READ | EV_WRITE | EV_SIGNAL), nil) != 0
    }

    /// Removes the event from its base (if it was ever assigned) and frees the storage.
    func free(assigned: Bool) {
        if assigned { event_del(pointer) }
        UnsafeMutableRawPointer(pointer).deallocate()
    }
}

extension timeval {
    init(duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let clamped = max(seconds, 0)
        self.init(tv_sec: Int(clamped), tv_usec: seconds < 0 ? 0 : Int(attoseconds / 1_000_000_000_000))
    }
}
