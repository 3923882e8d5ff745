import ClawChannel
import ClawCrypto
import ClawReactor

/// How the `handshake` scenario runs.
struct HandshakeSettings {
    var rounds: Int
    /// Handshakes per round and variant.
    var count: Int
    var cipher: AEADCipher
}

/// One way of running a handshake, timed once per round.
struct HandshakeVariant {
    let name: String
    var timings: [Timing] = []
}

/// Everything the `handshake` scenario measured, one sample per round.
struct HandshakeResult {
    /// IKpsk2 makes one ephemeral key pair on each side, and four DHs on each side
    /// (initiator: es, ss, then ee, se on reading message 2; responder: es, ss, ee, se).
    static let keyPairsPerHandshake = 2
    static let sharedSecretsPerHandshake = 8

    var count: Int
    /// `X25519KeyPair.generate()`: CSPRNG, secure allocation, `crypto_scalarmult_base`.
    var keyPairMicros: [Double] = []
    /// `X25519.sharedSecret`: secure allocation and `crypto_scalarmult`.
    var sharedSecretMicros: [Double] = []
    /// `SecureBytes(count: 32)` and its release (`sodium_malloc`/`sodium_free`), included in both
    /// of the above; shown so the reader can tell allocator from curve arithmetic.
    var secureAllocMicros: [Double] = []
    var noise = HandshakeVariant(name: "Noise IKpsk2 alone")
    var channel = HandshakeVariant(name: "ClawChat channel machines")

    /// CPU µs of the DH primitives one handshake needs, per round.
    var primitiveMicros: [Double] {
        zip(keyPairMicros, sharedSecretMicros).map {
            Double(Self.keyPairsPerHandshake) * $0 + Double(Self.sharedSecretsPerHandshake) * $1
        }
    }

    func perSecond(_ v: HandshakeVariant) -> [Double] { v.timings.map { Double(count) / $0.wall } }
    func cpuMicros(_ v: HandshakeVariant) -> [Double] { v.timings.map { $0.cpu.total / Double(count) * 1e6 } }
    func systemShare(_ v: HandshakeVariant) -> [Double] { v.timings.map(\.cpu.systemShare) }
    /// Handshake CPU time over the CPU time of its DH primitives, paired round by round.
    func overhead(_ v: HandshakeVariant) -> [Double] { zip(cpuMicros(v), primitiveMicros).map { $0 / $1 } }
}

/// `handshake`: full IKpsk2 handshakes, both sides in this process on one thread, against the
/// cost of the X25519 operations they contain, measured in the same run.
///
/// Two variants: the bare Noise handshake state (initiator write, responder read and write,
/// initiator read, split on both sides), and the channel state machines as the daemon and the
/// client run them (mac1, rate limiter, index allocation, transport keys and the key-confirming
/// first transport packet), with a paired device and no sockets.
enum HandshakeScenario {
    static func run(_ settings: HandshakeSettings, progress: Progress) throws(BenchError) -> HandshakeResult {
        let noise = try NoiseBench(cipher: settings.cipher)
        let channel = try ChannelBench(cipher: settings.cipher)
        // Warm up: first-use initialisation (libsodium, allocator arenas) is not what we measure.
        for _ in 0..<20 { try noise.handshake(); try channel.handshake() }

        var result = HandshakeResult(count: settings.count)
        let primitiveIterations = 2 * settings.count
        let privateKey = SecureBytes.random(count: 32)
        let peer = X25519KeyPair.generate().publicKey
        for round in 0..<settings.rounds {
            progress.say("handshake: round \(round + 1)/\(settings.rounds)")
            let kp = Timing.of(primitiveIterations) { _ = X25519KeyPair.generate() }
            let dh = try Timing.of(primitiveIterations) { () throws(BenchError) in
                do { _ = try X25519.sharedSecret(privateKey: privateKey, publicKey: peer) } catch {
                    throw BenchError("X25519 failed: \(error)")
                }
            }
            let alloc = Timing.of(primitiveIterations) { _ = SecureBytes(count: 32) }
            result.keyPairMicros.append(kp.cpu.total / Double(primitiveIterations) * 1e6)
            result.sharedSecretMicros.append(dh.cpu.total / Double(primitiveIterations) * 1e6)
            result.secureAllocMicros.append(alloc.cpu.total / Double(primitiveIterations) * 1e6)
            result.noise.timings.append(try Timing.of(settings.count) { () throws(BenchError) in try noise.handshake() })
            result.channel.timings.append(try Timing.of(settings.count) { () throws(BenchError) in try channel.handshake() })
        }
        return result
    }
}

