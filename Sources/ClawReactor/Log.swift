import Glibc

/// Leveled logging to stderr, one line per event (journald adds the time stamps). Callers must
/// never pass secrets: keys, pre-shared keys, bootstrap keys and API keys stay out of log text.
public enum LogLevel: Int, Comparable, Sendable {
    case debug, info, notice, warning, error
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
    /// The systemd/syslog priority prefix, so journald files lines under the right level.
    var prefix: String {
        switch self {
        case .debug: return "<7>debug"
        case .info: return "<6>info"
        case .notice: return "<5>notice"
        case .warning: return "<4>warning"
        case .error: return "<3>error"
        }
    }
}

public final class Logger {
    public var minimum: LogLevel
    private let subsystem: String

    public init(_ subsystem: String, minimum: LogLevel = .info) {
        self.subsystem = subsystem
        self.minimum = minimum
    }

    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard level >= minimum else { return }
        let line = "\(level.prefix) \(subsystem): \(message())\n"
        var bytes = Array(line.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    public func debug(_ m: @autoclosure () -> String) { log(.debug, m()) }
    public func info(_ m: @autoclosure () -> String) { log(.info, m()) }
    public func notice(_ m: @autoclosure () -> String) { log(.notice, m()) }
    public func warning(_ m: @autoclosure () -> String) { log(.warning, m()) }
    public func error(_ m: @autoclosure () -> String) { log(.error, m()) }
}
