// libcurl's multi interface driven by the event loop, after curl's docs/examples/multi-event.c:
// curl says which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to wake it
// (CURLMOPT_TIMERFUNCTION); the loop reports readiness and expiry back through
// curl_multi_socket_action, then finished transfers are collected with curl_multi_info_read.
//
// Ownership rules, on top of those in EventLoop.swift:
// - `CurlMulti` owns the multi handle, one `IOEvent` per socket curl watches, its two timers and
//   every running `HTTPTransfer` (strong references keyed by easy handle). A transfer owns its
//   easy handle and holds only a weak reference back, so callers may keep a transfer past its end.
// - curl forbids calling the multi API from inside its callbacks, and user callbacks (`onHeaders`,
//   `onBody`) run inside curl_multi_socket_action. So `cancel()` and `start()` made there are only
//   recorded, and carried out as soon as curl_multi_socket_action returns.
// - Every entry from the loop holds `self` alive until it is done, so any callback may drop the
//   last reference to the `CurlMulti`. Freeing it ends every running transfer silently: no
//   callback runs after the `CurlMulti` is gone.
import CCurl

/// An HTTP client on the event loop: many concurrent transfers, no threads, no blocking calls.
public final class CurlMulti {
    private unowned let loop: EventLoop
    private let handle: UnsafeMutableRawPointer
    /// What curl asked to watch, by socket.
    private var sockets: [Int32: IOEvent] = [:]
    /// Every transfer not yet completed that still has its easy handle, by easy handle.
    private var transfers: [UnsafeMutableRawPointer: HTTPTransfer] = [:]
    /// True while curl_multi_socket_action runs (and with it the transfer callbacks).
    private var insideCurl = false
    private var deferredStarts: [HTTPTransfer] = []
    private var deferredCancels: [HTTPTransfer] = []
    /// Cancelled transfers waiting for `completionTimer` to deliver `.cancelled`.
    private var cancelledCompletions: [(HTTPTransfer, HTTPResult)] = []

    /// Fires when curl's own timeout (connect, retries, CURLOPT_TIMEOUT_MS) is due.
    private lazy var curlTimer = Timer(loop: loop) { [unowned self] in
        self.drive(socket: CURL_SOCKET_TIMEOUT, events: 0)
    }
    /// Delivers `.cancelled` completions on the next loop pass, never inside `cancel()`.
    private lazy var completionTimer = Timer(loop: loop) { [unowned self] in
        self.deliverCancelledCompletions()
    }

    /// curl_global_init is not thread-safe and must run once, before any other curl call.
    private static let globalInit: Int32 = Int32(curl_global_init(Int(CURL_GLOBAL_DEFAULT)).rawValue)

    public init(loop: EventLoop) throws(HTTPError) {
        guard Self.globalInit == Int32(CURLE_OK.rawValue) else {
            throw .other(code: Self.globalInit, message: "curl_global_init failed")
        }
        guard let handle = curl_multi_init() else {
            throw .other(code: Int32(CURLE_FAILED_INIT.rawValue), message: "curl_multi_init failed")
        }
        self.loop = loop
        self.handle = handle
        let me = Unmanaged.passUnretained(self).toOpaque()
        _ = cc_multi_setopt_socketfn(handle) { _, socket, what, ctx, _ in
            guard let ctx else { return -1 }
            Unmanaged<CurlMulti>.fromOpaque(ctx).takeUnretainedValue().watch(socket: socket, what: what)
            return 0
        }
        _ = cc_multi_setopt_ptr(handle, CURLMOPT_SOCKETDATA, me)
        _ = cc_multi_setopt_timerfn(handle) { _, milliseconds, ctx in
            guard let ctx else { return -1 }
            Unmanaged<CurlMulti>.fromOpaque(ctx).takeUnretainedValue().armTimer(milliseconds: milliseconds)
            return 0
        }
        _ = cc_multi_setopt_ptr(handle, CURLMOPT_TIMERDATA, me)
    }

    deinit {
        // From here on curl must not call back into a half-destroyed object.
        _ = cc_multi_setopt_socketfn(handle, nil)
        _ = cc_multi_setopt_timerfn(handle, nil)
        for transfer in transfers.values {
            if transfer.inMulti, let easy = transfer.easy { curl_multi_remove_handle(handle, easy) }
            transfer.inMulti = false
            transfer.releaseEasy()
            transfer.abandon()
        }
        for (transfer, _) in cancelledCompletions { transfer.abandon() }
        for event in sockets.values { event.watch([]) }
        sockets.removeAll()
        curl_multi_cleanup(handle)
    }

    /// Transfers started and not yet completed (cancelled ones count until they are detached).
    public var activeTransfers: Int { transfers.count }

    /// Starts a transfer. Set its callbacks before returning to the loop; none runs earlier.
    /// Throws only for a request that cannot be sent (`.invalidRequest`) or when curl is out of
    /// resources; every failure after that arrives through `onComplete`.
    public func start(_ request: HTTPRequest) throws(HTTPError) -> HTTPTransfer {
        let transfer = try HTTPTransfer(request: request, multi: self)
        guard let easy = transfer.easy else { throw .other(code: Int32(CURLE_FAILED_INIT.rawValue), message: "no easy handle") }
        transfers[easy] = transfer
        if insideCurl {
            deferredStarts.append(transfer)
        } else if let error = add(transfer) {
            _ = detach(transfer)
            throw error
        }
        return transfer
    }

