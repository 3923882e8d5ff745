import ClawCrypto
import Foundation
import Testing

/// The ciphers to exercise: ChaCha20-Poly1305 always, AES-GCM where the CPU has it.
private let runnableCiphers = AEADCipher.allCases.filter(\.isAvailable)

private let keyBytes = [UInt8](0..<32)
/// A fresh SecureBytes per use: the type is deliberately not Sendable.
private var key: SecureBytes { SecureBytes(copying: keyBytes) }
private let nonce = [UInt8](0..<12)
private let plaintext = Array("ClawChat packet".utf8)
private let associatedData = Array("header".utf8)

@Test func aesGCMIsAvailableWhenTheCPUHasAESNI() throws {
    let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    let flags = cpuinfo.split(separator: "\n").first { $0.hasPrefix("flags") } ?? ""
    if flags.split(separator: " ").contains("aes") {
        #expect(AEADCipher.aes256gcm.isAvailable)
        #expect(AEADCipher.preferred == .aes256gcm)
    } else {
        #expect(AEADCipher.preferred == .chacha20poly1305)
    }
    #expect(AEADCipher.chacha20poly1305.isAvailable)
}

@Test(arguments: runnableCiphers)
func sealThenOpenReturnsThePlaintext(cipher: AEADCipher) throws {
    for length in [0, 1, 15, 16, 17, 1200] {
        let message = Random.bytes(count: length)
        let sealed = try cipher.seal(key: key, nonce: nonce, plaintext: message, ad: associatedData)
        #expect(sealed.count == length + AEADCipher.tagLength)
        #expect(try cipher.open(key: key, nonce: nonce, ciphertext: sealed, ad: associatedData) == message)
    }
}

@Test func sealMatchesIndependentImplementations() throws {
    // Expected values computed with Python's `cryptography` package (OpenSSL).
    let chacha = try AEADCipher.chacha20poly1305.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
    #expect(chacha.hex == "ca9769776a7fc43497f35e90f3787abf39d4c8da21725e2191584b155368af")
    if AEADCipher.aes256gcm.isAvailable {
        let aes = try AEADCipher.aes256gcm.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
        #expect(aes.hex == "046eb76c868da36fad31f6e8da8c0c48f7c767d16831738beb2125f3b4440a")
    }
}

@Test(arguments: runnableCiphers)
func flippedBitInCiphertextOrTagIsRejected(cipher: AEADCipher) throws {
    let sealed = try cipher.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
    let tagStart = plaintext.count
    // Bits across the ciphertext body and across the tag.
    let bitPositions = [0, 7, 8 * 5 + 3, 8 * tagStart - 1, 8 * tagStart, 8 * tagStart + 9, 8 * sealed.count - 1]
    for bit in bitPositions {
        var tampered = sealed
        tampered[bit / 8] ^= 1 << UInt8(bit % 8)
        #expect(throws: CryptoError.authenticationFailed) {
            try cipher.open(key: key, nonce: nonce, ciphertext: tampered, ad: associatedData)
        }
    }
}

@Test(arguments: runnableCiphers)
func flippedBitInAssociatedDataIsRejected(cipher: AEADCipher) throws {
    let sealed = try cipher.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
    for bit in [0, 1, 13, 8 * associatedData.count - 1] {
        var tamperedAD = associatedData
        tamperedAD[bit / 8] ^= 1 << UInt8(bit % 8)
        #expect(throws: CryptoError.authenticationFailed) {
            try cipher.open(key: key, nonce: nonce, ciphertext: sealed, ad: tamperedAD)
        }
    }
}

@Test(arguments: runnableCiphers)
func wrongKeyOrNonceIsRejected(cipher: AEADCipher) throws {
    let sealed = try cipher.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
    let otherKey = SecureBytes.random(count: AEADCipher.keyLength)
    #expect(throws: CryptoError.authenticationFailed) {
        try cipher.open(key: otherKey, nonce: nonce, ciphertext: sealed, ad: associatedData)
    }
    var otherNonce = nonce
    otherNonce[11] ^= 0x80
    #expect(throws: CryptoError.authenticationFailed) {
        try cipher.open(key: key, nonce: otherNonce, ciphertext: sealed, ad: associatedData)
    }
}

@Test(arguments: runnableCiphers)
func badLengthsAreTypedErrors(cipher: AEADCipher) throws {
    #expect(throws: CryptoError.invalidKeyLength(16)) {
        try cipher.seal(key: SecureBytes(count: 16), nonce: nonce, plaintext: plaintext)
    }
    #expect(throws: CryptoError.invalidNonceLength(8)) {
        try cipher.seal(key: key, nonce: [UInt8](repeating: 0, count: 8), plaintext: plaintext)
    }
    #expect(throws: CryptoError.ciphertextTooShort(15)) {
        try cipher.open(key: key, nonce: nonce, ciphertext: [UInt8](repeating: 0, count: 15))
    }
}

@Test(arguments: runnableCiphers)
func bufferFormWorksInPlaceAndMatchesArrayForm(cipher: AEADCipher) throws {
    let expected = try cipher.seal(key: key, nonce: nonce, plaintext: plaintext, ad: associatedData)
    var packet = plaintext + [UInt8](repeating: 0, count: AEADCipher.tagLength)
    let sealedLength = try key.withUnsafeBytes { keyBytes in
        try nonce.withUnsafeBytes { nonceBytes in
            try associatedData.withUnsafeBytes { adBytes in
                try packet.withUnsafeMutableBytes { buffer in
                    try cipher.seal(key: keyBytes, nonce: nonceBytes,
                                    plaintext: UnsafeRawBufferPointer(rebasing: buffer[..<plaintext.count]),
                                    ad: adBytes, into: buffer)
                }
            }
        }
    }
    #expect(sealedLength == expected.count)
    #expect(packet == expected)

    let openedLength = try key.withUnsafeBytes { keyBytes in
        try nonce.withUnsafeBytes { nonceBytes in
            try associatedData.withUnsafeBytes { adBytes in
                try packet.withUnsafeMutableBytes { buffer in
                    try cipher.open(key: keyBytes, nonce: nonceBytes, ciphertext: UnsafeRawBufferPointer(buffer),
                                    ad: adBytes, into: buffer)
                }
            }
        }
    }
    #expect(openedLength == plaintext.count)
    #expect(Array(packet[..<openedLength]) == plaintext)
}

@Test(arguments: runnableCiphers)
func bufferFormRejectsAnOutputBufferThatIsTooSmall(cipher: AEADCipher) throws {
    var output = [UInt8](repeating: 0, count: plaintext.count)
    #expect(throws: CryptoError.outputBufferTooSmall(needed: plaintext.count + 16, available: plaintext.count)) {
        try key.withUnsafeBytes { keyBytes in
            try nonce.withUnsafeBytes { nonceBytes in
                try plaintext.withUnsafeBytes { plainBytes in
                    try output.withUnsafeMutableBytes { buffer in
                        try cipher.seal(key: keyBytes, nonce: nonceBytes, plaintext: plainBytes,
                                        ad: UnsafeRawBufferPointer(start: nil, count: 0), into: buffer)
                    }
                }
            }
        }
    }
}
