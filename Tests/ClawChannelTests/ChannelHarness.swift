import ClawCrypto
import ClawReactor
@testable import ClawChannel

/// A server and a client wired through an in-memory network on a fake clock. Datagrams are
/// delivered when `pump` runs; tests can capture, drop, replay or re-address them.
final class ChannelHarness {
    let clock = FakeClock()
    let server: ServerChannel
    var client: ClientChannel
    let serverAddress = SocketAddress(ipv4: [10, 0, 0, 1], port: 4000)
    var clientAddress = SocketAddress(ipv4: [192, 168, 1, 2], port: 50_000)
    var toServer: [(bytes: [UInt8], from: SocketAddress)] = []
    var toClient: [[UInt8]] = []
    var serverDelivered: [[UInt8]] = []
    var clientDelivered: [[UInt8]] = []
    var serverEvents: [ServerChannel.Action] = []
    var clientEvents: [ClientChannel.Action] = []
    /// Every datagram the server ever sent, for "sends nothing" assertions.
    var serverSentCount = 0
    var pairingSecret: SecureBytes
    let serverKey = X25519KeyPair.generate()

    init(timers: ChannelTimers = ChannelTimers(), cipher: AEADCipher = .preferred, devices: [DeviceRecord] = []) throws {
        server = try ServerChannel(staticKey: serverKey, cipher: cipher, devices: devices, timers: timers)
        pairingSecret = SecureBytes.random(count: 32)
        server.setPairingSecrets([pairingSecret])
        let creds = ClientCredentials(staticKey: .generate(), serverPublicKey: serverKey.publicKey, psk: pairingSecret,
                                      mode: .pairing, cipher: cipher, deviceName: "laptop")
        client = try ClientChannel(credentials: creds, timers: timers, jitter: { .zero })
    }

    var unixNanos: UInt64 { UInt64(clock.unixTime) * 1_000_000_000 + UInt64(clock.now.nanoseconds % 1_000_000_000) }

    func handleServer(_ actions: [ServerChannel.Action]) {
        for a in actions {
            switch a {
            case .send(let bytes, let to):
                serverSentCount += 1
                if to == clientAddress { toClient.append(bytes) }
            case .deliver(_, let data): serverDelivered.append(data)
            default: serverEvents.append(a)
            }
        }
    }

    func handleClient(_ actions: [ClientChannel.Action]) {
        for a in actions {
            switch a {
            case .send(let bytes): toServer.append((bytes, clientAddress))
            case .deliver(let data): clientDelivered.append(data)
            default: clientEvents.append(a)
            }
        }
    }

    /// Delivers queued datagrams both ways until the network is quiet (bounded).
    func pump(maxRounds: Int = 100) {
        for _ in 0..<maxRounds {
            if toServer.isEmpty && toClient.isEmpty { return }
            let s = toServer; toServer = []
            for d in s { handleServer(d.bytes.withUnsafeBytes { server.receive($0, from: d.from, now: clock.now) }) }
            let c = toClient; toClient = []
            for d in c { handleClient(d.withUnsafeBytes { client.receive($0, now: clock.now) }) }
        }
    }

    /// Advances the clock in steps, running both machines' timers and the network.
    func advance(_ total: Duration, step: Duration = .milliseconds(500)) {
        var left = total
        while left > .zero {
            let d = min(step, left)
            clock.advance(by: d)
            left -= d
            handleClient(client.tick(now: clock.now, unixNanos: unixNanos))
            handleServer(server.tick(now: clock.now))
            pump()
        }
    }

    /// Pairs the client (handshake, key confirmation) and returns the device record.
    func pair() -> DeviceRecord? {
        handleClient(client.start(now: clock.now, unixNanos: unixNanos))
        pump()
        for e in serverEvents { if case .devicePaired(let d) = e { return d } }
        return nil
    }

    func clientHasEvent(_ match: (ClientChannel.Action) -> Bool) -> Bool { clientEvents.contains(where: match) }
}
