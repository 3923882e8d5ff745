import ClawChannel
import ClawCrypto
import ClawReactor

/// Asks STUN servers for our reflexive address through a given socket (the daemon's own, so the
/// mapping it learns is the one clients will reach). Responses with an unknown transaction id are
/// ignored. Retries each server a few times; reports nil if nobody answered.
public final class StunDiscovery {
    private let socket: UDPSocket
    private let servers: [SocketAddress]
    private var transactions: [[UInt8]: SocketAddress] = [:]
    private var attempts = 0
    private let maxAttempts: Int
    private let timer: Timer
    private var finished = false
    private let completion: (SocketAddress?) -> Void

    public init(loop: EventLoop, socket: UDPSocket, servers: [SocketAddress], maxAttempts: Int = 3,
                completion: @escaping (SocketAddress?) -> Void) {
        self.socket = socket
        self.servers = servers
        self.maxAttempts = maxAttempts
        self.completion = completion
        var retry: (() -> Void)?
        timer = Timer(loop: loop) { retry?() }
        retry = { [unowned self] in self.sendRound() }
    }

    public func start() { sendRound() }

    /// Offers a datagram; returns true if it was a STUN answer to us (consumed).
    public func offer(_ bytes: UnsafeRawBufferPointer, from: SocketAddress) -> Bool {
        guard !finished, bytes.count >= 20, bytes.readMagic else { return false }
        let txid = Array(bytes[8..<20])
        guard transactions[txid] != nil else { return true }   // a STUN packet, but not ours
        guard let mapped = try? STUN.parseBindingResponse(Array(bytes), transactionID: txid) else { return true }
        finish(mapped)
        return true
    }

    private func sendRound() {
        guard !finished else { return }
        if attempts >= maxAttempts { finish(nil); return }
        attempts += 1
        for server in servers where server.family == socket.localAddress.family {
            let txid = Random.bytes(count: 12)
            transactions[txid] = server
            socket.send(STUN.bindingRequest(transactionID: txid), to: server)
        }
        timer.schedule(after: .milliseconds(500 * attempts))
    }

    private func finish(_ result: SocketAddress?) {
        guard !finished else { return }
        finished = true
        timer.cancel()
        completion(result)
    }
}

extension UnsafeRawBufferPointer {
    /// Bytes 4..<8 hold the STUN magic cookie.
    var readMagic: Bool { self[4] == 0x21 && self[5] == 0x12 && self[6] == 0xA4 && self[7] == 0x42 }
}
