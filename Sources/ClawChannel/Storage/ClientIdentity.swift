import ClawCrypto
import ClawReactor

/// What a paired device keeps in `~/.config/clawchat/identity` (mode 0600): its static key, the
/// server's public key and addresses, and its pre-shared key.
public struct ClientIdentity {
    public var deviceID: UInt64
    public var deviceName: String
    public var staticKey: X25519KeyPair
    public var serverPublicKey: [UInt8]
    public var psk: SecureBytes
    public var cipher: AEADCipher
    public var servers: [SocketAddress]
    /// The server's port rotation, once it told us (in band, after pairing).
    public var rotation: PortRotation?
    /// Where it was loaded from (not stored in the file).
    public var path: String?

    public init(deviceID: UInt64, deviceName: String, staticKey: X25519KeyPair, serverPublicKey: [UInt8],
                psk: SecureBytes, cipher: AEADCipher, servers: [SocketAddress]) {
        self.deviceID = deviceID
        self.deviceName = deviceName
        self.staticKey = staticKey
        self.serverPublicKey = serverPublicKey
        self.psk = psk
        self.cipher = cipher
        self.servers = servers
    }

    /// Saves the rotation settings the server announced, if they are new.
    public func remember(_ rotation: PortRotation) {
        guard rotation != self.rotation, let path else { return }
        var updated = self
        updated.rotation = rotation
        try? updated.save(to: path)
    }

    public var credentials: ClientCredentials {
        ClientCredentials(staticKey: staticKey, serverPublicKey: serverPublicKey, psk: psk,
                          mode: .paired(deviceID: deviceID), cipher: cipher, deviceName: deviceName)
    }

    public static func defaultDirectory(home: String) -> String { "\(home)/.config/clawchat" }

    public func save(to path: String) throws(StoreError) {
        var t = "# ClawChat device identity. Secret: anyone with this file can talk to your server.\n"
        t += "version = 1\n"
        t += "device-id = \(hexString(withUnsafeBytes(of: deviceID.bigEndian) { Array($0) }))\n"
        t += "device-name = \(deviceName)\n"
        t += "private-key = \(Base64.encode(staticKey.privateKey.copyToArray()))\n"
        t += "server-public-key = \(Base64.encode(serverPublicKey))\n"
        t += "psk = \(Base64.encode(psk.copyToArray()))\n"
        t += "cipher = \(cipher == .aes256gcm ? "aes256gcm" : "chacha20poly1305")\n"
        for s in servers { t += "server = \(s)\n" }
        if let r = rotation {
            t += "rotation-secret = \(Base64.encode(r.secret))\n"
            t += "rotation-range = \(r.range.lowerBound)-\(r.range.upperBound)\n"
            t += "rotation-period = \(r.period)\nrotation-grace = \(r.grace)\n"
        }
        do {
            try AtomicFile.ensureDirectory(AtomicFile.directory(of: path), mode: 0o700)
            try AtomicFile.write(Array(t.utf8), to: path, mode: 0o600)
        } catch { throw .io(error) }
    }

    /// Loads the identity; nil if the device was never paired.
    public static func load(from path: String) throws(StoreError) -> ClientIdentity? {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { throw .io(error) }
        guard let bytes else { return nil }
        let kv = try KeyValueText(String(decoding: bytes, as: UTF8.self))
        func need(_ k: String) throws(StoreError) -> String {
            guard let v = kv.value(k) else { throw .missing(k) }
            return v
        }
        func key32(_ k: String) throws(StoreError) -> [UInt8] {
            guard let b = Base64.decode(try need(k)), b.count == 32 else { throw .invalid(key: k, line: kv.line(k), "must be 32 bytes in Base64") }
            return b
        }
        guard try need("version") == "1" else { throw .invalid(key: "version", line: kv.line("version"), "is not 1") }
        guard let idBytes = bytesFromHex(try need("device-id")), idBytes.count == 8 else {
            throw .invalid(key: "device-id", line: kv.line("device-id"), "must be 16 hex digits")
        }
        guard let pair = try? X25519KeyPair(privateKey: SecureBytes(copying: try key32("private-key"))) else {
            throw .invalid(key: "private-key", line: kv.line("private-key"), "is not a valid X25519 key")
        }
        let cipher: AEADCipher
        switch try need("cipher") {
        case "aes256gcm": cipher = .aes256gcm
        case "chacha20poly1305": cipher = .chacha20poly1305
        default: throw .invalid(key: "cipher", line: kv.line("cipher"), "must be aes256gcm or chacha20poly1305")
        }
        var servers: [SocketAddress] = []
        for s in kv.values("server") {
            guard let a = try? SocketAddress(parsing: s) else { throw .invalid(key: "server", line: 0, "`\(s)` is not an address:port") }
            servers.append(a)
        }
        guard !servers.isEmpty else { throw .missing("server") }
        var rotation: PortRotation?
        if let secret = kv.value("rotation-secret") {
            let range = (kv.value("rotation-range") ?? "").split(separator: "-").compactMap { UInt16($0) }
            guard let key = Base64.decode(secret), range.count == 2, range[0] <= range[1],
                  let period = Int64(kv.value("rotation-period") ?? ""), let grace = Int64(kv.value("rotation-grace") ?? ""),
                  let r = try? PortRotation(secret: key, range: range[0]...range[1], period: period, grace: grace) else {
                throw .invalid(key: "rotation-secret", line: kv.line("rotation-secret"), "the port rotation settings are damaged")
            }
            rotation = r
        }
        var identity = ClientIdentity(deviceID: idBytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) },
                              deviceName: kv.value("device-name") ?? "", staticKey: pair,
                              serverPublicKey: try key32("server-public-key"), psk: SecureBytes(copying: try key32("psk")),
                              cipher: cipher, servers: servers)
        identity.rotation = rotation
        identity.path = path
        return identity
    }
}
