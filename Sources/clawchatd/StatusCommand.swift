import ArgumentParser
import ClawReactor
import Glibc

/// `clawchatd status`: asks the running daemon through STATE_DIR/control.sock and prints what it
/// answers (aligned lines, or one JSON object with --json).
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the running daemon's sessions, rotation times, cron state and counters.")

    @OptionGroup var state: StateOptions

    @Flag(help: "Print one JSON object instead of aligned lines.")
    var json = false

    @Option(help: "Seconds to wait for the answer.")
    var timeout: Int = 5

    func run() throws {
        let path = "\(state.stateDir)/control.sock"
        let answer = try StatusClient.ask(json ? "status json" : "status", path: path, timeout: max(timeout, 1))
        if answer.hasPrefix("error: ") { throw CLIError("the daemon answered: \(String(answer.dropFirst(7)).trimmingCharacters(in: "\n"))") }
        print(answer, terminator: answer.hasSuffix("\n") ? "" : "\n")
    }
}

/// A blocking client of the control socket (the command runs no event loop).
enum StatusClient {
    static func ask(_ request: String, path: String, timeout: Int) throws -> String {
        var addr = sockaddr_un()
        guard path.utf8.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw CLIError("the control socket path is too long for AF_UNIX: \(path)")
        }
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw CLIError("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r != 0 {
            let e = errno
            switch e {
            case ENOENT:
                throw CLIError("clawchatd is not running for \(AtomicFile.directory(of: path)) (no \(path)); start it with `clawchatd run`")
            case ECONNREFUSED:
                throw CLIError("nothing answers on \(path): clawchatd is not running (the socket was left by a daemon that did not stop cleanly)")
            case EACCES, EPERM:
                throw CLIError("permission denied on \(path): run as the daemon's user or root")
            case EAGAIN, EWOULDBLOCK, EINPROGRESS:
                throw CLIError("the daemon is busy on \(path) (too many status requests at once); try again")
            default:
                throw CLIError("cannot connect to \(path): \(String(cString: strerror(e)))")
            }
        }
        let line = Array((request + "\n").utf8)
        var off = 0
        while off < line.count {
            let n = line[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError("cannot send to \(path): \(String(cString: strerror(errno)))")
            }
            off += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16_384)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw CLIError("the daemon did not answer within \(timeout) s") }
                throw CLIError("cannot read from \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            out += buf[0..<n]
            if out.count > 16 << 20 { throw CLIError("the answer is too large") }
        }
        guard !out.isEmpty else {
            throw CLIError("the daemon closed the connection without an answer (refused: run as the daemon's user or root)")
        }
        return String(decoding: out, as: UTF8.self)
    }
}
