import ClawCrypto
import ClawReactor
import Glibc

/// The bootstrap key that encrypts security files (`CLAWCHAT_BOOTSTRAP_KEY`): a random 32-byte
/// key in Base64 is used directly; anything else is a passphrase stretched with Argon2id.
public enum BootstrapKey {
    case raw(SecureBytes)
    case passphrase(SecureBytes)

    /// The key from `file` if given, else from `CLAWCHAT_BOOTSTRAP_KEY`; nil when neither is set.
    /// Never from the command line itself, where `ps` would show it. Trailing newlines are ignored.
    public static func load(file: String?) throws(BootstrapKeyLoadError) -> BootstrapKey? {
        var text: String
        if let file {
            let bytes: [UInt8]?
            do { bytes = try AtomicFile.read(file, limit: 4096) } catch { throw .unreadable(error.description) }
            guard let bytes else { throw .unreadable("\(file) does not exist") }
            text = String(decoding: bytes, as: UTF8.self)
        } else if let env = getenv("CLAWCHAT_BOOTSTRAP_KEY") {
            text = String(cString: env)
        } else {
            return nil
        }
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        do { return try BootstrapKey(text) } catch { throw .invalid(error) }
    }

    public init(_ text: String) throws(SecurityFileError) {
        guard !text.isEmpty else { throw .emptyBootstrapKey }
        if let bytes = Base64.decode(text), bytes.count == 32 {
            self = .raw(SecureBytes(copying: bytes))
        } else {
            self = .passphrase(SecureBytes(copying: Array(text.utf8)))
        }
    }
}

/// Why the bootstrap key could not be read.
public enum BootstrapKeyLoadError: Error, CustomStringConvertible {
    case unreadable(String)
    case invalid(SecurityFileError)
    public var description: String {
        switch self {
        case .unreadable(let why): return "cannot read the bootstrap key: \(why)"
        case .invalid(let e): return e.description
        }
    }
}

/// Everything that can be wrong with a security file, each with what to do about it.
public enum SecurityFileError: Error, Equatable, CustomStringConvertible {
    case notASecurityFile
    case unsupportedVersion(UInt8)
    case truncated
    case wrongBootstrapKey
    case tampered
    case expired(validUntil: Int64, now: Int64)
    case notYetValid(validFrom: Int64, now: Int64)
    case malformedContents
    case emptyBootstrapKey
    case keyDerivationFailed
    case noReachableAddress

    public var description: String {
        switch self {
        case .notASecurityFile: return "this is not a ClawChat security file (wrong magic bytes)"
        case .unsupportedVersion(let v): return "security file format version \(v) is not supported by this client; update clawchat"
        case .truncated: return "the security file is truncated; copy it again from the server"
        case .wrongBootstrapKey: return "cannot decrypt the security file: wrong bootstrap key (CLAWCHAT_BOOTSTRAP_KEY), or its header is damaged"
        case .tampered: return "the security file was modified or corrupted after it was written (authentication failed); copy it again"
        case .expired(let until, let now): return "the security file expired \(now - until) s ago; run `clawchatd secfile` on the server for a fresh one"
        case .notYetValid(let from, let now): return "the security file is not valid for another \(from - now) s; check this machine's clock"
        case .malformedContents: return "the security file decrypted but its contents are malformed"
        case .emptyBootstrapKey: return "the bootstrap key is empty; set CLAWCHAT_BOOTSTRAP_KEY"
        case .keyDerivationFailed: return "could not derive the file key (Argon2id ran out of memory?)"
        case .noReachableAddress: return "no reachable address to write into the security file (never 0.0.0.0 or ::); set --public-address"
        }
    }
}

