// clawchat-relay: a bad network in a box, without root. It listens on a UDP address, relays every
// client to one upstream server through its own source port (like a NAT), and on the way drops,
// delays, jitters, duplicates and reorders datagrams, reproducibly from a seed. It prints its
// listening address as the first line of stdout (so scripts can start it with port 0), runs until
// SIGINT or SIGTERM, then prints what it did to each direction.
//
// SIGUSR1 toggles a blackhole (everything dropped both ways); SIGUSR2 remaps the client ports now.
import ArgumentParser
import ClawReactor
import ClawRelay
import Glibc

@main
struct ClawchatRelay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clawchat-relay",
        abstract: "Relay UDP to a server through an impaired, NAT-like path (no root needed).",
        discussion: """
            Point clients at the printed listening address instead of the server. Each client \
            address gets its own upstream source port. The first stdout line is the listening \
            address; counters follow on SIGINT/SIGTERM. SIGUSR1 toggles a blackhole that drops \
            everything both ways; SIGUSR2 remaps every client to a new upstream port at once.
            """)

    @Option(help: "Address and UDP port clients send to (port 0 picks a free one).")
    var listen: String = "127.0.0.1:0"

    @Option(help: "Address and UDP port of the server to relay to.")
    var upstream: String

    @Option(help: "Percent of datagrams dropped, per direction (0-100).")
    var loss: Double = 0

    @Option(help: "One-way delay added to every datagram, in milliseconds.")
    var delayMs: Double = 0

    @Option(help: "Uniform jitter around the delay (+/- this many milliseconds).")
    var jitterMs: Double = 0

    @Option(help: "Percent of datagrams delivered twice (0-100).")
    var duplicate: Double = 0

    @Option(help: "Percent of datagrams held back so later ones overtake them (0-100).")
    var reorder: Double = 0

    @Option(help: "Extra hold-back of a reordered datagram, in milliseconds (default: max(delay, 2 x jitter, 10)).")
    var reorderExtraMs: Double?

    @Option(help: "Bottleneck rate in kilobits per second, per direction (default: unlimited).")
    var rateKbit: Double?

    @Option(help: "Which traffic to impair: both, to-server or to-client.")
    var direction: String = "both"

    @Option(help: "Give every client a new upstream source port this often, in seconds (NAT rebinding).")
    var remapEveryS: Double?

    @Option(help: "Seed for the impairment decisions; the same seed and traffic repeat a run (default: random, printed on stderr).")
    var seed: UInt64?

    @Option(help: "debug, info, notice, warning or error (logs go to stderr).")
    var logLevel: String = "notice"

    func validate() throws {
        for (name, value) in [("--loss", loss), ("--duplicate", duplicate), ("--reorder", reorder)] where !(0...100).contains(value) {
            throw ValidationError("\(name) must be a percentage between 0 and 100, not \(value)")
        }
        for (name, value) in [("--delay-ms", delayMs), ("--jitter-ms", jitterMs), ("--reorder-extra-ms", reorderExtraMs ?? 0)] where !(value >= 0) {
            throw ValidationError("\(name) must not be negative, not \(value)")
        }
        if let rateKbit, !(rateKbit > 0) { throw ValidationError("--rate-kbit must be positive") }
        if let remapEveryS, !(remapEveryS > 0) { throw ValidationError("--remap-every-s must be positive") }
        guard RelayDirection(rawValue: direction) != nil || direction == "both" else {
            throw ValidationError("--direction must be both, to-server or to-client, not \(direction)")
        }
        guard Self.levels[logLevel] != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
    }

    static let levels: [String: LogLevel] = ["debug": .debug, "info": .info, "notice": .notice,
                                             "warning": .warning, "error": .error]

    func run() throws {
        ignoreSIGPIPE()
        unblock([SIGINT, SIGTERM, SIGUSR1, SIGUSR2])
        let impairment = ImpairmentConfig(
            lossPercent: loss, delay: .milliseconds(delayMs), jitter: .milliseconds(jitterMs),
            duplicatePercent: duplicate, reorderPercent: reorder,
            reorderExtra: reorderExtraMs.map { .milliseconds($0) },
            bytesPerSecond: rateKbit.map { max(Int($0 * 1000 / 8), 1) })
        let seed = seed ?? UInt64.random(in: .min ... .max)
        let config = RelayConfig(
            listen: try parseAddress(listen, flag: "--listen"), upstream: try parseAddress(upstream, flag: "--upstream"),
            toServer: direction == "to-client" ? .none : impairment,
            toClient: direction == "to-server" ? .none : impairment,
            seed: seed, remapEvery: remapEveryS.map { .seconds($0) })
        let log = Logger("clawchat-relay", minimum: Self.levels[logLevel]!)

        let loop = try EventLoop()
        try withExtendedLifetime(loop) {
            let relay = try UDPRelay(loop: loop, config: config, log: log)
            let stop = { loop.stop() }
            let handlers = [
                try SignalEvent(loop: loop, signal: SIGINT, handler: stop),
                try SignalEvent(loop: loop, signal: SIGTERM, handler: stop),
                try SignalEvent(loop: loop, signal: SIGUSR1) {
                    relay.blackhole.toggle()
                    log.notice(relay.blackhole ? "blackhole on: dropping everything" : "blackhole off")
                },
                try SignalEvent(loop: loop, signal: SIGUSR2) {
                    do {
                        try relay.remapPorts()
                        log.notice("remapped \(relay.clients.count) client(s) to new upstream ports")
                    } catch {
                        log.warning("remap failed, keeping the old ports: \(error)")
                    }
                },
            ]
            print(relay.listenAddress)
            fflush(nil)
            log.notice("relaying \(relay.listenAddress) -> \(relay.upstreamAddress), seed \(seed), "
                       + "to-server [\(describe(config.toServer))], to-client [\(describe(config.toClient))]")
            loop.runUntilStopped()
            for d in RelayDirection.allCases {
                print("\(d.rawValue): \(relay.counters(d))")
            }
            print("remaps: \(relay.remaps), clients: \(relay.clients.count)")
            fflush(nil)
            withExtendedLifetime(handlers) {}
        }
    }

    /// A parent may hand us a blocked signal mask (test runners and some supervisors do); the
    /// signals we act on must get through.
    private func unblock(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    private func parseAddress(_ text: String, flag: String) throws -> SocketAddress {
        do { return try SocketAddress(parsing: text) } catch { throw ValidationError("\(flag): \(error)") }
    }

    private func describe(_ c: ImpairmentConfig) -> String {
        guard c != .none else { return "none" }
        var parts = ["loss \(c.lossPercent)%", "delay \(c.delay) +/- \(c.jitter)",
                     "duplicate \(c.duplicatePercent)%", "reorder \(c.reorderPercent)% by \(c.effectiveReorderExtra)"]
        if let rate = c.bytesPerSecond { parts.append("rate \(rate) B/s") }
        return parts.joined(separator: ", ")
    }
}
