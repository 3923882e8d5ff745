import ClawCrypto

/// The datagram layouts of the channel. Every datagram starts with a one-byte type and three
/// reserved zero bytes; all integers are big-endian. See docs/PROTOCOL.md.
public enum PacketType: UInt8, Sendable {
    case initiation = 1
    case response = 2
    case transport = 4
}

/// Specification constants of the wire format.
public enum Wire {
    /// Noise prologue: binds every handshake to this protocol and version.
    public static let prologue = Array("ClawChat channel v1".utf8)
    public static let protocolVersion: UInt8 = 1
    public static let macLength = 16
    public static let headerLength = 4
    /// type(1) reserved(3) receiver(4) counter(8): the associated data of every transport packet.
    public static let transportHeaderLength = 16
    public static let tagLength = 16
    /// The smallest valid transport packet: a header and an empty (keepalive) AEAD body.
    public static let minTransportLength = transportHeaderLength + tagLength
    /// Noise IKpsk2 message 1 without payload: e (32) + encrypted s (32 + 16) + payload tag (16).
    public static let noiseInitiationOverhead = 32 + 48 + 16
    /// Noise IKpsk2 message 2 without payload: e (32) + payload tag (16).
    public static let noiseResponseOverhead = 32 + 16
    /// Bound on handshake payloads (names and so on): keeps initiations within one small datagram.
    public static let maxHandshakePayload = 256
    /// Largest UDP payload of any channel datagram, sent or accepted.
    public static let maxDatagram = 1200
    /// Largest transport plaintext; with overhead, 1200 bytes of UDP payload.
    public static let maxTransportPlaintext = maxDatagram - minTransportLength
    /// Largest application message in one datagram (the plaintext's first byte is its kind).
    public static let maxApplicationData = maxTransportPlaintext - 1

    static let mac1Label = Array("mac1----".utf8)
    static let pairingMac1Label = Array("mac1-pairing----".utf8)

    /// mac1 key for initiations from paired devices (and for responses, keyed by the client's key):
    /// SHA-256("mac1----" || public key). Anyone who knows the server's public key can compute it.
    public static func mac1Key(publicKey: [UInt8]) -> [UInt8] {
        SHA256.hash(mac1Label + publicKey)
    }

    /// mac1 key for pairing initiations: SHA-256("mac1-pairing----" || server key || pairing secret).
    /// Only a holder of the security file can compute it, so pairing attempts without one get silence.
    public static func pairingMac1Key(serverPublicKey: [UInt8], pairingSecret: SecureBytes) -> [UInt8] {
        SHA256.hash(pairingMac1Label + serverPublicKey + pairingSecret.copyToArray())
    }

    /// mac1 = keyed BLAKE2b-128 over every byte of the datagram before the mac.
    static func mac1(key: [UInt8], over bytes: ArraySlice<UInt8>) -> [UInt8] {
        // Key and output lengths are constants inside BLAKE2b's limits, so this cannot throw.
        (try? Blake2b.hash(Array(bytes), key: key, outputLength: macLength)) ?? []
    }

    static func header(_ type: PacketType) -> [UInt8] { [type.rawValue, 0, 0, 0] }

    /// Builds an initiation datagram: header | sender index | Noise message 1 | mac1.
    static func initiation(senderIndex: UInt32, noise: [UInt8], mac1Key: [UInt8]) -> [UInt8] {
        var out = header(.initiation)
        out.appendBE(senderIndex)
        out += noise
        out += mac1(key: mac1Key, over: out[...])
        return out
    }

    /// Builds a response datagram: header | sender index | receiver index | Noise message 2 | mac1.
    static func response(senderIndex: UInt32, receiverIndex: UInt32, noise: [UInt8], mac1Key: [UInt8]) -> [UInt8] {
        var out = header(.response)
        out.appendBE(senderIndex)
        out.appendBE(receiverIndex)
        out += noise
        out += mac1(key: mac1Key, over: out[...])
        return out
    }

    /// Checks the trailing mac1 of a handshake datagram in constant time.
    static func verifyMac1(_ datagram: [UInt8], key: [UInt8]) -> Bool {
        guard datagram.count > macLength else { return false }
        let body = datagram[..<(datagram.count - macLength)]
        let expected = mac1(key: key, over: body)
        return constantTimeEqual(expected, Array(datagram[(datagram.count - macLength)...]))
    }