/// The contents of a security file: how to reach the server and the single-use pairing secret.
public struct SecurityFile {
    public static let fileName = "clawchat-current.sec"
    public static let validity: Int64 = 11 * 60
    /// A file dated this far in the future still opens (clock skew between server and laptop).
    public static let allowedSkew: Int64 = 120
    static let magic = Array("CLAWSEC\u{0}".utf8)
    static let formatVersion: UInt8 = 1
    static let headerLength = 64
    static let keyCheckLabel = Array("clawchat secfile key check".utf8)
    static let kdfLabel = Array("clawchat secfile v1".utf8)

    public var cipher: AEADCipher
    public var validFrom: Int64
    public var validUntil: Int64
    public var fileID: UInt64
    public var serverPublicKey: [UInt8]
    public var pairingSecret: SecureBytes
    public var port: UInt16
    public var addresses: [SocketAddress]

    public init(cipher: AEADCipher, validFrom: Int64, validUntil: Int64, fileID: UInt64, serverPublicKey: [UInt8],
                pairingSecret: SecureBytes, port: UInt16, addresses: [SocketAddress]) {
        self.cipher = cipher
        self.validFrom = validFrom
        self.validUntil = validUntil
        self.fileID = fileID
        self.serverPublicKey = serverPublicKey
        self.pairingSecret = pairingSecret
        self.port = port
        self.addresses = addresses
    }

    /// The endpoints to try, in order.
    public var endpoints: [SocketAddress] {
        addresses.map { a in
            a.family == .v4 ? SocketAddress(ipv4: a.addressBytes, port: port) : SocketAddress(ipv6: a.addressBytes, port: port)
        }
    }

    // MARK: Encoding

    func plaintext() -> [UInt8] {
        var p: [UInt8] = [Self.formatVersion, cipher == .aes256gcm ? 1 : 2, Wire.protocolVersion]
        p.appendBE(UInt64(bitPattern: validFrom))
        p.appendBE(UInt64(bitPattern: validUntil))
        p.appendBE(fileID)
        p += serverPublicKey
        p += pairingSecret.copyToArray()
        p.appendBE(port)
        p.append(UInt8(addresses.count))
        for a in addresses {
            p.append(a.family == .v4 ? 4 : 6)
            p += a.addressBytes
        }
        return p
    }

    /// Encrypts the file under the bootstrap key. Argon2id limits apply to passphrases only.
    public func sealed(with key: BootstrapKey, argon2OpsLimit: UInt64 = PasswordKDF.opsLimitInteractive,
                       argon2MemLimit: Int = PasswordKDF.memLimitInteractive) throws(SecurityFileError) -> [UInt8] {
        guard !addresses.isEmpty, !addresses.contains(where: \.isUnspecified) else { throw .noReachableAddress }
        let salt = Random.bytes(count: 16)
        var header = Self.magic + [Self.formatVersion]
        switch key {
        case .raw:
            header += [1, 0, 0]
            header.appendBE(UInt32(0))
            header.appendBE(UInt32(0))
        case .passphrase:
            header += [2, 0, 0]
            header.appendBE(UInt32(clamping: argon2OpsLimit))
            header.appendBE(UInt32(clamping: argon2MemLimit / 1024))
        }
        header += salt
        let fileKey = try Self.fileKey(key, salt: salt, ops: argon2OpsLimit, memKiB: argon2MemLimit / 1024)
        header += Array(HMACSHA256.authenticate(key: fileKey, data: Self.keyCheckLabel).prefix(16))
        let nonce = Random.bytes(count: 12)
        header += nonce
        guard let body = try? AEADCipher.chacha20poly1305.seal(key: fileKey, nonce: nonce, plaintext: plaintext(), ad: header) else {
            throw .keyDerivationFailed
        }
        return header + body
    }

