import ClawCrypto
import ClawReactor

/// The transport keys one handshake produced, with their indices, send counter and replay
/// window. Zeroed when superseded (after a grace period) or when the session ends.
public final class Keypair {
    /// The index we chose: the peer writes it in the header of packets for us.
    public let localIndex: UInt32
    /// The index the peer chose: we write it in the header of packets for the peer.
    public let remoteIndex: UInt32
    public let created: Instant
    private var sendCipher: NoiseCipherState
    private var receiveCipher: NoiseCipherState
    private var sendCounter: UInt64 = 0
    private var replay = ReplayWindow()
    public private(set) var isZeroed = false

    init(localIndex: UInt32, remoteIndex: UInt32, send: NoiseCipherState, receive: NoiseCipherState, created: Instant) {
        self.localIndex = localIndex
        self.remoteIndex = remoteIndex
        self.sendCipher = send
        self.receiveCipher = receive
        self.created = created
    }

    deinit { zeroize() }

    /// Encrypts `plaintext` into a transport datagram, or nil if this key must not send any more.
    /// One allocation: the datagram itself; the AEAD writes straight into it.
    func seal(_ plaintext: [UInt8]) -> [UInt8]? {
        guard !isZeroed, sendCounter < ReplayWindow.rejectAfterMessages,
              plaintext.count <= Wire.maxTransportPlaintext else { return nil }
        let counter = sendCounter
        sendCounter += 1
        let headerLength = Wire.transportHeaderLength
        var packet = [UInt8](repeating: 0, count: headerLength + plaintext.count + Wire.tagLength)
        let ok = packet.withUnsafeMutableBytes { out -> Bool in
            out[0] = PacketType.transport.rawValue
            out.storeBytes(of: remoteIndex.bigEndian, toByteOffset: 4, as: UInt32.self)
            out.storeBytes(of: counter.bigEndian, toByteOffset: 8, as: UInt64.self)
            let header = UnsafeRawBufferPointer(rebasing: out[0..<headerLength])
            let body = UnsafeMutableRawBufferPointer(rebasing: out[headerLength...])
            return plaintext.withUnsafeBytes { plain in
                (try? sendCipher.encrypt(nonce: counter, ad: header, plaintext: plain, into: body)) != nil
            }
        }
        return ok ? packet : nil
    }

    /// Decrypts a transport datagram addressed to this key. Returns the plaintext and whether its
    /// counter is the newest seen (only such packets may move the peer's address), or nil when it
    /// does not authenticate or is a replay. The replay window is updated only after authentication.
    func open(_ datagram: UnsafeRawBufferPointer, counter: UInt64) -> (plaintext: [UInt8], isNewest: Bool)? {
        guard !isZeroed, replay.wouldAccept(counter) else { return nil }
        let headerLength = Wire.transportHeaderLength
        var plain = [UInt8](repeating: 0, count: datagram.count - headerLength - Wire.tagLength)
        let ok = plain.withUnsafeMutableBytes { out in
            (try? receiveCipher.decrypt(nonce: counter, ad: UnsafeRawBufferPointer(rebasing: datagram[0..<headerLength]),
                                        ciphertext: UnsafeRawBufferPointer(rebasing: datagram[headerLength...]),
                                        into: out)) != nil
        }
        guard ok, replay.accept(counter) else { return nil }
        return (plain, replay.highest == counter)
    }

    /// Destroys the key material now.
    public func zeroize() {
        guard !isZeroed else { return }
        sendCipher.zeroize()
        receiveCipher.zeroize()
        isZeroed = true
    }

    /// For tests: whether the key bytes in memory are really zero.
    public var keyMemoryIsZero: Bool { sendCipher.keyIsZero && receiveCipher.keyIsZero }
}

/// Allocates random, unused 32-bit session indices.
struct IndexAllocator {
    private(set) var used = Set<UInt32>()
    mutating func allocate() -> UInt32 {
        while true {
            let i = Random.uniform(UInt32.max)
            if i != 0, used.insert(i).inserted { return i }
        }
    }
    mutating func release(_ i: UInt32) { used.remove(i) }
}
