import ClawReactor
import ClawAssistant
import Foundation
import Glibc

/// The mock LLM server of `Tests/mock-llm/mock_llm.py` in a child process: real OpenAI and
/// Anthropic streaming formats, misbehaving on demand (the scenario is part of the base URL).
/// It exits when our end of its stdin closes, so it never outlives the test process.
final class MockLLM: @unchecked Sendable {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("mock-llm/mock_llm.py").path

    let port: Int
    let logPath: String
    private let process = Process()
    private let stdinPipe = Pipe()
    private let stdoutPipe = Pipe()

    init() throws {
        logPath = "/tmp/clawchat-mockllm-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-u", Self.script, "--log-file", logPath]
        process.standardInput = stdinPipe
        process.standardOutput = stdoutPipe
        try process.run()
        var line: [UInt8] = []
        let fd = stdoutPipe.fileHandleForReading.fileDescriptor
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var byte: UInt8 = 0
        while line.count < 16, poll(&pfd, 1, 10_000) > 0, read(fd, &byte, 1) == 1, byte != 10 { line.append(byte) }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            process.terminate()
            throw MockError.noPort(String(decoding: line, as: UTF8.self))
        }
        self.port = port
    }

    enum MockError: Error { case noPort(String) }

    deinit {
        try? stdinPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        unlink(logPath)
    }

    func base(_ scenario: String) -> String { "http://127.0.0.1:\(port)/s/\(scenario)/v1" }

    /// Every event the mock recorded so far (requests, finished and closed responses).
    func events() -> [JSONValue] {
        guard let data = FileManager.default.contents(atPath: logPath) else { return [] }
        return data.split(separator: 10).compactMap { try? JSONValue.parse(Array($0)) }
    }

    func events(_ kind: String, scenario: String) -> [JSONValue] {
        events().filter { $0["event"]?.stringValue == kind && $0["scenario"]?.stringValue == scenario }
    }
}

/// Wall-clock seconds, comparable with the mock's `time.time()`.
func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