/// Both ends of a bare Noise IKpsk2 handshake with fixed static keys and PSK.
private struct NoiseBench {
    let protocolName: NoiseProtocol
    let initiatorStatic = X25519KeyPair.generate()
    let responderStatic = X25519KeyPair.generate()
    let psk = SecureBytes.random(count: 32)
    /// Sized like the channel's payloads: version, timestamp, name length, "bench".
    let initiationPayload = [UInt8](repeating: 1, count: 15)
    let responsePayload = [UInt8](repeating: 0, count: 6)

    init(cipher: AEADCipher) throws(BenchError) {
        do { protocolName = try NoiseProtocol(name: channelProtocolName(cipher)) } catch {
            throw BenchError("cannot set up Noise: \(error)")
        }
    }

    func handshake() throws(BenchError) {
        do {
            var initiator = try NoiseHandshakeState(protocol: protocolName, initiator: true, prologue: Wire.prologue,
                                                    localStatic: initiatorStatic,
                                                    remoteStatic: responderStatic.publicKey, psks: [psk])
            let message1 = try initiator.writeMessage(payload: initiationPayload)
            var responder = try NoiseHandshakeState(protocol: protocolName, initiator: false, prologue: Wire.prologue,
                                                    localStatic: responderStatic)
            _ = try responder.readMessage(message1)
            responder.setPSKs([psk])
            let message2 = try responder.writeMessage(payload: responsePayload)
            _ = try responder.split()
            _ = try initiator.readMessage(message2)
            _ = try initiator.split()
            guard initiator.handshakeHash == responder.handshakeHash else { throw BenchError("handshake hashes differ") }
        } catch let e as BenchError {
            throw e
        } catch {
            throw BenchError("Noise handshake failed: \(error)")
        }
    }
}

/// A `ServerChannel` with one paired device, and a fresh `ClientChannel` for that device per
/// handshake, as after a client restart. Datagrams are handed across directly.
private final class ChannelBench {
    let server: ServerChannel
    let credentials: ClientCredentials
    let clock = MonotonicClock()
    let source = SocketAddress.loopback(port: 40_000)
    /// Initiation timestamps must increase per device, or the server drops them as replays.
    var timestamp: UInt64

    init(cipher: AEADCipher) throws(BenchError) {
        let serverKey = X25519KeyPair.generate()
        let deviceKey = X25519KeyPair.generate()
        let psk = SecureBytes.random(count: 32)
        var limits = HandshakeLimits()
        // The rate limiter still runs; it just never says no.
        limits.perSourcePerSecond = 1e12
        limits.perSourceBurst = 1e12
        limits.globalPerSecond = 1e12
        limits.globalBurst = 1e12
        let device = DeviceRecord(id: 1, name: "bench", publicKey: deviceKey.publicKey, psk: psk, pairedAt: 1)
        do {
            server = try ServerChannel(staticKey: serverKey, cipher: cipher, devices: [device], limits: limits)
        } catch { throw BenchError("cannot set up the server channel: \(error)") }
        credentials = ClientCredentials(staticKey: deviceKey, serverPublicKey: serverKey.publicKey, psk: psk,
                                        mode: .paired(deviceID: 1), cipher: cipher, deviceName: "bench")
        timestamp = clock.unixNanos
    }

