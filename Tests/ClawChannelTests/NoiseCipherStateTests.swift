import ClawChannel
import ClawCrypto
import Testing

/// Transport cipher states: nonce encoding, explicit nonces for UDP, rekey and zeroization.
struct NoiseCipherStateTests {
    let keyBytes = [UInt8](200..<232)
    var key: SecureBytes { SecureBytes(copying: keyBytes) }
    let ad = Array("header".utf8)
    let plaintext = Array("datagram".utf8)

    static let ciphers = AEADCipher.allCases.filter(\.isAvailable)

    @Test(arguments: ciphers)
    func nonceIsFourZeroBytesThenTheCounterInTheCiphersByteOrder(cipher: AEADCipher) throws {
        let state = NoiseCipherState(cipher: cipher, key: key)
        for counter: UInt64 in [0, 1, 0x0102_0304_0506_0708] {
            let ordered = cipher == .aes256gcm ? counter.bigEndian : counter.littleEndian
            let nonce = [0, 0, 0, 0] + withUnsafeBytes(of: ordered) { Array($0) }
            let expected = try cipher.seal(key: key, nonce: nonce, plaintext: plaintext, ad: ad)
            #expect(try state.encrypt(nonce: counter, ad: ad, plaintext: plaintext) == expected)
        }
    }

    @Test(arguments: ciphers)
    func explicitNoncesDecryptOutOfOrderAndLeaveTheCounterAlone(cipher: AEADCipher) throws {
        let sender = NoiseCipherState(cipher: cipher, key: key)
        let receiver = NoiseCipherState(cipher: cipher, key: key)
        let packets = try [5, 3, 9].map { (nonce: UInt64($0), sealed: try sender.encrypt(nonce: UInt64($0), ad: ad, plaintext: plaintext + [UInt8($0)])) }
        for packet in packets.reversed() {
            #expect(try receiver.decrypt(nonce: packet.nonce, ad: ad, ciphertext: packet.sealed) == plaintext + [UInt8(packet.nonce)])
        }
        #expect(throws: NoiseError.decryptionFailed) { try receiver.decrypt(nonce: 4, ad: ad, ciphertext: packets[0].sealed) }
        #expect(throws: NoiseError.decryptionFailed) { try receiver.decrypt(nonce: 5, ad: [], ciphertext: packets[0].sealed) }
        #expect(throws: NoiseError.decryptionFailed) { try receiver.decrypt(nonce: 5, ad: ad, ciphertext: [1, 2, 3]) }
        #expect(sender.nonce == 0 && receiver.nonce == 0)
    }

    @Test(arguments: ciphers)
    func counterFormUsesSuccessiveNonces(cipher: AEADCipher) throws {
        var state = NoiseCipherState(cipher: cipher, key: key)
        let first = try state.encryptWithAd(ad, plaintext: plaintext)
        let second = try state.encryptWithAd(ad, plaintext: plaintext)
        #expect(state.nonce == 2)
        #expect(first == (try state.encrypt(nonce: 0, ad: ad, plaintext: plaintext)))
        #expect(second == (try state.encrypt(nonce: 1, ad: ad, plaintext: plaintext)))
    }

    @Test func reservedNonceIsNeverUsedForMessages() throws {
        var state = NoiseCipherState(cipher: .chacha20poly1305, key: key)
        #expect(throws: NoiseError.nonceExhausted) { try state.encrypt(nonce: .max, ad: [], plaintext: []) }
        state.setNonce(.max)
        #expect(throws: NoiseError.nonceExhausted) { try state.encryptWithAd([], plaintext: []) }
    }

    @Test func transportMessagesOverTheNoiseLimitAreRejected() throws {
        let state = NoiseCipherState(cipher: .chacha20poly1305, key: key)
        let largest = try state.encrypt(nonce: 0, ad: [], plaintext: [UInt8](repeating: 1, count: 65535 - 16))
        #expect(largest.count == 65535)
        #expect(try state.decrypt(nonce: 0, ad: [], ciphertext: largest).count == 65535 - 16)
        #expect(throws: NoiseError.messageTooLong(65536)) {
            try state.encrypt(nonce: 0, ad: [], plaintext: [UInt8](repeating: 1, count: 65535 - 15))
        }
        #expect(throws: NoiseError.messageTooLong(65536)) {
            try state.decrypt(nonce: 0, ad: [], ciphertext: largest + [0])
        }
    }

    @Test(arguments: ciphers)
    func rekeyDerivesTheKeyNoiseSpecifies(cipher: AEADCipher) throws {
        var state = NoiseCipherState(cipher: cipher, key: key)
        let before = try state.encrypt(nonce: 0, ad: ad, plaintext: plaintext)
        try state.rekey()
        // REKEY(k) = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
        let maxNonce = [0, 0, 0, 0] + [UInt8](repeating: 0xff, count: 8)
        let block = try cipher.seal(key: key, nonce: maxNonce, plaintext: [UInt8](repeating: 0, count: 32))
        let expected = NoiseCipherState(cipher: cipher, key: SecureBytes(copying: block.prefix(32)))
        let after = try state.encrypt(nonce: 0, ad: ad, plaintext: plaintext)
        #expect(after != before)
        #expect(after == (try expected.encrypt(nonce: 0, ad: ad, plaintext: plaintext)))
    }

    @Test func zeroizeWipesTheKeyForEveryCopy() throws {
        var state = NoiseCipherState(cipher: .chacha20poly1305, key: key)
        let copy = state
        #expect(!state.keyIsZero && state.hasKey)
        state.zeroize()
        #expect(state.keyIsZero && copy.keyIsZero)
        #expect(!state.hasKey)
        #expect(throws: NoiseError.missingCipherKey) { try state.encrypt(nonce: 0, ad: [], plaintext: plaintext) }
        #expect(throws: NoiseError.missingCipherKey) { try state.encryptWithAd([], plaintext: plaintext) }
    }

    @Test func emptyCipherStatePassesHandshakeDataThroughButRefusesTransport() throws {
        var state = NoiseCipherState(cipher: .chacha20poly1305)
        #expect(!state.hasKey)
        #expect(try state.encryptWithAd(ad, plaintext: plaintext) == plaintext)
        #expect(throws: NoiseError.missingCipherKey) { try state.encrypt(nonce: 0, ad: ad, plaintext: plaintext) }
    }

    @Test(arguments: ciphers)
    func bufferFormsWorkInPlace(cipher: AEADCipher) throws {
        let state = NoiseCipherState(cipher: cipher, key: key)
        let expected = try state.encrypt(nonce: 42, ad: ad, plaintext: plaintext)
        var packet = plaintext + [UInt8](repeating: 0, count: AEADCipher.tagLength)
        let sealed = try ad.withUnsafeBytes { adBytes in
            try packet.withUnsafeMutableBytes { buffer in
                try state.encrypt(nonce: 42, ad: adBytes, plaintext: UnsafeRawBufferPointer(rebasing: buffer[..<plaintext.count]),
                                  into: buffer)
            }
        }
        #expect(sealed == expected.count && packet == expected)
        let opened = try ad.withUnsafeBytes { adBytes in
            try packet.withUnsafeMutableBytes { buffer in
                try state.decrypt(nonce: 42, ad: adBytes, ciphertext: UnsafeRawBufferPointer(buffer), into: buffer)
            }
        }
        #expect(Array(packet[..<opened]) == plaintext)
    }
}