    /// Cancels every running transfer; each gets `.cancelled` from the loop.
    public func cancelAll() {
        for transfer in Array(transfers.values) { cancel(transfer) }
    }

    // MARK: - Transfers

    /// Adds the easy handle to the multi; curl then asks for a timer and starts on its expiry.
    private func add(_ transfer: HTTPTransfer) -> HTTPError? {
        guard let easy = transfer.easy else { return nil }
        let code = curl_multi_add_handle(handle, easy)
        guard code == CURLM_OK else {
            return .other(code: Int32(code.rawValue), message: String(cString: curl_multi_strerror(code)))
        }
        transfer.inMulti = true
        return nil
    }

    /// Takes a transfer out of curl and frees its easy handle; returns the last status seen.
    /// Must not run inside curl_multi_socket_action.
    private func detach(_ transfer: HTTPTransfer) -> Int {
        guard let easy = transfer.easy else { return transfer.status }
        let status = transfer.responseCode
        if transfer.inMulti { curl_multi_remove_handle(handle, easy) }
        transfer.inMulti = false
        withExtendedLifetime(transfer) {
            transfers.removeValue(forKey: easy)
            transfer.releaseEasy()
        }
        return status
    }

    func cancel(_ transfer: HTTPTransfer) {
        guard !transfer.cancelled, !transfer.completed, transfer.multi === self else { return }
        transfer.markCancelled()
        if insideCurl {
            // The transfer's callbacks now tell curl to abort; the handle goes after curl returns.
            deferredCancels.append(transfer)
            return
        }
        let status = detach(transfer)
        cancelledCompletions.append((transfer, HTTPResult(status: status, error: .cancelled)))
        completionTimer.schedule(after: .zero)
    }

    private func deliverCancelledCompletions() {
        withExtendedLifetime(self) {
            let due = cancelledCompletions
            cancelledCompletions = []
            for (transfer, result) in due { transfer.complete(result) }
        }
    }

    // MARK: - curl's callbacks (inside curl calls: they only touch the loop, never curl)

    /// CURLMOPT_SOCKETFUNCTION: watch, re-watch or forget one socket. A removal may arrive while
    /// that socket's own `IOEvent` handler is running; the trampoline keeps the event alive until
    /// the handler returns, and `watch([])` takes it off the loop at once.
    private func watch(socket: Int32, what: Int32) {
        if what == CURL_POLL_REMOVE {
            sockets.removeValue(forKey: socket)?.watch([])
            return
        }
        var interest: Readiness = []
        if what & CURL_POLL_IN != 0 { interest.insert(.readable) }
        if what & CURL_POLL_OUT != 0 { interest.insert(.writable) }
        let event: IOEvent
        if let existing = sockets[socket] {
            event = existing
        } else {
            event = IOEvent(loop: loop, fd: socket) { [unowned self] readiness in
                var events: Int32 = 0
                if readiness.contains(.readable) { events |= CURL_CSELECT_IN }
                if readiness.contains(.writable) { events |= CURL_CSELECT_OUT }
                self.drive(socket: socket, events: events)
            }
            sockets[socket] = event
        }
        event.watch(interest)
    }

    /// CURLMOPT_TIMERFUNCTION: -1 cancels, anything else (0 included) arms a one-shot timer.
    private func armTimer(milliseconds: Int) {
        if milliseconds < 0 {
            curlTimer.cancel()
        } else {
            curlTimer.schedule(after: .milliseconds(milliseconds))
        }
    }

    // MARK: - Driving curl from the loop

    /// Tells curl a socket is ready (or its timeout is due), then settles what that changed.
    private func drive(socket: Int32, events: Int32) {
        withExtendedLifetime(self) {
            var running: Int32 = 0
            insideCurl = true
            _ = curl_multi_socket_action(handle, socket, events, &running)
            insideCurl = false
            settle()
        }
    }

    /// Carries out cancels and starts recorded inside curl, then completes finished transfers.
    private func settle() {
        var done: [(HTTPTransfer, CURLcode)] = []
        var queued: Int32 = 0
        while let message = curl_multi_info_read(handle, &queued) {
            guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                  let transfer = transfers[easy] else { continue }
            done.append((transfer, cc_msg_result(message)))
        }

        let cancels = deferredCancels
        deferredCancels = []
        for transfer in cancels {
            let status = detach(transfer)
            cancelledCompletions.append((transfer, HTTPResult(status: status, error: .cancelled)))
        }
        if !cancelledCompletions.isEmpty { completionTimer.schedule(after: .zero) }

        let starts = deferredStarts
        deferredStarts = []
        for transfer in starts where !transfer.cancelled {
            if let error = add(transfer) {
                _ = detach(transfer)
                transfer.complete(HTTPResult(status: 0, error: error))
            }
        }

        // A completion callback may cancel or start other transfers; each entry is checked again.
        for (transfer, code) in done where transfer.easy != nil && !transfer.cancelled {
            let result = transfer.result(for: code)
            _ = detach(transfer)
            transfer.complete(result)
        }
    }
}
