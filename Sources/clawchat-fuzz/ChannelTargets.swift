@testable import ClawChannel
import ClawCrypto
import ClawReactor

/// The channel's parsers: datagrams as the server and as a client with a handshake in flight
/// see them. Random bytes never pass mac1 (a keyed BLAKE2b), so each input is also sent with a
/// valid mac1 appended: that reaches Noise `ReadMessage`, the payload decoders and the session
/// code behind them, which is what an attacker who knows the server's public key can reach.
enum ChannelTargets {
    /// Fixed keys, so a crash input replays the same way (made once: the fuzzer is one thread
    /// and nothing mutates them).
    nonisolated(unsafe) static let serverKey = try! X25519KeyPair(privateKey: SecureBytes(copying: [UInt8](repeating: 1, count: 32)))
    nonisolated(unsafe) static let clientKey = try! X25519KeyPair(privateKey: SecureBytes(copying: [UInt8](repeating: 2, count: 32)))
    nonisolated(unsafe) static let psk = SecureBytes(copying: [UInt8](repeating: 3, count: 32))
    static let source = SocketAddress.loopback(port: 40_000)

    static func server(_ bytes: [UInt8]) {
        let device = DeviceRecord(id: 9, name: "fuzz", publicKey: clientKey.publicKey, psk: psk, pairedAt: 0)
        guard let s = try? ServerChannel(staticKey: serverKey, cipher: .chacha20poly1305, devices: [device]) else { return }
        s.setPairingSecrets([psk])
        let now = Instant(nanoseconds: 1_000_000_000)
        feed(s, bytes, now)
        // The same bytes as the body of an initiation with a valid mac1 (paired and pairing key).
        for key in [Wire.mac1Key(publicKey: serverKey.publicKey),
                    Wire.pairingMac1Key(serverPublicKey: serverKey.publicKey, pairingSecret: psk)] {
            var d: [UInt8] = [PacketType.initiation.rawValue, 0, 0, 0] + bytes
            d += Wire.mac1(key: key, over: d[...])
            feed(s, d, now)
        }
        // A genuine Noise message 1 from the paired key whose encrypted payload is the input:
        // what the payload decoder and the session code see from a device that holds its keys.
        if let proto = try? NoiseProtocol(name: channelProtocolName(.chacha20poly1305)),
           var hs = try? NoiseHandshakeState(protocol: proto, initiator: true, prologue: Wire.prologue,
                                             localStatic: clientKey, remoteStatic: serverKey.publicKey, psks: [psk]),
           let noise = try? hs.writeMessage(payload: Array(bytes.prefix(512))) {
            feed(s, Wire.initiation(senderIndex: 77, noise: noise, mac1Key: Wire.mac1Key(publicKey: serverKey.publicKey)), now)
        }
        _ = s.tick(now: now + .seconds(200))
        _ = InitiationPayload(decoding: bytes)
    }

    static func feed(_ s: ServerChannel, _ d: [UInt8], _ now: Instant) {
        _ = d.withUnsafeBytes { s.receive($0, from: source, now: now) }
    }

    static func client(_ bytes: [UInt8]) {
        let creds = ClientCredentials(staticKey: clientKey, serverPublicKey: serverKey.publicKey, psk: psk,
                                      mode: .paired(deviceID: 9), cipher: .chacha20poly1305, deviceName: "fuzz")
        guard let c = try? ClientChannel(credentials: creds) else { return }
        let now = Instant(nanoseconds: 1_000_000_000)
        // A handshake in flight, so a response has something to match.
        var sender: [UInt8] = [0, 0, 0, 0]
        for case .send(let initiation) in c.start(now: now, unixNanos: 1_796_115_000_000_000_000) {
            sender = Array(initiation[4..<8])
        }
        _ = bytes.withUnsafeBytes { c.receive($0, now: now) }
        // As a response to that initiation, with a valid mac1 (the client's key).
        var d: [UInt8] = [PacketType.response.rawValue, 0, 0, 0] + Array(bytes.prefix(4)) + sender + Array(bytes.dropFirst(4))
        d += Wire.mac1(key: Wire.mac1Key(publicKey: clientKey.publicKey), over: d[...])
        _ = d.withUnsafeBytes { c.receive($0, now: now) }
        _ = c.tick(now: now + .seconds(30), unixNanos: 1_796_115_030_000_000_000)
        _ = ResponsePayload(decoding: bytes)
    }

    static func stun(_ bytes: [UInt8]) {
        let id = [UInt8](repeating: 5, count: 12)
        _ = try? STUN.parseBindingResponse(bytes, transactionID: id)
        // With the right transaction id spliced in, so the attribute parser is reached.
        if bytes.count >= 20 {
            var b = bytes
            b.replaceSubrange(8..<20, with: id)
            _ = try? STUN.parseBindingResponse(b, transactionID: id)
        }
    }
}