    /// Decrypts and validates a security file at UNIX time `now`.
    public static func open(_ bytes: [UInt8], with key: BootstrapKey, now: Int64) throws(SecurityFileError) -> SecurityFile {
        guard bytes.count >= magic.count, Array(bytes[0..<magic.count]) == magic else {
            throw bytes.count < magic.count && magic.starts(with: bytes) && !bytes.isEmpty ? .truncated : .notASecurityFile
        }
        guard bytes.count > magic.count else { throw .truncated }
        guard bytes[8] == formatVersion else { throw .unsupportedVersion(bytes[8]) }
        guard bytes.count >= headerLength + AEADCipher.tagLength else { throw .truncated }
        let kdf = bytes[9]
        let ops = UInt64(bytes.readBE32(at: 12))
        let memKiB = Int(bytes.readBE32(at: 16))
        let salt = Array(bytes[20..<36])
        let check = Array(bytes[36..<52])
        let nonce = Array(bytes[52..<64])
        let expectedKind: UInt8
        switch key {
        case .raw: expectedKind = 1
        case .passphrase: expectedKind = 2
        }
        // A file written with a raw key cannot open with a passphrase and vice versa.
        guard kdf == expectedKind else { throw kdf == 1 || kdf == 2 ? .wrongBootstrapKey : .notASecurityFile }
        // Refuse absurd Argon2 parameters from the file rather than allocating gigabytes.
        if kdf == 2 && (ops > 16 || memKiB > 256 << 10 || ops < PasswordKDF.opsLimitMin) { throw .tampered }
        let fileKey = try fileKey(key, salt: salt, ops: ops, memKiB: memKiB)
        let actualCheck = Array(HMACSHA256.authenticate(key: fileKey, data: keyCheckLabel).prefix(16))
        guard constantTimeEqual(actualCheck, check) else { throw .wrongBootstrapKey }
        let header = Array(bytes[0..<headerLength])
        let body = Array(bytes[headerLength...])
        guard let plain = try? AEADCipher.chacha20poly1305.open(key: fileKey, nonce: nonce, ciphertext: body, ad: header) else {
            throw .tampered
        }
        let file = try parse(plain)
        if now >= file.validUntil { throw .expired(validUntil: file.validUntil, now: now) }
        if file.validFrom > now + allowedSkew { throw .notYetValid(validFrom: file.validFrom, now: now) }
        return file
    }

    static func parse(_ p: [UInt8]) throws(SecurityFileError) -> SecurityFile {
        var r = ByteReader(p)
        guard r.u8() == formatVersion, let suite = r.u8(), suite == 1 || suite == 2, r.u8() == Wire.protocolVersion,
              let from = r.u64(), let until = r.u64(), let id = r.u64(), let spub = r.take(32),
              let secret = r.take(32), let port = r.u16(), let n = r.u8() else { throw .malformedContents }
        var addrs: [SocketAddress] = []
        for _ in 0..<n {
            switch r.u8() {
            case 4: guard let b = r.take(4) else { throw .malformedContents }; addrs.append(SocketAddress(ipv4: b, port: port))
            case 6: guard let b = r.take(16) else { throw .malformedContents }; addrs.append(SocketAddress(ipv6: b, port: port))
            default: throw .malformedContents
            }
        }
        guard r.remaining == 0, !addrs.isEmpty else { throw .malformedContents }
        return SecurityFile(cipher: suite == 1 ? .aes256gcm : .chacha20poly1305, validFrom: Int64(bitPattern: from),
                            validUntil: Int64(bitPattern: until), fileID: id, serverPublicKey: spub,
                            pairingSecret: SecureBytes(copying: secret), port: port, addresses: addrs)
    }

    static func fileKey(_ key: BootstrapKey, salt: [UInt8], ops: UInt64, memKiB: Int) throws(SecurityFileError) -> SecureBytes {
        switch key {
        case .raw(let k):
            return SecureBytes(copying: HMACSHA256.authenticate(key: k, data: kdfLabel + salt))
        case .passphrase(let p):
            do {
                return try PasswordKDF.argon2id(passphrase: p.copyToArray(), salt: salt, outputLength: 32,
                                                opsLimit: ops, memLimit: memKiB * 1024)
            } catch {
                throw .keyDerivationFailed
            }
        }
    }
}
