import Glibc

/// An IPv4 or IPv6 address with a port: a plain value, hashable, cheap to copy, no allocation.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }

    public let family: Family
    /// Network-order address bytes: 4 for IPv4, 16 for IPv6 (stored in 16 with the rest zero).
    private let high: UInt64
    private let low: UInt64
    public let port: UInt16
    public let scopeID: UInt32

    /// Parses `1.2.3.4:80`, `[::1]:80`, or (with `port`) a bare address.
    public init(parsing text: String, port defaultPort: UInt16? = nil) throws(ReactorError) {
        var host = Substring(text)
        var port = defaultPort
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw .invalidAddress(text) }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if rest.hasPrefix(":") { port = UInt16(rest.dropFirst()) } else if !rest.isEmpty { throw .invalidAddress(text) }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            port = UInt16(host[host.index(after: colon)...])
            host = host[..<colon]
        }
        guard let port else { throw .invalidAddress(text) }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, String(host), &v4) == 1 {
            self.init(ipv4NetworkOrder: v4.s_addr, port: port)
        } else if inet_pton(AF_INET6, String(host), &v6) == 1 {
            self.init(ipv6: withUnsafeBytes(of: v6) { Array($0) }, port: port)
        } else {
            throw .invalidAddress(text)
        }
    }

    /// An IPv4 address given in network byte order (as in `in_addr.s_addr`).
    public init(ipv4NetworkOrder addr: UInt32, port: UInt16) {
        family = .v4
        high = UInt64(UInt32(bigEndian: addr)) << 32
        low = 0
        self.port = port
        scopeID = 0
    }

    /// An address from its raw bytes: 4 bytes for IPv4, 16 for IPv6.
    public init(ipv6 bytes: [UInt8], port: UInt16, scopeID: UInt32 = 0) {
        precondition(bytes.count == 16, "IPv6 addresses have 16 bytes")
        family = .v6
        high = bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }
        low = bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) }
        self.port = port
        self.scopeID = scopeID
    }

    public init(ipv4 bytes: [UInt8], port: UInt16) {
        precondition(bytes.count == 4, "IPv4 addresses have 4 bytes")
        let host = bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        self.init(ipv4NetworkOrder: host.bigEndian, port: port)
    }

    public static func loopback(_ family: Family = .v4, port: UInt16 = 0) -> SocketAddress {
        family == .v4 ? SocketAddress(ipv4: [127, 0, 0, 1], port: port)
                      : SocketAddress(ipv6: Array(repeating: 0, count: 15) + [1], port: port)
    }

    public static func any(_ family: Family = .v4, port: UInt16 = 0) -> SocketAddress {
        family == .v4 ? SocketAddress(ipv4: [0, 0, 0, 0], port: port)
                      : SocketAddress(ipv6: Array(repeating: 0, count: 16), port: port)
    }

    /// The address bytes in network order (4 or 16).
    public var addressBytes: [UInt8] {
        let all = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        return family == .v4 ? Array(all[0..<4]) : all
    }

    /// True for 0.0.0.0 and ::, which must never be handed to a peer as a place to send to.
    public var isUnspecified: Bool { high == 0 && low == 0 }

    /// The same address with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        family == .v4 ? SocketAddress(ipv4: addressBytes, port: port) : SocketAddress(ipv6: addressBytes, port: port, scopeID: scopeID)
    }

    public var isLoopback: Bool {
        family == .v4 ? addressBytes[0] == 127 : (high == 0 && low == 1)
    }

    /// The address without the port, as text.
    public var host: String {
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var bytes = addressBytes
        _ = inet_ntop(family == .v4 ? AF_INET : AF_INET6, &bytes, &buf, socklen_t(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String { family == .v4 ? "\(host):\(port)" : "[\(host)]:\(port)" }

    /// Calls `body` with this address as a `sockaddr`.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var storage = sockaddr_storage()
        let len = write(to: &storage)
        return try withUnsafePointer(to: &storage) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, len) }
        }
    }

    /// Fills `storage` and returns the length to pass to the kernel.
    public func write(to storage: inout sockaddr_storage) -> socklen_t {
        let bytes = addressBytes
        switch family {
        case .v4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            withUnsafeMutableBytes(of: &sin.sin_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) } }
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .v6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { $0.copyBytes(from: bytes) }
            withUnsafeMutableBytes(of: &storage) { dst in withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) } }
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Reads an address the kernel filled in; nil for families other than IPv4 and IPv6.
    public init?(storage: UnsafeRawPointer) {
        let family = storage.load(as: sockaddr.self).sa_family
        if family == sa_family_t(AF_INET) {
            let sin = storage.loadUnaligned(as: sockaddr_in.self)
            self.init(ipv4NetworkOrder: sin.sin_addr.s_addr, port: UInt16(bigEndian: sin.sin_port))
        } else if family == sa_family_t(AF_INET6) {
            let sin6 = storage.loadUnaligned(as: sockaddr_in6.self)
            let bytes = withUnsafeBytes(of: sin6.sin6_addr) { Array($0) }
            self.init(ipv6: bytes, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        } else {
            return nil
        }
    }
}