    func handshake() throws(BenchError) {
        let client: ClientChannel
        do { client = try ClientChannel(credentials: credentials, jitter: { .zero }) } catch {
            throw BenchError("cannot set up the client channel: \(error)")
        }
        timestamp += 1
        let now = clock.now
        guard let initiation = Self.datagram(client.start(now: now, unixNanos: timestamp)) else {
            throw BenchError("the client sent no initiation")
        }
        guard let response = Self.datagram(initiation.withUnsafeBytes { server.receive($0, from: source, now: now) }) else {
            throw BenchError("the server did not answer the initiation (drops: \(server.drops))")
        }
        guard let confirmation = Self.datagram(response.withUnsafeBytes { client.receive($0, now: now) }) else {
            throw BenchError("the client did not accept the response")
        }
        let established = confirmation.withUnsafeBytes { server.receive($0, from: source, now: now) }.contains {
            if case .sessionEstablished = $0 { return true } else { return false }
        }
        guard established else { throw BenchError("the server did not confirm the new keys") }
    }

    private static func datagram(_ actions: [ClientChannel.Action]) -> [UInt8]? {
        for case .send(let bytes) in actions { return bytes }
        return nil
    }

    private static func datagram(_ actions: [ServerChannel.Action]) -> [UInt8]? {
        for case .send(let bytes, _) in actions { return bytes }
        return nil
    }
}

// MARK: Report

extension HandshakeScenario {
    static func table(_ r: HandshakeResult, _ s: HandshakeSettings) -> String {
        var t = Table(headers: ["variant", "handshakes/s", "CPU µs each", "kernel share", "X25519 µs each", "CPU / X25519"])
        let dh = Summary(r.primitiveMicros)
        for v in [r.noise, r.channel] {
            t.rows.append([
                v.name,
                spread(Summary(r.perSecond(v)), compact),
                spread(Summary(r.cpuMicros(v))) { fixed($0, 0) },
                percent(Summary(r.systemShare(v)).median),
                fixed(dh.median, 0),
                spread(Summary(r.overhead(v))) { fixed($0, 2) },
            ])
        }
        var text = "handshake: full Noise IKpsk2 handshakes, both sides in this process on one thread, "
        text += "\(s.count) per round and variant\n"
        text += t.render()
        text += "\nX25519 per handshake = \(HandshakeResult.keyPairsPerHandshake) key pairs "
        text += "× \(fixed(Summary(r.keyPairMicros).median, 1)) µs + \(HandshakeResult.sharedSecretsPerHandshake) shared secrets "
        text += "× \(fixed(Summary(r.sharedSecretMicros).median, 1)) µs (ClawCrypto calls, median);\n"
        text += "each of those includes one secure allocation (sodium_malloc + sodium_free) of "
        text += "\(fixed(Summary(r.secureAllocMicros).median, 1)) µs"
        return text
    }

    static func json(_ r: HandshakeResult, _ s: HandshakeSettings) -> JSON {
        func variant(_ v: HandshakeVariant) -> JSON {
            .object([
                ("name", .string(v.name)),
                ("handshakesPerSecond", .summary(Summary(r.perSecond(v)))),
                ("cpuMicrosPerHandshake", .summary(Summary(r.cpuMicros(v)))),
                ("kernelShareOfCPU", .summary(Summary(r.systemShare(v)))),
                ("cpuOverX25519", .summary(Summary(r.overhead(v)))),
            ])
        }
        return .object([
            ("handshakesPerRound", .integer(s.count)),
            ("x25519", .object([
                ("keyPairsPerHandshake", .integer(HandshakeResult.keyPairsPerHandshake)),
                ("sharedSecretsPerHandshake", .integer(HandshakeResult.sharedSecretsPerHandshake)),
                ("keyPairMicros", .summary(Summary(r.keyPairMicros))),
                ("sharedSecretMicros", .summary(Summary(r.sharedSecretMicros))),
                ("secureAllocationMicros", .summary(Summary(r.secureAllocMicros))),
                ("microsPerHandshake", .summary(Summary(r.primitiveMicros))),
            ])),
            ("noise", variant(r.noise)),
            ("channel", variant(r.channel)),
        ])
    }
}
