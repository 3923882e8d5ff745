import ClawCrypto
import ClawReactor
import Testing
@testable import ClawChannel

@Suite struct PairingTests {
    @Test func pairingRegistersTheDeviceOnlyAfterKeyConfirmation() throws {
        let h = try ChannelHarness()
        h.handleClient(h.client.start(now: h.clock.now, unixNanos: h.unixNanos))
        // Deliver the initiation and the response, but hold the client's confirming packet.
        let initiation = h.toServer; h.toServer = []
        for d in initiation { h.handleServer(d.bytes.withUnsafeBytes { h.server.receive($0, from: d.from, now: h.clock.now) }) }
        #expect(h.server.pairedDevices.isEmpty)
        let response = h.toClient; h.toClient = []
        for d in response { h.handleClient(d.withUnsafeBytes { h.client.receive($0, now: h.clock.now) }) }
        #expect(h.server.pairedDevices.isEmpty, "not registered before a transport packet authenticates")
        h.pump()
        #expect(h.server.pairedDevices.count == 1)
        #expect(h.server.pairedDevices.first?.name == "laptop")
        #expect(h.clientHasEvent { if case .paired = $0 { return true }; return false })
        #expect(h.client.state == .connected)
    }

    @Test func spentSecurityFileCannotPairASecondDevice() throws {
        let h = try ChannelHarness()
        #expect(h.pair() != nil)
        let sentBefore = h.serverSentCount
        let intruder = try ClientChannel(credentials: ClientCredentials(
            staticKey: .generate(), serverPublicKey: h.serverKey.publicKey, psk: h.pairingSecret,
            mode: .pairing, cipher: .preferred, deviceName: "second"), jitter: { .zero })
        for case .send(let bytes) in intruder.start(now: h.clock.now, unixNanos: h.unixNanos) {
            h.handleServer(bytes.withUnsafeBytes { h.server.receive($0, from: SocketAddress(ipv4: [10, 9, 9, 9], port: 1), now: h.clock.now) })
        }
        #expect(h.serverSentCount == sentBefore)
        #expect(h.server.pairedDevices.count == 1)
    }

    @Test func pairedDeviceReconnectsToARestartedServerWithoutTheFile() throws {
        let h = try ChannelHarness()
        let device = try #require(h.pair())
        guard case .paired(let id, let psk)? = h.clientEvents.first(where: { if case .paired = $0 { return true }; return false }) else {
            Issue.record("no paired event"); return
        }
        #expect(id == device.id)
        // A "restarted" server: same static key, device list loaded from storage, no pairing secret.
        let restarted = try ServerChannel(staticKey: h.serverKey, cipher: .preferred, devices: [device])
        let creds = ClientCredentials(staticKey: h.client.credentials.staticKey, serverPublicKey: h.serverKey.publicKey,
                                      psk: psk, mode: .paired(deviceID: id), cipher: .preferred, deviceName: "laptop")
        let fresh = try ClientChannel(credentials: creds, jitter: { .zero })
        var toServer = fresh.start(now: h.clock.now, unixNanos: h.unixNanos + 1)
        var delivered: [[UInt8]] = []
        var connected = false
        for _ in 0..<10 {
            var toClient: [[UInt8]] = []
            for case .send(let b) in toServer {
                for a in b.withUnsafeBytes({ restarted.receive($0, from: h.clientAddress, now: h.clock.now) }) {
                    switch a {
                    case .send(let r, _): toClient.append(r)
                    case .deliver(_, let d): delivered.append(d)
                    default: break
                    }
                }
            }
            toServer = []
            for r in toClient {
                for a in r.withUnsafeBytes({ fresh.receive($0, now: h.clock.now) }) {
                    if case .established = a { connected = true; toServer += fresh.send(Array("hi".utf8), now: h.clock.now) }
                    if case .send = a { toServer.append(a) }
                }
            }
        }
        #expect(connected)
        #expect(delivered == [Array("hi".utf8)])
    }
}

