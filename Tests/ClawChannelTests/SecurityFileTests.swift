import ClawCrypto
import ClawReactor
import Glibc
import Testing
@testable import ClawChannel

@Suite struct SecurityFileTests {
    let now: Int64 = 1_790_000_000
    let rawKey = BootstrapKey.raw(SecureBytes.random(count: 32))

    func sample(validFrom: Int64? = nil, validUntil: Int64? = nil) -> SecurityFile {
        SecurityFile(cipher: .aes256gcm, validFrom: validFrom ?? now, validUntil: validUntil ?? now + SecurityFile.validity,
                     fileID: 0x1122_3344_5566_7788, serverPublicKey: X25519KeyPair.generate().publicKey,
                     pairingSecret: SecureBytes.random(count: 32), port: 47400,
                     addresses: [try! SocketAddress(parsing: "203.0.113.9", port: 0),
                                 try! SocketAddress(parsing: "2001:db8::9", port: 0)])
    }

    @Test func roundTripWithARawKey() throws {
        let f = sample()
        let opened = try SecurityFile.open(try f.sealed(with: rawKey), with: rawKey, now: now + 5)
        #expect(opened.serverPublicKey == f.serverPublicKey)
        #expect(opened.pairingSecret.copyToArray() == f.pairingSecret.copyToArray())
        #expect(opened.port == 47400 && opened.fileID == f.fileID && opened.cipher == .aes256gcm)
        #expect(opened.endpoints.map(\.description) == ["203.0.113.9:47400", "[2001:db8::9]:47400"])
    }

    @Test func roundTripWithAPassphrase() throws {
        let key = try BootstrapKey("correct horse battery staple")
        guard case .passphrase = key else { Issue.record("a passphrase must not be taken for a raw key"); return }
        let bytes = try sample().sealed(with: key, argon2OpsLimit: PasswordKDF.opsLimitMin, argon2MemLimit: PasswordKDF.memLimitMin)
        #expect(throws: Never.self) { try SecurityFile.open(bytes, with: key, now: now) }
        #expect(throws: SecurityFileError.wrongBootstrapKey) {
            try SecurityFile.open(bytes, with: try BootstrapKey("correct horse battery stapler"), now: now)
        }
    }

    @Test func eachDefectGivesItsOwnClearError() throws {
        let bytes = try sample().sealed(with: rawKey)
        var errors: [SecurityFileError] = []
        func attempt(_ b: [UInt8], key: BootstrapKey? = nil, at t: Int64? = nil) {
            do { _ = try SecurityFile.open(b, with: key ?? rawKey, now: t ?? now) } catch { errors.append(error) }
        }
        attempt(bytes, key: .raw(SecureBytes.random(count: 32)))           // wrong bootstrap key
        var tampered = bytes; tampered[bytes.count - 20] ^= 0x04; attempt(tampered)
        attempt(bytes, at: now + SecurityFile.validity + 1)                  // expired
        attempt(try sample(validFrom: now + 3600, validUntil: now + 4000).sealed(with: rawKey))  // future-dated
        attempt(Array(bytes.prefix(40)))                                     // truncated
        attempt(Random.bytes(count: 200))                                    // random file
        #expect(errors.count == 6)
        guard errors.count == 6 else { return }
        #expect(errors[0] == .wrongBootstrapKey)
        #expect(errors[1] == .tampered)
        if case .expired = errors[2] {} else { Issue.record("expected expired, got \(errors[2])") }
        if case .notYetValid = errors[3] {} else { Issue.record("expected notYetValid, got \(errors[3])") }
        #expect(errors[4] == .truncated)
        #expect(errors[5] == .notASecurityFile)
        // Distinct, one-line messages.
        let messages = errors.map(\.description)
        #expect(Set(messages).count == 6)
        #expect(messages.allSatisfy { !$0.contains("\n") && !$0.isEmpty })
    }

    @Test func everyFlippedByteIsDetected() throws {
        let bytes = try sample().sealed(with: rawKey)
        for i in stride(from: 0, to: bytes.count, by: 7) {
            var b = bytes
            b[i] ^= 0x80
            #expect(throws: SecurityFileError.self) { try SecurityFile.open(b, with: rawKey, now: now) }
        }
    }

    @Test func fileIsWrittenAtomicallyWith0600InA0700Directory() throws {
        let dir = "/tmp/clawchat-secfile-test-\(getpid())-\(Random.uniform(1 << 30))"
        defer { system_rm(dir) }
        try AtomicFile.ensureDirectory(dir, mode: 0o700)
        let path = "\(dir)/\(SecurityFile.fileName)"
        let old = umask(0o022)
        defer { umask(old) }
        try AtomicFile.write(try sample().sealed(with: rawKey), to: path, mode: 0o600)
        #expect(AtomicFile.mode(of: dir) == 0o700)
        #expect(AtomicFile.mode(of: path) == 0o600)
        let opened = try SecurityFile.open(try #require(try AtomicFile.read(path)), with: rawKey, now: now)
        #expect(opened.port == 47400)
    }

    @Test func bootstrapKeyFormats() throws {
        if case .raw = try BootstrapKey(Base64.encode(Random.bytes(count: 32))) {} else { Issue.record("32-byte Base64 is a raw key") }
        if case .passphrase = try BootstrapKey(Base64.encode(Random.bytes(count: 16))) {} else { Issue.record("16 bytes is a passphrase") }
        #expect(throws: SecurityFileError.emptyBootstrapKey) { try BootstrapKey("") }
    }
}

