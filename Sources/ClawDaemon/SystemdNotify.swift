import ClawReactor
import Glibc

/// systemd's service notification protocol (sd_notify(3)) without libsystemd: when
/// `$NOTIFY_SOCKET` names an AF_UNIX datagram socket (a path, or an abstract name written with a
/// leading "@"), the daemon sends `READY=1` once it listens, `STOPPING=1` when it stops, and
/// `WATCHDOG=1` every half `$WATCHDOG_USEC` (when `$WATCHDOG_PID` is unset or names this process).
/// The pings run on a timer on the daemon's own loop, so a stuck loop stops them and systemd
/// restarts the service. Without `$NOTIFY_SOCKET` every method is a no-op.
///
/// Sends never block the loop (`MSG_DONTWAIT`): a lost notification is logged, not retried.
public final class SystemdNotify {
    /// Where to send, and how often to ping the watchdog, as read from the environment.
    public struct Settings: Equatable, Sendable {
        /// The socket as given (`/run/systemd/notify` or `@name`).
        public var socket: String
        /// Half of `WATCHDOG_USEC`, or nil when the watchdog is off or meant for another process.
        public var watchdogInterval: Duration?

        public init(socket: String, watchdogInterval: Duration?) {
            self.socket = socket
            self.watchdogInterval = watchdogInterval
        }
    }

    public let settings: Settings?
    private unowned let loop: EventLoop
    private let log: Logger
    private var fd: Int32 = -1
    private var watchdog: Timer?
    private var failures = 0
    public private(set) var isReady = false
    public private(set) var isStopping = false
    /// Datagrams sent successfully (for tests and status lines).
    public private(set) var sent = 0

    /// Reads `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` through `environment` (the real
    /// process environment by default; tests pass their own).
    public init(loop: EventLoop, environment: (String) -> String? = SystemdNotify.processEnvironment,
                pid: pid_t = getpid(), log: Logger) {
        self.loop = loop
        self.log = log
        settings = Self.settings(environment: environment, pid: pid)
        if let s = settings, Self.socketAddress(s.socket) == nil {
            log.warning("NOTIFY_SOCKET \(s.socket) is not an absolute path or @abstract name; not notifying systemd")
        }
    }

    deinit {
        watchdog?.cancel()
        if fd >= 0 { close(fd) }
    }

    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    // MARK: Pure parts

    /// The settings the environment asks for; nil when `NOTIFY_SOCKET` is unset or empty.
    public static func settings(environment: (String) -> String?, pid: pid_t) -> Settings? {
        guard let socket = environment("NOTIFY_SOCKET"), !socket.isEmpty else { return nil }
        return Settings(socket: socket, watchdogInterval: watchdogInterval(usec: environment("WATCHDOG_USEC"),
                                                                           pid: environment("WATCHDOG_PID"), ownPID: pid))
    }

    /// How often to send `WATCHDOG=1`: half of `WATCHDOG_USEC` (at least 1 ms), as
    /// sd_watchdog_enabled(3) advises. Nil when `usec` is missing, not a positive decimal number,
    /// or when `pid` is set and is not `ownPID` (the watchdog belongs to another process).
    public static func watchdogInterval(usec: String?, pid: String?, ownPID: pid_t) -> Duration? {
        guard let usec, let micros = decimal(usec), micros > 0 else { return nil }
        if let pid {
            guard let p = decimal(pid), p > 0, p == UInt64(ownPID) else { return nil }
        }
        return max(.microseconds(Int64(min(micros, UInt64(Int64.max)) / 2)), .milliseconds(1))
    }

    /// One notification datagram: `KEY=value` lines joined by "\n". Newlines in a value would start
    /// a new assignment, so they become spaces.
    public static func message(_ fields: [(String, String)]) -> String {
        fields.map { key, value in
            "\(key)=\(String(value.map { $0 == "\n" || $0 == "\r" ? " " : $0 }))"
        }.joined(separator: "\n")
    }

    public static func readyMessage(status: String) -> String { message([("READY", "1"), ("STATUS", status)]) }
    public static func stoppingMessage(status: String) -> String { message([("STOPPING", "1"), ("STATUS", status)]) }
    public static let watchdogMessage = "WATCHDOG=1"

    /// The socket address for `NOTIFY_SOCKET` and its length: "/path" is a file system socket,
    /// "@name" an abstract one (a leading NUL, not terminated). Nil for anything else or too long.
    static func socketAddress(_ name: String) -> (sockaddr_un, socklen_t)? {
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        guard abstract || bytes.first == UInt8(ascii: "/"), bytes.count > 1 else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        if abstract { bytes[0] = 0 }
        guard bytes.count + (abstract ? 0 : 1) <= capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let length = MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1)
        return (address, socklen_t(length))
    }

    private static func decimal(_ text: String) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return UInt64(text)
    }

    // MARK: Notifications

    /// `READY=1` with a status line, once; then starts the watchdog pings.
    public func ready(status: String) {
        guard settings != nil, !isReady, !isStopping else { return }
        isReady = true
        send(Self.readyMessage(status: status))
        if let interval = settings?.watchdogInterval {
            let t = Timer(loop: loop) { [unowned self] in self.send(Self.watchdogMessage) }
            t.schedulePeriodic(every: interval)
            watchdog = t
            log.debug("systemd watchdog: pinging every \(interval)")
        }
    }

    /// A new status line (`systemctl status` shows it).
    public func status(_ text: String) {
        guard settings != nil, !isStopping else { return }
        send(Self.message([("STATUS", text)]))
    }

    /// `STOPPING=1`, once; stops the watchdog pings.
    public func stopping(status: String = "stopping") {
        guard settings != nil, !isStopping else { return }
        isStopping = true
        watchdog?.cancel()
        watchdog = nil
        send(Self.stoppingMessage(status: status))
    }

    private func send(_ text: String) {
        guard let name = settings?.socket, let (address, length) = Self.socketAddress(name) else { return }
        if fd < 0 {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return failed("socket", errno) }
        }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        if n == bytes.count { sent += 1 } else { failed("sendto \(name)", errno) }
    }

    private func failed(_ call: String, _ e: Int32) {
        failures += 1
        let text = "cannot notify systemd: \(call): \(String(cString: strerror(e)))"
        if failures == 1 { log.warning(text) } else { log.debug(text) }
    }
}
