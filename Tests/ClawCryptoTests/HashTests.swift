import ClawCrypto
import Testing

@Test func sha256OfABCMatchesFIPS180() {
    #expect(SHA256.hash(Array("abc".utf8)).hex
        == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
}

@Test func sha256IncrementalEqualsOneShot() {
    var hasher = SHA256.Hasher()
    hasher.update(Array("a".utf8))
    hasher.update(Array("bc".utf8))
    #expect(hasher.finalize() == SHA256.hash(Array("abc".utf8)))
}

@Test func hmacSHA256MatchesRFC4231TestCase1() {
    let tag = HMACSHA256.authenticate(key: [UInt8](repeating: 0x0b, count: 20), data: Array("Hi There".utf8))
    #expect(tag.hex == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
}

@Test func hmacSHA256MatchesRFC4231TestCase2ShortKey() {
    let tag = HMACSHA256.authenticate(key: Array("Jefe".utf8), data: Array("what do ya want for nothing?".utf8))
    #expect(tag.hex == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
}

@Test func hmacSHA256MatchesRFC4231TestCase6KeyLongerThanBlock() {
    let key = [UInt8](repeating: 0xaa, count: 131)
    let tag = HMACSHA256.authenticate(key: key, data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8))
    #expect(tag.hex == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
    #expect(HMACSHA256.authenticate(key: SecureBytes(copying: key),
                                    data: Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8)) == tag)
}

// Expected outputs computed independently with Python's hmac module:
//   t = HMAC(ck, ikm); o1 = HMAC(t, 01); o2 = HMAC(t, o1 || 02); o3 = HMAC(t, o2 || 03)
@Test func noiseHKDFMatchesIndependentComputation() {
    let chainingKey = SecureBytes(copying: [UInt8](0..<32))
    let inputKeyMaterial = SecureBytes(copying: [UInt8](100..<132))
    let outputs = HKDF.derive(chainingKey: chainingKey, inputKeyMaterial: inputKeyMaterial, outputCount: 3)
    #expect(outputs.map { $0.copyToArray().hex } == [
        "17a4c5178f25587ebca4d057c9031c25b26ac2ba9aeccfaa1404d981cf1ec6f0",
        "2faefd37945f4adce33ffb1dc8b3fa604b91dc807f2aa8dfac3ab2fd8dcf2b1e",
        "eb2ddad11c3989a8cd8050207b23256de61556a81509f3a3df570c73392149e8",
    ])
}

@Test func noiseHKDFWithEmptyInputMatchesIndependentComputation() {
    let outputs = HKDF.derive(chainingKey: SecureBytes(copying: [UInt8](0..<32)), inputKeyMaterial: [], outputCount: 2)
    #expect(outputs.map { $0.copyToArray().hex } == [
        "1d7e0d6f1d9da2d68dabed53b5f88345f3fd01cb75411fbe5aa4293bd8f430d6",
        "3ed9b8035bbf370b8cfef7ff15007de45488e18660c84e3d996e8e6c658fa7f8",
    ])
}

@Test func blake2bMatchesRFC7693AndKeyedReference() throws {
    #expect(try Blake2b.hash(Array("abc".utf8), outputLength: 64).hex
        == "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1"
         + "7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
    // Keyed value from Python's hashlib.blake2b(key=..., digest_size=16).
    let key = [UInt8](0..<32)
    #expect(try Blake2b.hash(Array("ClawChat".utf8), key: key, outputLength: 16).hex
        == "03afbd42788be1dceb9b3b0131415f9c")
    #expect(try Blake2b.hash(Array("ClawChat".utf8), key: SecureBytes(copying: key), outputLength: 16).hex
        == "03afbd42788be1dceb9b3b0131415f9c")
}

@Test func blake2bRejectsOutOfRangeLengths() {
    #expect(throws: CryptoError.invalidOutputLength(8)) { try Blake2b.hash([1], outputLength: 8) }
    #expect(throws: CryptoError.invalidOutputLength(65)) { try Blake2b.hash([1], outputLength: 65) }
    #expect(throws: CryptoError.invalidKeyLength(8)) { try Blake2b.hash([1], key: [UInt8](repeating: 1, count: 8)) }
}
