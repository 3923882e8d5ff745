import ClawCrypto

/// A paired device as the server knows it: its static public key and the pre-shared key that
/// replaced the pairing secret when it paired.
public struct DeviceRecord {
    public var id: UInt64
    public var name: String
    public var publicKey: [UInt8]
    public var psk: SecureBytes
    /// UNIX seconds of the pairing.
    public var pairedAt: Int64

    public init(id: UInt64, name: String, publicKey: [UInt8], psk: SecureBytes, pairedAt: Int64) {
        self.id = id
        self.name = name
        self.publicKey = publicKey
        self.psk = psk
        self.pairedAt = pairedAt
    }

    /// The id as users see and type it.
    public var idString: String { hexString(withUnsafeBytes(of: id.bigEndian) { Array($0) }) }
}

/// The Noise protocol name for a cipher: the pattern and hash are fixed by this protocol.
public func channelProtocolName(_ cipher: AEADCipher) -> String {
    cipher == .aes256gcm ? "Noise_IKpsk2_25519_AESGCM_SHA256" : "Noise_IKpsk2_25519_ChaChaPoly_SHA256"
}