@Suite struct SecurityFileScheduleTests {
    @Test func regenerationTimelineOnAFakeClock() {
        var s = SecurityFileSchedule()
        let t0: Int64 = 1_790_000_000
        var writes: [Int64] = []
        func run(_ effects: [SecurityFileSchedule.Effect]) {
            for e in effects { if case .write(let i) = e { writes.append(i.validFrom); #expect(i.validUntil - i.validFrom == 660) } }
        }
        run(s.start(now: t0, hasPairedDevices: false))
        #expect(writes == [t0])
        // Tick every 10 s for 35 minutes: a new file at 10, 20 and 30 minutes.
        var t = t0
        while t < t0 + 35 * 60 { t += 10; run(s.tick(now: t)) }
        #expect(writes == [t0, t0 + 600, t0 + 1200, t0 + 1800])
        // The previous file stays valid for its last minute (overlap), then drops out.
        #expect(s.active.count == 1)
        run(s.tick(now: t0 + 1800 + 30))
        // A device pairs: everything is spent and regeneration stops.
        let effects = s.paired()
        #expect(effects.contains { if case .remove = $0 { return true }; return false })
        #expect(s.active.isEmpty && !s.regenerating)
        t = t0 + 1900
        while t < t0 + 4 * 3600 { t += 60; run(s.tick(now: t)) }
        #expect(writes.count == 4, "no files after pairing until one is asked for")
        run(s.demand(now: t))
        #expect(writes.count == 5)
    }

    @Test func pairedServerMakesNoFileAtStart() {
        var s = SecurityFileSchedule()
        #expect(s.start(now: 1_000, hasPairedDevices: true).isEmpty)
        #expect(s.nextWakeup == nil)
    }

    @Test func overlapKeepsTheOlderSecretUntilItExpires() {
        var s = SecurityFileSchedule()
        _ = s.start(now: 0, hasPairedDevices: false)
        _ = s.tick(now: 600)
        #expect(s.active.count == 2, "the 10-minute-old file still has a minute")
        _ = s.tick(now: 660)
        #expect(s.active.count == 1)
    }
}

private func system_rm(_ dir: String) {
    if let d = opendir(dir) {
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { unlink("\(dir)/\(name)") }
        }
        closedir(d)
    }
    rmdir(dir)
}
