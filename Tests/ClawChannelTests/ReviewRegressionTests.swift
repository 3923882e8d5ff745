import ClawCrypto
import ClawReactor
import Testing
@testable import ClawChannel

/// Regressions for the findings of the channel's security review.
@Suite struct ReviewRegressionTests {
    @Test func lostCompromisedCommandIsRepeatedUntilTheServerActs() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        h.handleClient(h.client.sendCompromised(now: h.clock.now))
        #expect(!h.toServer.isEmpty)
        h.toServer = []                       // the first copy is lost
        h.advance(.seconds(3), step: .milliseconds(250))
        #expect(h.serverEvents.contains { if case .compromised = $0 { return true }; return false })
        #expect(h.server.pairedDevices.isEmpty)
        #expect(h.clientHasEvent { if case .compromisedConfirmed = $0 { return true }; return false })
    }

    @Test func twoHoldersOfOneFileCannotBothPair() throws {
        let h = try ChannelHarness()
        let second = try ClientChannel(credentials: ClientCredentials(
            staticKey: .generate(), serverPublicKey: h.serverKey.publicKey, psk: h.pairingSecret,
            mode: .pairing, cipher: .preferred, deviceName: "second"), jitter: { .zero })
        let secondAddress = SocketAddress(ipv4: [10, 2, 2, 2], port: 2)
        // Both handshakes complete before either confirms.
        h.handleClient(h.client.start(now: h.clock.now, unixNanos: h.unixNanos))
        var secondOut: [[UInt8]] = []
        for case .send(let b) in second.start(now: h.clock.now, unixNanos: h.unixNanos + 7) { secondOut.append(b) }
        let firstInit = h.toServer; h.toServer = []
        for d in firstInit { h.handleServer(d.bytes.withUnsafeBytes { h.server.receive($0, from: d.from, now: h.clock.now) }) }
        var toSecond: [[UInt8]] = []
        for b in secondOut {
            for case .send(let r, let to) in b.withUnsafeBytes({ h.server.receive($0, from: secondAddress, now: h.clock.now) }) where to == secondAddress {
                toSecond.append(r)
            }
        }
        var secondConfirm: [[UInt8]] = []
        for r in toSecond { for case .send(let b) in r.withUnsafeBytes({ second.receive($0, now: h.clock.now) }) { secondConfirm.append(b) } }
        h.pump()   // the first device confirms and is registered
        #expect(h.server.pairedDevices.count == 1)
        for b in secondConfirm { h.handleServer(b.withUnsafeBytes { h.server.receive($0, from: secondAddress, now: h.clock.now) }) }
        #expect(h.server.pairedDevices.map(\.name) == ["laptop"], "the second confirmation finds the secret spent")
    }

    @Test func packetHeldBackFromBeforeARekeyCannotMoveTheSession() throws {
        var timers = ChannelTimers()
        timers.rekeyInterval = .seconds(30)
        let h = try ChannelHarness(timers: timers)
        _ = h.pair()
        h.advance(.seconds(29))
        h.handleClient(h.client.send([1], now: h.clock.now))
        let held = try #require(h.toServer.last?.bytes)
        h.toServer.removeLast()
        h.advance(.seconds(3))                // the rekey happens meanwhile
        #expect(h.client.handshakesCompleted == 2)
        let attacker = SocketAddress(ipv4: [6, 6, 6, 6], port: 6)
        h.handleServer(held.withUnsafeBytes { h.server.receive($0, from: attacker, now: h.clock.now) })
        #expect(h.server.sessionInfos.first?.address == h.clientAddress)
        #expect(!h.serverEvents.contains { if case .sessionRoamed(_, _, let to) = $0 { return to == attacker }; return false })
    }

    @Test func registeredKeyCannotPairAgain() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        // A fresh file, but the same device key tries a pairing handshake.
        let secret = SecureBytes.random(count: 32)
        h.server.setPairingSecrets([secret])
        let again = try ClientChannel(credentials: ClientCredentials(
            staticKey: h.client.credentials.staticKey, serverPublicKey: h.serverKey.publicKey, psk: secret,
            mode: .pairing, cipher: .preferred, deviceName: "again"), jitter: { .zero })
        let before = h.serverSentCount
        for case .send(let b) in again.start(now: h.clock.now, unixNanos: h.unixNanos + 99) {
            h.handleServer(b.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        }
        #expect(h.serverSentCount == before)
        #expect(h.server.pairedDevices.map(\.name) == ["laptop"])
    }

    @Test func ipv6SourcesShareOneBucketPerSlash64() {
        var limiter = HandshakeRateLimiter(limits: HandshakeLimits())
        var allowed = 0
        for i in 0..<50 {
            let addr = SocketAddress(ipv6: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 7) + [UInt8(i)], port: 1)
            if limiter.allow(source: addr, now: .zero) { allowed += 1 }
        }
        #expect(allowed == 5)
    }

    @Test func stunAnswerOfAnUnspecifiedAddressIsRefused() throws {
        let txid: [UInt8] = Array(1...12)
        for a in ["0.0.0.0:1234", "[::]:1234", "1.2.3.4:0"] {
            let resp = STUN.bindingResponse(transactionID: txid, mapped: try SocketAddress(parsing: a))
            #expect(throws: STUN.ParseError.noMappedAddress) { try STUN.parseBindingResponse(resp, transactionID: txid) }
        }
    }

    @Test func securityFileWithoutAReachableAddressIsAnErrorNotACrash() throws {
        let f = SecurityFile(cipher: .chacha20poly1305, validFrom: 0, validUntil: 660, fileID: 1,
                             serverPublicKey: X25519KeyPair.generate().publicKey, pairingSecret: SecureBytes.random(count: 32),
                             port: 1, addresses: [.any()])
        #expect(throws: SecurityFileError.noReachableAddress) { try f.sealed(with: .raw(SecureBytes.random(count: 32))) }
    }

    @Test func oversizedPlaintextIsNeverSealed() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        #expect(h.client.send([UInt8](repeating: 0, count: Wire.maxApplicationData), now: h.clock.now).count == 1)
        #expect(h.client.send([UInt8](repeating: 0, count: Wire.maxApplicationData + 1), now: h.clock.now).isEmpty)
    }
}