@Suite struct DarkServerTests {
    func expectSilence(_ h: ChannelHarness, _ datagram: [UInt8], from: SocketAddress? = nil, _ what: Comment) {
        let before = h.serverSentCount
        h.handleServer(datagram.withUnsafeBytes { h.server.receive($0, from: from ?? h.clientAddress, now: h.clock.now) })
        #expect(h.serverSentCount == before, what)
    }

    @Test func serverAnswersNothingUnauthenticated() throws {
        let h = try ChannelHarness()
        var g = SplitMix(seed: 7)
        for _ in 0..<500 {
            let junk = (0..<Int(g.next() % 300)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            expectSilence(h, junk, "random bytes")
        }
        // A genuine initiation, truncated, and with a wrong mac1.
        let start = h.client.start(now: h.clock.now, unixNanos: h.unixNanos)
        guard case .send(let initiation)? = start.first else { Issue.record("no initiation"); return }
        expectSilence(h, Array(initiation.prefix(initiation.count - 20)), "truncated initiation")
        var badMac = initiation
        badMac[badMac.count - 1] ^= 1
        expectSilence(h, badMac, "wrong mac1")
        var badBody = initiation
        badBody[20] ^= 1
        expectSilence(h, badBody, "corrupted body (mac1 fails)")
        #expect(h.server.drops.badMac1 >= 2)
    }

    @Test func unknownDeviceKeyGetsSilence() throws {
        let h = try ChannelHarness()
        // Someone with the server's public key (not a secret) but no pairing: normal-mode mac1.
        let stranger = try ClientChannel(credentials: ClientCredentials(
            staticKey: .generate(), serverPublicKey: h.serverKey.publicKey, psk: SecureBytes.random(count: 32),
            mode: .paired(deviceID: 1), cipher: .preferred, deviceName: "x"), jitter: { .zero })
        guard case .send(let initiation)? = stranger.start(now: h.clock.now, unixNanos: h.unixNanos).first else { return }
        expectSilence(h, initiation, "initiation from an unknown device key")
        #expect(h.server.drops.unknownDevice == 1)
    }

    @Test func replayedInitiationGetsSilence() throws {
        let h = try ChannelHarness()
        guard case .send(let initiation)? = h.client.start(now: h.clock.now, unixNanos: h.unixNanos).first else { return }
        let before = h.serverSentCount
        h.handleServer(initiation.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        #expect(h.serverSentCount == before + 1, "the first copy is answered")
        expectSilence(h, initiation, "the same initiation again")
        h.clock.advance(by: .seconds(30))
        expectSilence(h, initiation, from: SocketAddress(ipv4: [10, 1, 1, 1], port: 9), "replayed later from elsewhere")
        #expect(h.server.drops.replayedInitiation == 2)
    }

    @Test func handshakeFloodFromOneSourceIsRateLimited() throws {
        let h = try ChannelHarness()
        var answered = 0
        for i in 0..<100 {
            let c = try ClientChannel(credentials: ClientCredentials(
                staticKey: .generate(), serverPublicKey: h.serverKey.publicKey, psk: h.pairingSecret,
                mode: .pairing, cipher: .preferred, deviceName: "flood\(i)"), jitter: { .zero })
            guard case .send(let ini)? = c.start(now: h.clock.now, unixNanos: h.unixNanos).first else { continue }
            let before = h.serverSentCount
            h.handleServer(ini.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
            if h.serverSentCount > before { answered += 1 }
        }
        #expect(answered == 5, "the burst allowance, then nothing within the same instant")
        #expect(h.server.drops.rateLimited == 95)
    }
}

@Suite struct TransportTests {
    @Test func replayedTransportDatagramIsNeverDeliveredTwice() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        h.handleClient(h.client.send([42], now: h.clock.now))
        let captured = try #require(h.toServer.first?.bytes)
        h.pump()
        #expect(h.serverDelivered == [[42]])
        // Immediately.
        h.handleServer(captured.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        // After 5,000 newer packets.
        for i in 0..<5_000 { h.handleClient(h.client.send([UInt8(i & 0xFF)], now: h.clock.now)) }
        h.pump()
        #expect(h.serverDelivered.count == 5_001)
        h.handleServer(captured.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        #expect(h.serverDelivered.count == 5_001)
        #expect(h.server.drops.authenticationFailed >= 2)
    }

    @Test func datagramFromOutsideTheWindowIsDropped() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        h.handleClient(h.client.send([1], now: h.clock.now))
        let old = try #require(h.toServer.first?.bytes)
        h.toServer = []   // never delivered: lost in the network
        for _ in 0..<(Int(ReplayWindow.windowSize) + 10) { h.handleClient(h.client.send([2], now: h.clock.now)) }
        h.pump()
        let before = h.serverDelivered.count
        h.handleServer(old.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        #expect(h.serverDelivered.count == before, "a counter more than the window behind is refused")
    }

    @Test func sessionFollowsClientToANewPortButNotAForger() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        // NAT rebinding: the client's packets now come from a new port.
        h.clientAddress = SocketAddress(ipv4: [192, 168, 1, 2], port: 50_001)
        h.handleClient(h.client.send([1], now: h.clock.now))
        h.pump()
        #expect(h.server.sessionInfos.first?.address == h.clientAddress)
        #expect(h.serverEvents.contains { if case .sessionRoamed = $0 { return true }; return false })
        h.handleServer(h.server.send([9], toDevice: h.server.pairedDevices[0].id))
        h.pump()
        #expect(h.clientDelivered.last == [9], "replies reach the new port")

        // A third party replays a genuine packet, and sends a forged one, from its own address.
        h.handleClient(h.client.send([3], now: h.clock.now))
        let genuine = try #require(h.toServer.first?.bytes)
        h.pump()
        let attacker = SocketAddress(ipv4: [6, 6, 6, 6], port: 666)
        h.handleServer(genuine.withUnsafeBytes { h.server.receive($0, from: attacker, now: h.clock.now) })
        var forged = genuine
        forged[8 + 7] &+= 5   // a newer counter, but the tag no longer verifies
        h.handleServer(forged.withUnsafeBytes { h.server.receive($0, from: attacker, now: h.clock.now) })
        #expect(h.server.sessionInfos.first?.address == h.clientAddress)
    }
}

@Suite struct RekeyTests {
    @Test func threeRekeysWithTrafficBothWaysLoseAndDuplicateNothing() throws {
        var timers = ChannelTimers()
        timers.rekeyInterval = .seconds(89)  // three rekeys in the 270 s below
        let h = try ChannelHarness(timers: timers)
        let device = try #require(h.pair())
        var sentUp = 0, sentDown = 0
        var zeroChecks: [Keypair] = []
        for _ in 0..<3 {
            let before = Set(h.server.liveKeypairs.map(\.localIndex))
            let oldKeys = h.server.liveKeypairs + h.client.liveKeypairs
            // Traffic every 100 ms in both directions across the rekey moment, with packets
            // in flight while the handshake happens (they are pumped only every 500 ms).
            for _ in 0..<900 {
                h.clock.advance(by: .milliseconds(100))
                h.handleClient(h.client.send(Array("up \(sentUp)".utf8), now: h.clock.now)); sentUp += 1
                h.handleServer(h.server.send(Array("down \(sentDown)".utf8), toDevice: device.id)); sentDown += 1
                h.handleClient(h.client.tick(now: h.clock.now, unixNanos: h.unixNanos))
                h.handleServer(h.server.tick(now: h.clock.now))
                if sentUp % 5 == 0 { h.pump() }
            }
            h.pump()
            let after = Set(h.server.liveKeypairs.map(\.localIndex))
            #expect(!after.subtracting(before).isEmpty, "the session runs on new keys")
            zeroChecks += oldKeys
        }
        #expect(h.client.handshakesCompleted == 4)
        #expect(h.serverDelivered.count == sentUp)
        #expect(h.clientDelivered.count == sentDown)
        #expect(h.serverDelivered == (0..<sentUp).map { Array("up \($0)".utf8) })
        #expect(h.clientDelivered == (0..<sentDown).map { Array("down \($0)".utf8) })
        // Every replaced key was zeroed once its grace window passed.
        h.advance(.seconds(15))
        for kp in zeroChecks { #expect(kp.isZeroed && kp.keyMemoryIsZero) }
    }

    @Test func clientReconnectsByItselfAfterTheServerForgetsIt() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        // The path dies silently (e.g. the daemon restarts and forgets the session).
        let lostServer = h.server
        _ = lostServer.destroyEverything()
        h.advance(.seconds(40))
        #expect(h.clientHasEvent { if case .connectionLost = $0 { return true }; return false })
    }
}

@Suite struct CompromisedTests {
    @Test func compromisedDestroysKeysOnBothSidesAndRevokesDevices() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        let keys = h.server.liveKeypairs + h.client.liveKeypairs
        h.handleClient(h.client.sendCompromised(now: h.clock.now))
        h.pump()
        #expect(h.serverEvents.contains { if case .compromised = $0 { return true }; return false })
        #expect(h.clientHasEvent { if case .compromisedConfirmed = $0 { return true }; return false })
        #expect(h.client.state == .destroyed)
        #expect(h.server.pairedDevices.isEmpty)
        #expect(h.server.liveKeypairs.isEmpty && h.client.liveKeypairs.isEmpty)
        for kp in keys { #expect(kp.isZeroed && kp.keyMemoryIsZero) }
    }

    @Test func compromisedFromUnauthenticatedOrRevokedSenderChangesNothing() throws {
        let h = try ChannelHarness()
        let device = try #require(h.pair())
        // Unauthenticated: a transport packet with the compromised byte under a made-up key.
        let session = try #require(h.server.liveKeypairs.first)
        var fake = Wire.transportHeaderBytes(receiver: session.localIndex, counter: 1_000)
        fake += [InnerKind.compromised.rawValue] + [UInt8](repeating: 0, count: 16)
        h.handleServer(fake.withUnsafeBytes { h.server.receive($0, from: h.clientAddress, now: h.clock.now) })
        #expect(h.server.pairedDevices.count == 1)
        // Revoked: the device is revoked, then sends the command with its (now dropped) keys.
        h.handleServer(h.server.revoke(deviceID: device.id))
        let other = try ChannelHarness()
        _ = other.pair()
        h.handleClient(h.client.sendCompromised(now: h.clock.now))
        h.pump()
        #expect(!h.serverEvents.contains { if case .compromised = $0 { return true }; return false })
    }
}

@Suite struct RekeyIntervalTests {
    @Test func clientAdoptsTheServersShorterRekeyInterval() throws {
        var serverTimers = ChannelTimers()
        serverTimers.rekeyInterval = .seconds(120)
        let h = try ChannelHarness(timers: serverTimers)
        h.client.timers = ChannelTimers()   // the client's own default: one hour
        _ = h.pair()
        #expect(h.client.timers.rekeyInterval == .seconds(120))
        let before = h.client.handshakesCompleted
        h.advance(.seconds(125))
        #expect(h.client.handshakesCompleted == before + 1)
    }
}

@Suite struct SessionTimeoutTests {
    @Test func serverForgetsASilentSessionAndZeroesItsKeys() throws {
        let h = try ChannelHarness()
        _ = h.pair()
        let keys = h.server.liveKeypairs
        #expect(!keys.isEmpty)
        // The client vanishes: only the server's timers run.
        for _ in 0..<179 { h.clock.advance(by: .seconds(1)); h.handleServer(h.server.tick(now: h.clock.now)) }
        #expect(!h.server.sessionInfos.isEmpty, "still inside the timeout")
        h.clock.advance(by: .seconds(2))
        h.handleServer(h.server.tick(now: h.clock.now))
        #expect(h.server.sessionInfos.isEmpty)
        #expect(h.serverEvents.contains { if case .sessionClosed = $0 { return true }; return false })
        for kp in keys { #expect(kp.isZeroed && kp.keyMemoryIsZero) }
        #expect(h.server.pairedDevices.count == 1, "a timeout ends the session, not the pairing")
    }
}
