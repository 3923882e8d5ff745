import ClawReactor
import Foundation
import Glibc
import Testing

/// The `clawchat-relay` binary beside the test bundle. `swift test` compiles but does not
/// always link executables, so the test needs a `swift build` with the same scratch path first.
let relayBinary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    .deletingLastPathComponent().appendingPathComponent("clawchat-relay").path

/// Reads from `fd` until a newline or until `deadline` (loop clock) passes.
func readLine(_ fd: Int32, clock: MonotonicClock, deadline: Duration) -> String {
    let end = clock.now + deadline
    var bytes: [UInt8] = []
    while bytes.last != 0x0A {
        let left = end - clock.now
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard left > .zero, poll(&pfd, 1, Int32(left.nanoseconds / 1_000_000) + 1) > 0 else { break }
        var byte: UInt8 = 0
        guard read(fd, &byte, 1) == 1 else { break }
        bytes.append(byte)
    }
    return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
}

@Suite(.serialized) struct RelayExecutableTests {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: relayBinary),
                   "run `swift build` first: clawchat-relay is not beside the test bundle"))
    func relayPrintsItsAddressRelaysTogglesTheBlackholeAndReportsOnSIGTERM() throws {
        let loop = try EventLoop()
        let server = try UDPSocket(loop: loop, bindTo: .loopback())
        server.onDatagram = { bytes, from in server.send(bytes, to: from) }
        let client = try UDPSocket(loop: loop, bindTo: .loopback())
        var replies = 0
        client.onDatagram = { _, _ in replies += 1 }

        let process = Process()
        let stdout = Pipe()
        process.executableURL = URL(fileURLWithPath: relayBinary)
        process.arguments = ["--listen", "127.0.0.1:0", "--upstream", "\(server.localAddress)",
                             "--delay-ms", "5", "--jitter-ms", "2", "--seed", "42", "--log-level", "error"]
        process.standardOutput = stdout
        try process.run()
        defer {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        let fd = stdout.fileHandleForReading.fileDescriptor
        let relay = try SocketAddress(parsing: readLine(fd, clock: loop.clock, deadline: .seconds(10)))
        #expect(relay.isLoopback && relay.port != 0)

        for i in 0..<20 { client.send([UInt8(i)], to: relay) }
        #expect(loop.run(until: .seconds(5)) { replies == 20 })

        // SIGUSR1 cuts the cable. The signal and the datagrams are separate events to the relay,
        // so give it time to handle the signal before sending.
        kill(process.processIdentifier, SIGUSR1)
        usleep(100_000)
        for i in 0..<5 { client.send([UInt8(i)], to: relay) }
        loop.run(until: .milliseconds(150)) { false }
        #expect(replies == 20)

        kill(process.processIdentifier, SIGTERM)
        var lines: [String] = []
        for _ in 0..<3 { lines.append(readLine(fd, clock: loop.clock, deadline: .seconds(5))) }
        let end = loop.clock.now + .seconds(5)
        while process.isRunning && loop.clock.now < end { usleep(10_000) }
        #expect(!process.isRunning)
        #expect(process.terminationStatus == 0)
        #expect(lines[0].hasPrefix("to-server: received 25, forwarded 20, dropped 5"), "\(lines[0])")
        #expect(lines[0].contains("silenced 5"))
        #expect(lines[1].hasPrefix("to-client: received 20, forwarded 20, dropped 0"), "\(lines[1])")
        #expect(lines[2] == "remaps: 0, clients: 1")
    }
}
