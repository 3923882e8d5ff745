import ClawReactor
import Glibc

/// The streaming mock LLM of the tests (`Tests/mock-llm/mock_llm.py`) as a child process of the
/// bench, on 127.0.0.1 and a free port. Its standard input is a pipe that only this process
/// holds: the mock exits at end of input, so it never outlives the bench, and `stop()` (or
/// `deinit`) also ends it by pid.
final class MockLLMServer {
    let child: ChildProcess
    let port: UInt16
    let script: String
    let python: String

    /// The script: `explicit`, else `Tests/mock-llm/mock_llm.py` under the working directory or
    /// above this executable (`.build*/release/clawchat-bench` sits three levels below the
    /// repository). Nil if there is none.
    static func findScript(_ explicit: String?) -> String? {
        if let explicit { return access(explicit, R_OK) == 0 ? explicit : nil }
        let relative = "Tests/mock-llm/mock_llm.py"
        var candidates = [relative]
        var dir = executableDirectory()
        for _ in 0..<4 {
            dir = AtomicFile.directory(of: dir)
            candidates.append("\(dir)/\(relative)")
        }
        return candidates.first { access($0, R_OK) == 0 }
    }

    /// The directory of this executable (through /proc/self/exe).
    static func executableDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return AtomicFile.directory(of: path)
    }

    init(python: String, script: String, dir: String) throws(BenchError) {
        self.python = python
        self.script = script
        let out = "\(dir)/mock-llm.out"
        child = try ChildProcess("mock LLM", executable: python, arguments: ["-u", script], output: out, stdinPipe: true)
        port = try child.waitForPort(file: out)
    }

    deinit { child.terminate() }

    func stop() { child.terminate() }

    /// The base URL of `scenario` (a name and its options, e.g. `ok,pieces=20`), up to /v1.
    func baseURL(_ scenario: String) -> String { "http://127.0.0.1:\(port)/s/\(scenario)/v1" }

    var controlURL: String { "http://127.0.0.1:\(port)" }
}

/// A plain HTTP exchange on the loop, for the mock's control endpoints (`/_log`, `/_reset`).
func httpExchange(_ request: HTTPRequest, multi: CurlMulti, loop: EventLoop) throws(BenchError) -> (status: Int, body: [UInt8]) {
    let transfer: HTTPTransfer
    do { transfer = try multi.start(request) } catch { throw BenchError("\(request): \(error)") }
    var body: [UInt8] = []
    var result: HTTPResult?
    transfer.onBody = { body += $0 }
    transfer.onComplete = { result = $0 }
    guard loop.run(until: .seconds(10), condition: { result != nil }), let result else {
        transfer.cancel()
        throw BenchError("\(request): no answer within 10 s")
    }
    if let error = result.error { throw BenchError("\(request): \(error)") }
    return (result.status, body)
}

/// The first-token and full-reply times of one streamed answer, from the moment the request
/// was handed to the client library, in seconds.
struct ChatLatency {
    var firstToken: Double
    var full: Double
}

/// Streamed OpenAI Chat Completions straight from the mock through the reactor's curl multi
/// handle, the HTTP client the daemon uses: one transfer at a time, the connection kept alive
/// between them by curl as the daemon's is. The first token is the first SSE event whose delta
/// has non-empty content; the full reply is the end of the HTTP response.
final class DirectChatClient {
    let loop: EventLoop
    let multi: CurlMulti
    let url: String
    /// The body the daemon sent for the same message (taken from the mock's log).
    let body: [UInt8]

    init(loop: EventLoop, multi: CurlMulti, url: String, body: [UInt8]) {
        self.loop = loop
        self.multi = multi
        self.url = url
        self.body = body
    }

    /// One request; throws unless the answer is complete, 200, and its text is `expected`.
    func measure(expected: String) throws(BenchError) -> ChatLatency {
        let request = HTTPRequest(method: "POST", url: url,
                                  headers: [("Content-Type", "application/json"), ("Accept", "text/event-stream")],
                                  body: body)
        var events = SSEScanner()
        var result: HTTPResult?
        var firstToken: Instant?
        var end = Instant.zero
        let clock = loop.clock
        let t0 = clock.now
        let transfer: HTTPTransfer
        do { transfer = try multi.start(request) } catch { throw BenchError("direct request to the mock: \(error)") }
        transfer.onBody = { bytes in
            if events.take(bytes), firstToken == nil { firstToken = clock.now }
        }
        transfer.onComplete = {
            end = clock.now
            result = $0
        }
        guard loop.run(until: .seconds(10), condition: { result != nil }), let result else {
            transfer.cancel()
            throw BenchError("direct request to the mock: no complete answer within 10 s")
        }
        if let error = result.error { throw BenchError("direct request to the mock: \(error)") }
        guard result.status == 200 else { throw BenchError("direct request to the mock: HTTP \(result.status)") }
        guard let firstToken, events.text == expected else {
            throw BenchError("direct request to the mock: the streamed text is \(jsonQuoted(events.text)), not \(jsonQuoted(expected))")
        }
        return ChatLatency(firstToken: (firstToken - t0).seconds, full: (end - t0).seconds)
    }
}

/// Just enough of an SSE reader for the mock's OpenAI stream: events end with a blank line; a
/// `data:` line holds a chunk whose `choices[0].delta.content` is a piece of the answer.
struct SSEScanner {
    private var pending: [UInt8] = []
    private(set) var text = ""

    /// Adds received bytes; true if they completed at least one event with a non-empty piece.
    mutating func take(_ bytes: UnsafeRawBufferPointer) -> Bool {
        pending += bytes
        var gotPiece = false
        var start = 0
        var i = 0
        while i + 1 < pending.count {
            if pending[i] == 0x0A && pending[i + 1] == 0x0A {
                if let piece = Self.piece(pending[start..<i]), !piece.isEmpty {
                    text += piece
                    gotPiece = true
                }
                start = i + 2
                i = start
            } else {
                i += 1
            }
        }
        if start > 0 { pending.removeFirst(start) }
        return gotPiece
    }

    private static func piece(_ event: ArraySlice<UInt8>) -> String? {
        for line in event.split(separator: 0x0A) where line.starts(with: Array("data:".utf8)) {
            let data = line.dropFirst(5).drop { $0 == 0x20 }
            if data.elementsEqual("[DONE]".utf8) { return nil }
            guard let chunk = try? JSONValue.parse(data) else { return nil }
            return chunk["choices"]?[0]?["delta"]?["content"]?.stringValue
        }
        return nil
    }
}
