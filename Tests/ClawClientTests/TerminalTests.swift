import Foundation
import Glibc
import Testing
@testable import ClawClient

/// A pseudo-terminal: the test plays the terminal emulator on `master`, the client gets `slave`.
private final class PTY {
    let master: Int32
    let slave: Int32

    init(columns: UInt16 = 0) {
        var m: Int32 = -1
        var s: Int32 = -1
        var size = winsize(ws_row: 24, ws_col: columns, ws_xpixel: 0, ws_ypixel: 0)
        precondition(openpty(&m, &s, nil, nil, &size) == 0, "openpty failed")
        master = m
        slave = s
    }

    deinit {
        close(slave)
        close(master)
    }

    var settings: termios {
        var t = termios()
        tcgetattr(slave, &t)
        return t
    }

    /// What the client wrote, read until `count` bytes came or `silence` ms passed without any.
    func read(atLeast count: Int, silence: Int32 = 500) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while out.count < count {
            var p = pollfd(fd: master, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, silence) == 1 else { break }
            let n = buf.withUnsafeMutableBytes { Glibc.read(master, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            out += buf[0..<n]
        }
        return out
    }

    /// Whatever is waiting, without waiting long.
    func readAvailable() -> [UInt8] { read(atLeast: Int.max, silence: 100) }
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func isRaw(_ t: termios) -> Bool {
    t.c_lflag & tcflag_t(ICANON | ECHO | ISIG | IEXTEN) == 0 && t.c_iflag & tcflag_t(IXON | ICRNL) == 0
        && t.c_oflag & tcflag_t(OPOST) != 0
}

/// Serialized: raw mode arms one process-wide exit handler.
@Suite(.serialized) struct TerminalTests {
    @Test func pipesAndFilesAreNotTerminals() {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        #expect(Terminal(fd: fds[0], output: fds[1]) == nil)
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        #expect(Terminal(fd: null, output: null) == nil)
        let pty = PTY()
        #expect(Terminal(fd: pty.slave, output: fds[1]) == nil)  // output redirected
        #expect(Terminal(fd: pty.slave, output: pty.slave) != nil)
    }

    @Test func rawModeClearsTheLineDisciplineAndRestorePutsItBack() throws {
        let pty = PTY()
        let before = pty.settings
        #expect(before.c_lflag & tcflag_t(ICANON) != 0)
        let terminal = try #require(Terminal(fd: pty.slave, output: pty.slave))
        #expect(terminal.enterRawMode())
        let raw = pty.settings
        #expect(isRaw(raw))
        withUnsafeBytes(of: raw.c_cc) { cc in
            #expect(cc[Int(VMIN)] == 1 && cc[Int(VTIME)] == 0)
        }
        #expect(pty.read(atLeast: 8) == bytes("\u{1B}[?2004h"))

        terminal.restore()
        #expect(pty.settings.c_lflag == before.c_lflag && pty.settings.c_iflag == before.c_iflag)
        #expect(pty.read(atLeast: 8) == bytes("\u{1B}[?2004l"))
        terminal.restore()  // idempotent: nothing more is written
        #expect(pty.readAvailable().isEmpty)
    }

    @Test func droppingTheTerminalRestoresIt() {
        let pty = PTY()
        let before = pty.settings
        do {
            let terminal = Terminal(fd: pty.slave, output: pty.slave)
            terminal?.enterRawMode()
            #expect(isRaw(pty.settings))
        }
        #expect(pty.settings.c_lflag == before.c_lflag)
    }

    @Test func theExitHandlerRestoresARawTerminal() throws {
        let pty = PTY()
        let before = pty.settings
        let terminal = try #require(Terminal(fd: pty.slave, output: pty.slave))
        terminal.enterRawMode()
        _ = pty.readAvailable()
        restoreTerminalAtExit()
        #expect(pty.settings.c_lflag == before.c_lflag)
        #expect(pty.read(atLeast: 8) == bytes("\u{1B}[?2004l"))
        // Disarmed once run, and after a restore.
        restoreTerminalAtExit()
        terminal.restore()
        _ = pty.readAvailable()
        terminal.enterRawMode()
        terminal.restore()
        _ = pty.readAvailable()
        restoreTerminalAtExit()
        #expect(pty.readAvailable().isEmpty)
    }

    @Test func theWidthComesFromTheTerminalOrDefaultsTo80() throws {
        let wide = PTY(columns: 132)
        #expect(try #require(Terminal(fd: wide.slave, output: wide.slave)).width == 132)
        let unknown = PTY(columns: 0)
        #expect(try #require(Terminal(fd: unknown.slave, output: unknown.slave)).width == 80)
    }

    @Test func printAboveClearsTheRowPrintsAndRedrawsTheLine() throws {
        let pty = PTY(columns: 40)
        let terminal = try #require(Terminal(fd: pty.slave, output: pty.slave))
        terminal.enterRawMode()
        _ = pty.readAvailable()
        var editor = LineEditor()
        _ = editor.feed(bytes("typing"))
        terminal.printAbove("[connected]", prompt: "> ", editor: editor)
        // OPOST is kept, so the newline reaches the terminal as CRLF.
        let expected = bytes("\r\u{1B}[K[connected]\r\n") + editor.render(prompt: "> ", width: 40)
        #expect(pty.read(atLeast: expected.count) == expected)
        terminal.hideLine()
        #expect(pty.read(atLeast: 4) == bytes("\r\u{1B}[K"))
        terminal.restore()
    }

    @Test func writeWaitsOutANonBlockingDescriptorAndLosesNothing() throws {
        let pty = PTY()
        let terminal = try #require(Terminal(fd: pty.slave, output: pty.slave))
        terminal.enterRawMode()
        _ = pty.readAvailable()
        _ = fcntl(pty.slave, F_SETFL, fcntl(pty.slave, F_GETFL) | O_NONBLOCK)
        let payload = (0..<300_000).map { UInt8(ascii: "a") + UInt8($0 % 26) }
        let master = pty.master
        let reader = Reader(fd: master, count: payload.count)
        reader.start()
        terminal.write(payload)
        reader.done.wait()
        #expect(reader.received == payload)
        terminal.restore()
    }
}

/// Drains the master side on another thread while the test thread writes more than the pty can
/// buffer. `received` is read only after `done` is signalled.
private final class Reader: @unchecked Sendable {
    let fd: Int32
    let count: Int
    var received: [UInt8] = []
    let done = DispatchSemaphore(value: 0)

    init(fd: Int32, count: Int) {
        self.fd = fd
        self.count = count
    }

    func start() {
        DispatchQueue.global().async { self.run() }
    }

    private func run() {
        var buf = [UInt8](repeating: 0, count: 65_536)
        while received.count < count {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 5_000) == 1 else { break }
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { break }
            received += buf[0..<n]
        }
        done.signal()
    }
}
