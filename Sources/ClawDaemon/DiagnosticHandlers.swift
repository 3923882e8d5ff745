import ClawChannel
import ClawCrypto
import ClawTransport

/// The request handlers the daemon has before the assistant exists, and the diagnostics that
/// stay: `chat` (an echo), `echo` (the body back, unchanged), `sink` (swallows an upload and
/// answers its size and SHA-256) and `source` (streams `bytes` bytes of a reproducible pattern and
/// ends with their SHA-256). `clawchat-bench transfer` and the tests use the last two.
public enum DiagnosticHandlers {
    public static var all: [String: (IncomingRequest) -> Void] { [
        "chat": { $0.reply(Array("echo: ".utf8) + $0.message.body) },
        "echo": { $0.reply($0.message.body, params: $0.message.params) },
        "sink": sink,
        "source": source,
    ] }

    /// The most `source` sends in one request (a bound on what one request can make us do).
    public static let maxSource: UInt64 = 64 << 30
    /// Bytes per `data` message of `source`.
    public static let chunkSize = 64 << 10

    static func sink(_ r: IncomingRequest) {
        var hasher = SHA256.Hasher()
        var total = 0
        r.onData = { bytes in
            hasher.update(bytes)
            total += bytes.count
        }
        r.onEnd = {
            r.reply(params: ["bytes": String(total), "sha256": hexString(hasher.finalize())])
        }
    }

    /// Chunk `k` of the `source` pattern: its index, then a fixed pseudo-random block, so that a
    /// misplaced chunk changes the hash.
    public static func sourceChunk(_ k: UInt64, length: Int) -> [UInt8] {
        var c = block
        for i in 0..<8 { c[i] = UInt8(truncatingIfNeeded: k >> UInt64(56 - 8 * i)) }
        return length == c.count ? c : Array(c[..<length])
    }

    private static let block: [UInt8] = {
        var x: UInt64 = 0x243F_6A88_85A3_08D3
        return (0..<chunkSize).map { _ in
            x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: x >> 56)
        }
    }()

    static func source(_ r: IncomingRequest) {
        guard let total = r.message.params["bytes"].flatMap({ UInt64($0) }), total <= maxSource else {
            r.fail(code: "bad-request", "source needs a byte count \"bytes\" of at most \(maxSource)")
            return
        }
        var sent: UInt64 = 0
        var k: UInt64 = 0
        var hasher = SHA256.Hasher()
        var cancelled = false
        r.onCancel = { _ in cancelled = true }
        func produce() {
            // Keep about 2 MB queued: enough to fill the path, bounded whatever the file size.
            while !cancelled, !r.isFinished, sent < total, r.queuedBytes < 2 << 20 {
                let n = Int(min(UInt64(chunkSize), total - sent))
                let chunk = sourceChunk(k, length: n)
                hasher.update(chunk)
                sent += UInt64(n)
                k += 1
                r.data(chunk)
            }
            if sent == total, !r.isFinished {
                r.reply(params: ["bytes": String(total), "sha256": hexString(hasher.finalize())])
            }
        }
        r.onWritable = produce
        produce()
    }
}
