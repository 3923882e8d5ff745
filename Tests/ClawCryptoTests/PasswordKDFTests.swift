import ClawCrypto
import Testing

private let passphrase = Array("correct horse battery staple".utf8)

private func derive(salt: [UInt8]) throws -> [UInt8] {
    try PasswordKDF.argon2id(passphrase: passphrase, salt: salt, outputLength: 32,
                             opsLimit: PasswordKDF.opsLimitMin, memLimit: PasswordKDF.memLimitMin).copyToArray()
}

@Test func argon2idIsDeterministicForTheSameSalt() throws {
    let salt = [UInt8](repeating: 0x42, count: PasswordKDF.saltLength)
    let first = try derive(salt: salt)
    #expect(first.count == 32)
    #expect(first == (try derive(salt: salt)))
}

@Test func argon2idDiffersForADifferentSalt() throws {
    let one = try derive(salt: [UInt8](repeating: 0x42, count: PasswordKDF.saltLength))
    let two = try derive(salt: [UInt8](repeating: 0x43, count: PasswordKDF.saltLength))
    #expect(one != two)
}

@Test func argon2idRejectsBadSaltAndOutputLengths() {
    #expect(PasswordKDF.saltLength == 16)
    #expect(throws: CryptoError.invalidSaltLength(8)) { try derive(salt: [UInt8](repeating: 1, count: 8)) }
    #expect(throws: CryptoError.invalidOutputLength(4)) {
        try PasswordKDF.argon2id(passphrase: passphrase, salt: [UInt8](repeating: 1, count: 16), outputLength: 4,
                                 opsLimit: PasswordKDF.opsLimitMin, memLimit: PasswordKDF.memLimitMin)
    }
}

@Test func argon2idPresetsAreOrdered() {
    #expect(PasswordKDF.opsLimitModerate > PasswordKDF.opsLimitInteractive)
    #expect(PasswordKDF.memLimitModerate > PasswordKDF.memLimitInteractive)
    #expect(PasswordKDF.memLimitInteractive >= PasswordKDF.memLimitMin)
}

@Test func cryptoErrorsDescribeTheProblem() {
    #expect(CryptoError.invalidNonceLength(8).description.contains("12"))
    #expect(CryptoError.invalidSaltLength(8).description.contains("16"))
    #expect(CryptoError.authenticationFailed.description.contains("authentication failed"))
}
