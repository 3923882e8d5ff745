import ClawReactor
import ClawCrypto

/// The server's list of paired devices, one per line, in a 0600 file:
/// `device <id-hex> <public-key-base64> <psk-base64> <paired-unix> <name>`.
public enum DeviceStore {
    public static func load(_ path: String) throws(StoreError) -> [DeviceRecord] {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { throw .io(error) }
        guard let bytes else { return [] }
        var out: [DeviceRecord] = []
        for (i, raw) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count >= 5, f[0] == "device",
                  let idBytes = bytesFromHex(f[1]), idBytes.count == 8,
                  let pub = Base64.decode(String(f[2])), pub.count == 32,
                  let psk = Base64.decode(String(f[3])), psk.count == 32,
                  let at = Int64(f[4]) else {
                throw .syntax(line: i + 1, "expected `device <id> <public key> <psk> <paired-at> <name>`")
            }
            let id = idBytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            out.append(DeviceRecord(id: id, name: f.count > 5 ? String(f[5]) : "", publicKey: pub,
                                    psk: SecureBytes(copying: psk), pairedAt: at))
        }
        return out
    }

    public static func save(_ devices: [DeviceRecord], to path: String) throws(StoreError) {
        var text = "# ClawChat paired devices. Written by clawchatd; contains secrets (mode 0600).\n"
        for d in devices {
            text += "device \(d.idString) \(Base64.encode(d.publicKey)) \(Base64.encode(d.psk.copyToArray())) \(d.pairedAt) \(d.name)\n"
        }
        do { try AtomicFile.write(Array(text.utf8), to: path, mode: 0o600) } catch { throw .io(error) }
    }
}

/// The server's long-term static key: a 0600 file holding the Base64 private key.
public enum ServerKeyStore {
    /// Loads the key, or creates and stores a new one on first run.
    public static func loadOrCreate(_ path: String) throws(StoreError) -> X25519KeyPair {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { throw .io(error) }
        if let bytes {
            guard let priv = Base64.decode(String(decoding: bytes, as: UTF8.self)), priv.count == 32,
                  let pair = try? X25519KeyPair(privateKey: SecureBytes(copying: priv)) else {
                throw .invalid(key: "server key", line: 1, "is not a Base64 X25519 private key")
            }
            return pair
        }
        let pair = X25519KeyPair.generate()
        do {
            try AtomicFile.write(Array((Base64.encode(pair.privateKey.copyToArray()) + "\n").utf8), to: path, mode: 0o600)
        } catch { throw .io(error) }
        return pair
    }
}

/// The port-rotation secret (PortRotation): a 0600 file holding 32 random bytes in Base64.
public enum RotationKeyStore {
    public static func loadOrCreate(_ path: String) throws(StoreError) -> [UInt8] {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { throw .io(error) }
        if let bytes {
            guard let key = Base64.decode(String(decoding: bytes, as: UTF8.self)),
                  key.count == PortRotation.secretLength else {
                throw .invalid(key: "rotation key", line: 1, "is not 32 bytes in Base64")
            }
            return key
        }
        let key = Random.bytes(count: PortRotation.secretLength)
        do { try AtomicFile.write(Array((Base64.encode(key) + "\n").utf8), to: path, mode: 0o600) } catch { throw .io(error) }
        return key
    }
}