    /// A parsed initiation (mac1 not yet checked).
    struct Initiation {
        let senderIndex: UInt32
        let noise: [UInt8]
        init?(_ d: [UInt8]) {
            guard d.count >= headerLength + 4 + noiseInitiationOverhead + macLength,
                  d.count <= headerLength + 4 + noiseInitiationOverhead + maxHandshakePayload + macLength,
                  d[0] == PacketType.initiation.rawValue, d[1] == 0, d[2] == 0, d[3] == 0 else { return nil }
            senderIndex = d.readBE32(at: 4)
            noise = Array(d[8..<(d.count - macLength)])
        }
    }

    /// A parsed response (mac1 not yet checked).
    struct Response {
        let senderIndex: UInt32
        let receiverIndex: UInt32
        let noise: [UInt8]
        init?(_ d: [UInt8]) {
            guard d.count >= headerLength + 8 + noiseResponseOverhead + macLength,
                  d.count <= headerLength + 8 + noiseResponseOverhead + maxHandshakePayload + macLength,
                  d[0] == PacketType.response.rawValue, d[1] == 0, d[2] == 0, d[3] == 0 else { return nil }
            senderIndex = d.readBE32(at: 4)
            receiverIndex = d.readBE32(at: 8)
            noise = Array(d[12..<(d.count - macLength)])
        }
    }

    /// The receiver index and counter of a transport datagram, if it is shaped like one.
    static func transportHeader(_ d: UnsafeRawBufferPointer) -> (receiver: UInt32, counter: UInt64)? {
        guard d.count >= minTransportLength, d.count <= maxDatagram,
              d[0] == PacketType.transport.rawValue, d[1] == 0, d[2] == 0, d[3] == 0 else { return nil }
        return (d.readBE32(at: 4), d.readBE64(at: 8))
    }

    static func transportHeaderBytes(receiver: UInt32, counter: UInt64) -> [UInt8] {
        var h = header(.transport)
        h.appendBE(receiver)
        h.appendBE(counter)
        return h
    }
}

/// What the initiator says inside Noise message 1 (encrypted to the server).
struct InitiationPayload: Equatable {
    /// Strictly increasing per device: a replayed initiation carries an old one and is ignored.
    var timestamp: UInt64
    /// The device's chosen name, used when pairing.
    var deviceName: String

    func encoded() -> [UInt8] {
        var out: [UInt8] = [Wire.protocolVersion]
        out.appendBE(timestamp)
        let name = Array(deviceName.utf8.prefix(64))
        out.append(UInt8(name.count))
        out += name
        return out
    }

    init(timestamp: UInt64, deviceName: String) {
        self.timestamp = timestamp
        self.deviceName = deviceName
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.u8() == Wire.protocolVersion, let ts = r.u64(), let n = r.u8(),
              let name = r.take(Int(n)), r.remaining == 0 else { return nil }
        timestamp = ts
        deviceName = String(decoding: name, as: UTF8.self)
    }
}

/// What the responder says inside Noise message 2: the server's rekey interval (the client
/// initiates every rekey, so it must know when the server wants one) and, for a pairing, the
/// device's permanent id and pre-shared key (readable only by the holder of the pairing secret,
/// since psk2 is mixed in before this payload is encrypted).
struct ResponsePayload {
    var rekeyAfterSeconds: UInt32
    var deviceID: UInt64?
    var devicePSK: [UInt8]?

    func encoded() -> [UInt8] {
        var out: [UInt8] = [Wire.protocolVersion]
        if let deviceID, let devicePSK {
            out.append(1)
            out.appendBE(rekeyAfterSeconds)
            out.appendBE(deviceID)
            out += devicePSK
        } else {
            out.append(0)
            out.appendBE(rekeyAfterSeconds)
        }
        return out
    }

    init(rekeyAfterSeconds: UInt32, deviceID: UInt64? = nil, devicePSK: [UInt8]? = nil) {
        self.rekeyAfterSeconds = rekeyAfterSeconds
        self.deviceID = deviceID
        self.devicePSK = devicePSK
    }

    init?(decoding bytes: [UInt8]) {
        var r = ByteReader(bytes)
        guard r.u8() == Wire.protocolVersion, let kind = r.u8(), let rekey = r.u32() else { return nil }
        rekeyAfterSeconds = rekey
        switch kind {
        case 0 where r.remaining == 0:
            deviceID = nil
            devicePSK = nil
        case 1:
            guard let id = r.u64(), let psk = r.take(32), r.remaining == 0 else { return nil }
            deviceID = id
            devicePSK = psk
        default:
            return nil
        }
    }
}

/// The first byte of a non-empty transport plaintext. An empty plaintext is a keepalive.
public enum InnerKind: UInt8, Sendable {
    /// Application bytes for the layer above.
    case data = 1
    /// Client to server: destroy every key and revoke every device (the "compromised" command).
    case compromised = 2
    /// Server to client: the compromised request was carried out.
    case compromisedAck = 3
}
