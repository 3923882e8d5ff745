import ArgumentParser
import ClawChannel
import ClawReactor
import ClawRelay
import Glibc

/// The impairment relay of the `transfer` scenario, run by the parent as a child process so that
/// it has its own event loop and CPU time, like the daemon. It is the `UDPRelay` that
/// `clawchat-relay` runs, started through this executable so that it needs no other binary and
/// exits when its parent is gone, like the other children. It listens on 127.0.0.1, writes its
/// port to DIR/port, relays to the daemon's port with the same impairment both ways, and on
/// SIGTERM writes its counters to DIR/counters before it exits.
struct RelayServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_relay",
        abstract: "Internal: the impairment relay of the transfer benchmark.",
        shouldDisplay: false)

    @Option(help: "Private directory for the port and counters files.")
    var dir: String

    @Option(help: "UDP port of the daemon on 127.0.0.1.")
    var upstreamPort: UInt16

    @Option(help: "Percent of datagrams dropped, each direction.")
    var loss: Double = 0

    @Option(help: "One-way delay added to every datagram, in milliseconds.")
    var delayMs: Double = 0

    @Option(help: "Seed of the loss decisions.")
    var seed: UInt64 = 1

    func run() throws {
        try AtomicFile.ensureDirectory(dir, mode: 0o700)
        let loop = try EventLoop()
        let parent = getppid()
        let impairment = ImpairmentConfig(lossPercent: loss, delay: .milliseconds(delayMs))
        let relay = try UDPRelay(loop: loop, config: RelayConfig(
            listen: .loopback(port: 0), upstream: .loopback(port: upstreamPort), bothWays: impairment, seed: seed))
        let signals = try [SIGTERM, SIGINT].map { try SignalEvent(loop: loop, signal: $0) { loop.stop() } }
        let orphanCheck = Timer(loop: loop) { if getppid() != parent { loop.stop() } }
        orphanCheck.schedulePeriodic(every: .milliseconds(200))
        try AtomicFile.write(Array("\(relay.listenAddress.port)\n".utf8), to: "\(dir)/port", mode: 0o600)
        loop.runUntilStopped()
        let counters = RelayDirection.allCases.map { RelayTally(relay.counters($0)).line(for: $0) }
        try AtomicFile.write(Array(counters.joined().utf8), to: "\(dir)/counters", mode: 0o600)
        withExtendedLifetime((relay, signals, orphanCheck)) {}
    }
}

/// What the relay did to one direction over its life, as the parent reads it back.
struct RelayTally {
    /// Datagrams that entered the direction.
    var received: Int
    /// Dropped by the loss model (the impairment asked for).
    var lost: Int
    /// Dropped for any other reason: queue full, send failed (the relay itself could not keep up).
    var otherDrops: Int

    init(_ c: RelayCounters) {
        received = c.received
        lost = c.lost
        otherDrops = c.dropped - c.lost
    }

    init?(line: Substring) {
        let n = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard n.count == 3 else { return nil }
        (received, lost, otherDrops) = (n[0], n[1], n[2])
    }

    func line(for direction: RelayDirection) -> String { "\(direction.rawValue) \(received) \(lost) \(otherDrops)\n" }

    /// Reads the counters file: one line per direction.
    static func read(_ bytes: [UInt8]) -> [RelayDirection: RelayTally] {
        var out: [RelayDirection: RelayTally] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            if let name = line.split(separator: " ").first, let d = RelayDirection(rawValue: String(name)),
               let t = RelayTally(line: line) { out[d] = t }
        }
        return out
    }
}
