import Glibc

/// The terminal under the interactive chat: raw mode, its width, and writes that survive a
/// non-blocking descriptor. This is the thin I/O half of `LineEditor`: it performs, it decides
/// nothing.
///
/// Raw mode turns off what the kernel's line discipline would do with keys (echo, line
/// buffering, Ctrl-C as SIGINT, Ctrl-S/Ctrl-Q flow control, CR to LF) so that every byte reaches
/// the editor, but keeps output processing (OPOST), so "\n" still prints as CRLF and the rest of
/// the client's output needs no change. It also turns on bracketed paste, so that a pasted
/// newline does not send half a paste.
///
/// The saved settings are put back by `restore()`, by `deinit`, and at process exit (an
/// `atexit` handler), so that an `exit()` anywhere does not leave the user's shell in raw mode.
/// A signal that kills the process skips all three: the caller should catch SIGTERM and SIGHUP
/// on the loop and exit normally.
public final class Terminal {
    /// The descriptor keys are read from (the caller watches it with an `IOEvent`).
    public let fd: Int32
    /// The descriptor output goes to.
    public let output: Int32
    private let saved: termios
    public private(set) var isRaw = false

    /// Nil when `fd` or `output` is not a terminal (input from a pipe or a file, output
    /// redirected): then there is nothing to edit and the caller reads plain lines.
    public init?(fd: Int32 = 0, output: Int32 = 1) {
        guard isatty(fd) == 1, isatty(output) == 1 else { return nil }
        var settings = termios()
        guard tcgetattr(fd, &settings) == 0 else { return nil }
        self.fd = fd
        self.output = output
        saved = settings
    }

    deinit { restore() }

    /// Switches the terminal to raw mode; false if the terminal refused.
    @discardableResult
    public func enterRawMode() -> Bool {
        guard !isRaw else { return true }
        var raw = saved
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | ICRNL)
        raw.c_oflag |= tcflag_t(OPOST)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        // TCSADRAIN, not TCSAFLUSH: keys typed before the chat started are kept.
        guard tcsetattr(fd, TCSADRAIN, &raw) == 0 else { return false }
        isRaw = true
        armExitRestore(fd: fd, output: output, settings: saved)
        write(Self.bracketedPasteOn)
        return true
    }

    /// Puts back the settings found at `init`. Safe to call more than once.
    public func restore() {
        guard isRaw else { return }
        isRaw = false
        write(Self.bracketedPasteOff)
        var settings = saved
        _ = tcsetattr(fd, TCSADRAIN, &settings)
        disarmExitRestore(fd: fd)
    }

    /// Columns of the terminal, 80 if it does not say. Read it again on SIGWINCH.
    public var width: Int {
        var size = winsize()
        if ioctl(output, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        if ioctl(fd, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    /// Writes all of `bytes`. The output may share its open file with a non-blocking standard
    /// input (a terminal is usually one file on fds 0, 1 and 2), so EAGAIN waits for room
    /// instead of dropping output. Other errors (the terminal hung up) drop the rest: there is
    /// no one left to read it.
    public func write(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(output, $0.baseAddress, $0.count) }
            if n > 0 { offset += n; continue }
            guard n < 0 else { return }
            switch errno {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                var p = pollfd(fd: output, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, -1)
            default:
                return
            }
        }
    }

    /// Draws the editor's line (after `.redraw`, `.clearScreen` or a reply).
    public func show(prompt: String, editor: LineEditor) {
        write(editor.render(prompt: prompt, width: width))
    }

    /// Prints `text` (a status line, a push) above the line being typed, then draws the line
    /// again below it, so asynchronous output never mixes with what the user is typing.
    public func printAbove(_ text: String, prompt: String, editor: LineEditor) {
        var bytes = Self.clearLine
        bytes += text.utf8
        if !text.isEmpty, !text.hasSuffix("\n") { bytes.append(0x0A) }
        bytes += editor.render(prompt: prompt, width: width)
        write(bytes)
    }

    /// Clears the row of the line being typed, for output that takes the row over (a streamed
    /// reply). Call `show` when it is done.
    public func hideLine() {
        write(Self.clearLine)
    }

    /// Clears the screen and puts the cursor at its top left (Ctrl-L); `show` the line after.
    public func clearScreen() {
        write(Array("\u{1B}[H\u{1B}[2J".utf8))
    }

    static let clearLine: [UInt8] = [0x0D] + LineEditor.eraseToEndOfLine
    static let bracketedPasteOn = Array("\u{1B}[?2004h".utf8)
    static let bracketedPasteOff = Array("\u{1B}[?2004l".utf8)
}

/// What the `atexit` handler puts back. A C handler takes no context, so this must be a global.
/// It is `nonisolated(unsafe)` because the compiler cannot see that it is safe: it is written
/// only by `Terminal` on the thread that runs the event loop (a `Terminal` is confined to it, as
/// every reactor object is), and read by the handler while that same thread is exiting.
nonisolated(unsafe) private var exitRestore = ExitRestore()

private struct ExitRestore {
    var registered = false
    var armed = false
    var fd: Int32 = -1
    var output: Int32 = -1
    var settings = termios()
}

private func armExitRestore(fd: Int32, output: Int32, settings: termios) {
    exitRestore.fd = fd
    exitRestore.output = output
    exitRestore.settings = settings
    exitRestore.armed = true
    if !exitRestore.registered {
        exitRestore.registered = true
        atexit(restoreTerminalAtExit)
    }
}

private func disarmExitRestore(fd: Int32) {
    if exitRestore.fd == fd { exitRestore.armed = false }
}

/// The `atexit` handler; internal so that a test can run it without exiting.
func restoreTerminalAtExit() {
    guard exitRestore.armed else { return }
    exitRestore.armed = false
    _ = Terminal.bracketedPasteOff.withUnsafeBytes { write(exitRestore.output, $0.baseAddress, $0.count) }
    _ = tcsetattr(exitRestore.fd, TCSADRAIN, &exitRestore.settings)
}
