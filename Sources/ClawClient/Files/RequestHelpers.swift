import ClawReactor
import ClawTransport

/// Runs `body` on the next loop turn, never from inside the call that asked for it (a
/// completion callback must not run before its caller got the transfer handle).
func onNextTurn(_ loop: EventLoop, _ body: @escaping () -> Void) {
    var timer: Timer?
    timer = Timer(loop: loop) {
        body()
        timer = nil
    }
    timer?.schedule(after: .zero)
}

extension OutgoingRequest {
    /// Drops the callbacks: the transfer that set them is done with this request.
    func detach() {
        onPartial = { _ in }
        onData = { _ in }
        onWritable = {}
        onDone = { _ in }
    }
}

extension OutgoingRequest {
    /// A request can end inside `request(...)` itself (the connection closed at that very
    /// moment), before its caller set `onDone`. Call this once `onDone` is set: such an end is
    /// reported as a connection failure, on the next loop turn.
    func reportIfEndedEarly(loop: EventLoop) {
        guard isDone else { return }
        let handler = onDone
        onNextTurn(loop) { handler(.failure(.connection("the connection ended as the request was sent"))) }
    }
}
