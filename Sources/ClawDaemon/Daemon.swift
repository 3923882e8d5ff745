import ClawChannel
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// The daemon's reactor glue: feeds datagrams and time to `ServerChannel`, performs what it
/// returns, keeps the device list and security files on disk, and routes requests to handlers
/// (the assistant's once one is attached; a plain echo for `chat` before that, for tests).
public final class Daemon {
    public let loop: EventLoop
    public let config: DaemonConfig
    let log: Logger
    /// The socket of the current port (with port rotation, the newest one).
    public private(set) var socket: UDPSocket
    /// Port rotation, when configured, and every socket it keeps open (the current one included).
    public let rotation: PortRotation?
    private var openSockets: [UInt16: UDPSocket] = [:]
    /// The socket each peer last reached us on with an authenticated packet: replies leave from it.
    private var route: [SocketAddress: UDPSocket] = [:]
    private var rotationTimer: Timer?
    public let server: ServerChannel
    private(set) var schedule = SecurityFileSchedule()
    private var devices: [DeviceRecord]
    public private(set) var publicAddresses: [SocketAddress] = []
    private var stun: StunDiscovery?
    private var wakeup: Timer!
    private var signals: [SignalEvent] = []
    /// Request handlers by method. `chat` answers with an echo until an assistant is attached;
    /// `echo`, `sink` and `source` are diagnostics (`clawchat-bench transfer`, the tests).
    public var handlers: [String: (IncomingRequest) -> Void] = DiagnosticHandlers.all
    /// One message connection per device with a session, and its requests in progress.
    private var connections: [UInt64: MessageDriver] = [:]
    private var requests: [UInt64: [UInt64: IncomingRequest]] = [:]
    private var retired: [MessageDriver] = []
    public var transportConfig = TransportConfig.forChannel
    public private(set) var securityFilesWritten = 0
    /// The assistant, once attached: it answers `chat` and the conversation methods.
    public private(set) var assistant: Assistant?
    /// The cron scheduler, once attached.
    public private(set) var cron: CronService?
    /// The file manager, once attached.
    public private(set) var files: FileService?
    public private(set) var stopped = false
    /// When `start` ran, and the local control socket it opened (`clawchatd status`).
    public private(set) var startedAt: Instant?
    public internal(set) var control: ControlSocket?
    /// systemd notifications (READY, STOPPING, WATCHDOG; no-ops without $NOTIFY_SOCKET): made by
    /// `start` from the process environment unless set before it.
    public var notify: SystemdNotify?

    public init(loop: EventLoop, config: DaemonConfig, log: Logger = Logger("clawchatd")) throws(DaemonError) {
        self.loop = loop
        self.config = config
        self.log = log
        do {
            try AtomicFile.ensureDirectory(config.stateDirectory, mode: 0o700)
            try AtomicFile.ensureDirectory(config.securityDirectory, mode: 0o700)
        } catch { throw .storage(error.description) }
        let key: X25519KeyPair
        do {
            key = try ServerKeyStore.loadOrCreate(config.serverKeyPath)
            devices = try DeviceStore.load(config.devicesPath)
        } catch { throw .storage("\(config.stateDirectory): \(error)") }
        var listen = config.listen
        if let settings = config.rotation {
            do {
                let r = try PortRotation(secret: try RotationKeyStore.loadOrCreate(config.rotationKeyPath),
                                         range: settings.range, period: settings.period, grace: settings.grace)
                rotation = r
                listen = listen.withPort(r.port(at: loop.clock.unixTime))
            } catch let e as PortRotation.Problem {
                throw .configuration("port rotation: \(e)")
            } catch {
                throw .storage("\(config.rotationKeyPath): \(error)")
            }
        } else {
            rotation = nil
        }
        do { socket = try UDPSocket(loop: loop, bindTo: listen) } catch { throw .network(error) }
        socket.setBufferSizes(receive: 4 << 20, send: 4 << 20)
        openSockets[socket.localAddress.port] = socket
        do {
            server = try ServerChannel(staticKey: key, cipher: config.cipher, devices: devices,
                                       timers: config.timers, limits: config.limits)
        } catch { throw .storage("cannot start the Noise handshake: \(error)") }
        wakeup = Timer(loop: loop) { [unowned self] in self.runTimers() }
        attach(socket)
        if rotation != nil { rotationTimer = Timer(loop: loop) { [unowned self] in self.rotate() } }
    }

    private func attach(_ s: UDPSocket) {
        s.onDatagram = { [unowned self, unowned s] bytes, from in self.receive(bytes, from: from, via: s) }
    }

    /// The ports open now (more than one only during a rotation's grace period).
    public var openPorts: [UInt16] { openSockets.keys.sorted() }

    // MARK: Port rotation

    /// At each epoch start: open the new port, make it current, tell connected devices; at the
    /// end of the grace: close the old one. Then sleep until the next change.
    private func rotate() {
        guard let rotation else { return }
        let now = loop.clock.unixTime
        let wanted = rotation.openPorts(at: now)
        let current = wanted[0]
        if openSockets[current] == nil {
            do {
                let s = try UDPSocket(loop: loop, bindTo: config.listen.withPort(current))
                s.setBufferSizes(receive: 4 << 20, send: 4 << 20)
                attach(s)
                openSockets[current] = s
            } catch {
                log.error("port rotation: cannot open port \(current): \(error); staying on \(socket.localAddress.port)")
            }
        }
        if let s = openSockets[current], s !== socket {
            log.notice("port rotation: now on port \(current) (previous \(socket.localAddress.port) stays open \(rotation.grace) s)")
            socket = s
            for d in connectedDevices { push("port-rotated", params: ["port": String(current)], body: [], to: d) }
            if schedule.active.contains(where: { $0.validUntil > now }) && !publicAddresses.isEmpty {
                newSecurityFile()   // an unspent security file must name the port that is open
            }
        }
        for (port, s) in openSockets where !wanted.contains(port) && s !== socket {
            openSockets[port] = nil
            route = route.filter { $0.value !== s }
            log.info("port rotation: closed port \(port)")
        }
        armRotation()
    }

    private func armRotation() {
        guard let rotation, let t = rotationTimer else { return }
        let now = loop.clock.unixTime
        t.schedule(after: .seconds(max(rotation.nextChange(after: now) - now, 1)))
    }

    /// What a device needs to find the port by itself: sent on each new message connection.
    private func announceRotation(to device: UInt64) {
        guard let r = rotation else { return }
        push("rotation", params: ["secret": Base64.encode(r.secret), "low": String(r.range.lowerBound), "high": String(r.range.upperBound),
                                  "period": String(r.period), "grace": String(r.grace), "port": String(socket.localAddress.port)],
             body: [], to: device)
    }

    /// Starts serving: resolves the public address, makes the first security file if needed.
    public func start() throws(DaemonError) {
        log.notice("listening on \(socket.localAddress), \(devices.count) paired device(s), cipher \(config.cipher)")
        startedAt = loop.clock.now
        try startControlSocket()
        writePidFile()
        if !config.publicAddresses.isEmpty {
            publicAddresses = config.publicAddresses
            startSecurityFiles()
        } else if !config.stunServers.isEmpty {
            let d = StunDiscovery(loop: loop, socket: socket, servers: config.stunServers) { [unowned self] mapped in
                if let mapped {
                    self.log.notice("STUN: public address \(mapped)")
                    self.publicAddresses = [mapped]
                } else if !self.config.listen.isUnspecified {
                    self.log.warning("STUN: no answer; using the listening address \(self.config.listen.host)")
                    self.publicAddresses = [self.config.listen]
                } else {
                    self.log.error(DaemonError.noPublicAddress.description)
                }
                self.stun = nil
                self.startSecurityFiles()
            }
            stun = d
            d.start()
        } else if !config.listen.isUnspecified {
            publicAddresses = [config.listen]
            startSecurityFiles()
        } else {
            throw .noPublicAddress
        }
        armRotation()
        notify = notify ?? SystemdNotify(loop: loop, log: log)
        notify?.ready(status: "listening on \(socket.localAddress), \(devices.count) paired device(s)")
    }

    /// Requests one device may have in progress at once (chats, transfers, everything): a bound
    /// on the work and memory one peer can ask for.
    public static let maxRequestsPerDevice = 64

    /// Hands `chat`, `history`, `clear`, `reload` and `assistant-status` to the assistant.
    public func attach(_ assistant: Assistant) {
        self.assistant = assistant
        handlers.merge(assistant.handlers) { _, new in new }
    }

    /// Hands the `cron-*` methods to the scheduler; its results are pushed to every device with a
    /// message connection.
    public func attach(_ cron: CronService) {
        self.cron = cron
        handlers.merge(cron.handlers) { _, new in new }
        cron.broadcast = { [unowned self] method, params, body in
            for d in self.connectedDevices { self.push(method, params: params, body: body, to: d) }
        }
    }

    /// Hands the `fs-*` methods to the file manager.
    public func attach(_ files: FileService) {
        self.files = files
        handlers.merge(files.handlers) { _, new in new }
    }

    /// SIGTERM/SIGINT stop the loop, SIGHUP reloads the device list, the context files and
    /// CRON.md (sessions stay up), SIGUSR1 makes a new security file. Separate from `start` because libevent allows signal events on one base only.
    public func installSignalHandlers() throws(ReactorError) {
        signals = [
            try SignalEvent(loop: loop, signal: SIGTERM) { [unowned self] in self.stop(reason: "SIGTERM") },
            try SignalEvent(loop: loop, signal: SIGINT) { [unowned self] in self.stop(reason: "SIGINT") },
            try SignalEvent(loop: loop, signal: SIGHUP) { [unowned self] in self.reload() },
            try SignalEvent(loop: loop, signal: SIGUSR1) { [unowned self] in self.newSecurityFile() },
        ]
    }

    /// Called first on SIGHUP, to re-read the configuration file (clawchatd sets it); returns
    /// what it changed, for the log.
    public var onReload: () -> [String] = { [] }

    /// SIGHUP: re-reads what the owner edits by hand, keeping every session and connection.
    public func reload() {
        var parts = onReload()
        reloadDevices()
        if let a = assistant { parts.append("context (\(a.reloadContext().prompt.utf8.count) bytes)") }
        if let c = cron {
            c.reload(reason: "SIGHUP")
            parts.append("CRON.md (\(c.planner.jobs.count) job(s))")
        }
        log.notice("SIGHUP: reloaded the device list" + parts.map { ", " + $0 }.joined() + "; \(connections.count) connection(s) kept")
    }

    public func stop(reason: String) {
        guard !stopped else { return }
        stopped = true
        log.notice("stopping (\(reason))")
        notify?.stopping(status: "stopping (\(reason))")
        AtomicFile.remove(config.pidPath)
        control?.close()
        cron?.shutdown()
        assistant?.shutdown()
        signals = []
        wakeup.cancel()
        for s in openSockets.values { s.flush() }   // loop.stop() breaks out before the end-of-pass flush
        loop.stop()
    }

    /// Makes a fresh security file now (`clawchatd secfile`, SIGUSR1).
    public func newSecurityFile() {
        guard !publicAddresses.isEmpty else { log.error(DaemonError.noPublicAddress.description); return }
        apply(schedule.demand(now: loop.clock.unixTime))
    }

    /// Re-reads the device list (after `clawchatd devices revoke`).
    public func reloadDevices() {
        do {
            devices = try DeviceStore.load(config.devicesPath)
            perform(server.reloadDevices(devices))
            log.notice("reloaded \(devices.count) paired device(s)")
        } catch {
            log.error("cannot reload \(config.devicesPath): \(error); keeping the current list")
        }
    }

    /// Sends a push message to a device's connection, if it has one. Returns whether it did.
    @discardableResult
    public func push(_ method: String, params: [String: String] = [:], body: [UInt8], to device: UInt64) -> Bool {
        guard let d = connections[device] else { return false }
        d.connection.push(method, params: params, body: body)
        d.flush()
        return true
    }

    /// Devices with an open message connection.
    public var connectedDevices: [UInt64] { connections.keys.sorted() }

    /// The message connection of a device (RTT, counters and buffers for status lines and tests).
    public func connection(of device: UInt64) -> MessageConnection? { connections[device]?.connection }

    // MARK: Message connections

    private func deliver(_ payload: [UInt8], from device: UInt64) {
        retired = []
        guard let (id, flags) = MessageConnection.header(of: payload) else { return }
        if flags & MessageConnection.flagEcho != 0 {
            perform(server.send(payload, toDevice: device))
            return
        }
        if let d = connections[device], d.connection.connectionID == id {
            d.receive(payload)
        } else if flags & MessageConnection.flagOpen != 0 {
            dropConnection(device, reason: "replaced by a new connection")
            let d = MessageDriver(loop: loop, connection: MessageConnection(isClient: false, connectionID: id, config: transportConfig,
                                                                            now: loop.clock.now)) { [unowned self] packets in
                for p in packets { self.perform(self.server.send(p, toDevice: device)) }
                // Out now when this runs outside a receive batch (an LLM token from curl, a
                // timer): the loop pass may go on to slow work, such as the journal's fdatasync.
                // Inside a batch the sockets send when the batch is handed out.
                for s in self.openSockets.values { s.flush() }
            }
            d.onEvent = { [unowned self] in self.handle($0, device: device) }
            connections[device] = d
            log.debug("device \(hexID(device)): message connection \(id) opened")
            d.receive(payload)
            announceRotation(to: device)
        } else {
            perform(server.send(MessageConnection.unknownConnectionReply(id), toDevice: device))
        }
    }

    private func dropConnection(_ device: UInt64, reason: String) {
        guard let d = connections.removeValue(forKey: device) else { return }
        d.connection.close(reason: reason)
        d.flush()
        d.shutdown()
        retired.append(d)   // it may be running the handler that got us here
        for r in (requests.removeValue(forKey: device) ?? [:]).values { r.cancelled(reason) }
    }

    private func handle(_ e: MessageEvent, device: UInt64) {
        switch e {
        case .message(let stream, let m):
            if let r = requests[device]?[stream] {
                if m.kind == .data { r.onData?(m.body) }
                return
            }
            guard m.kind == .request, let d = connections[device] else { return }
            let r = IncomingRequest(device: device, stream: stream, message: m, driver: d)
            guard let handler = handlers[m.method] else {
                r.fail(code: "unknown-method", "no such method: \(m.method.prefix(100))")
                return
            }
            guard (requests[device]?.count ?? 0) < Self.maxRequestsPerDevice else {
                r.fail(code: "busy", "\(Self.maxRequestsPerDevice) requests are already in progress for this device; try again when one ends")
                return
            }
            requests[device, default: [:]][stream] = r
            handler(r)
            if r.isFinished { requests[device]?[stream] = nil }
        case .streamEnded(let stream):
            if let r = requests[device]?[stream] {
                r.onEnd?()
                if r.isFinished { requests[device]?[stream] = nil }
            }
        case .streamReset(let stream, let reason):
            requests[device]?.removeValue(forKey: stream)?.cancelled(reason)
        case .streamWritable(let stream):
            if let r = requests[device]?[stream] {
                if r.isFinished { requests[device]?[stream] = nil } else { r.onWritable?() }
            }
        case .closed(let reason):
            log.info("device \(hexID(device)): message connection closed: \(reason)")
            dropConnection(device, reason: reason)
        }
        requests[device]?.forEach { if $0.value.isFinished { requests[device]?[$0.key] = nil } }
    }

    // MARK: Datagrams and timers

    private func receive(_ bytes: UnsafeRawBufferPointer, from: SocketAddress, via s: UDPSocket) {
        if let stun, stun.offer(bytes, from: from) { return }
        let actions = server.receive(bytes, from: from, now: loop.clock.now)
        // Only with rotation can a peer reach us on more than one socket; without it, no work here.
        if rotation != nil, openSockets.count > 1 || route[from] != nil, actions.contains(where: Self.isAuthenticated) {
            if route.count > 4096 { route.removeAll() }
            route[from] = s
        }
        perform(actions, from: from, via: s)
        // Deadlines only move earlier after a handshake; junk produces no action and no work.
        if !actions.isEmpty && (bytes.first != PacketType.transport.rawValue
            || actions.contains(where: { if case .sessionEstablished = $0 { return true }; return false })) {
            rearm()
        }
    }

    private func runTimers() {
        perform(server.tick(now: loop.clock.now))
        apply(schedule.tick(now: loop.clock.unixTime))
        rearm()
    }

    /// Arms the one wake-up timer for the earliest deadline of the channel and the security files.
    private func rearm() {
        var delay: Duration = .seconds(3600)
        if let t = server.nextWakeup { delay = min(delay, t - loop.clock.now) }
        if let u = schedule.nextWakeup { delay = min(delay, .seconds(u - loop.clock.unixTime)) }
        wakeup.schedule(after: max(delay, .milliseconds(1)))
    }

    private static func isAuthenticated(_ a: ServerChannel.Action) -> Bool {
        switch a {
        case .deliver, .sessionEstablished, .sessionRoamed, .devicePaired: return true
        default: return false
        }
    }

    /// `from`/`via`: the datagram being answered and the socket it came in on; an answer to it
    /// leaves from that socket (the peer checks where answers come from). Other sends use the
    /// socket the peer last reached us on.
    private func perform(_ actions: [ServerChannel.Action], from: SocketAddress? = nil, via: UDPSocket? = nil) {
        for action in actions {
            switch action {
            case .send(let bytes, let to):
                ((to == from ? via : nil) ?? route[to] ?? socket).enqueue(bytes, to: to)
            case .deliver(let device, let data):
                deliver(data, from: device)
            case .devicePaired(var record):
                record.pairedAt = loop.clock.unixTime
                devices.removeAll { $0.publicKey == record.publicKey }
                devices.append(record)
                saveDevices()
                perform(server.reloadDevices(devices))
                apply(schedule.paired())
                log.notice("device \(record.idString) \"\(record.name)\" paired; the security file is spent")
            case .sessionEstablished(let device, let address):
                log.info("session with device \(hexID(device)) established from \(address)")
            case .sessionRoamed(let device, let from, let to):
                log.info("device \(hexID(device)) moved from \(from) to \(to)")
            case .sessionClosed(let device, let reason):
                log.info("session with device \(hexID(device)) closed: \(reason)")
                dropConnection(device, reason: "session closed: \(reason)")
            case .compromised(let by):
                log.warning("COMPROMISED signalled by device \(hexID(by)): every key destroyed, every device revoked")
                devices = []
                for d in connections.keys { dropConnection(d, reason: "compromised") }
                saveDevices()
                apply(schedule.reset(now: loop.clock.unixTime))
            }
        }
    }

    private func hexID(_ id: UInt64) -> String { hexString(withUnsafeBytes(of: id.bigEndian) { Array($0) }) }

    private func saveDevices() {
        do { try DeviceStore.save(devices, to: config.devicesPath) } catch {
            log.error("cannot save the device list: \(error)")
        }
    }

    // MARK: Security files

    private func startSecurityFiles() {
        guard !publicAddresses.isEmpty else { return }
        if let existing = loadExistingSecurityFile() {
            schedule.adopt(existing, now: loop.clock.unixTime)
            server.setPairingSecrets(schedule.active.map(\.secret))
            log.info("security file \(config.securityFilePath) still valid; keeping it")
        } else {
            apply(schedule.start(now: loop.clock.unixTime, hasPairedDevices: !devices.isEmpty))
        }
        rearm()
    }

    private func loadExistingSecurityFile() -> SecurityFileSchedule.Issued? {
        guard let bytes = try? AtomicFile.read(config.securityFilePath),
              let file = try? SecurityFile.open(bytes, with: config.bootstrapKey, now: loop.clock.unixTime),
              file.serverPublicKey == server.staticKey.publicKey, file.port == socket.localAddress.port else { return nil }
        return .init(fileID: file.fileID, secret: file.pairingSecret, validFrom: file.validFrom, validUntil: file.validUntil)
    }

    private func apply(_ effects: [SecurityFileSchedule.Effect]) {
        for effect in effects {
            switch effect {
            case .write(let issued):
                let file = SecurityFile(cipher: config.cipher, validFrom: issued.validFrom, validUntil: issued.validUntil,
                                        fileID: issued.fileID, serverPublicKey: server.staticKey.publicKey,
                                        pairingSecret: issued.secret, port: socket.localAddress.port,
                                        addresses: publicAddresses)
                do {
                    let bytes = try file.sealed(with: config.bootstrapKey, argon2OpsLimit: config.argon2OpsLimit,
                                                argon2MemLimit: config.argon2MemLimit)
                    try AtomicFile.write(bytes, to: config.securityFilePath, mode: 0o600)
                    securityFilesWritten += 1
                    log.notice("wrote \(config.securityFilePath) (valid for \(SecurityFile.validity / 60) min)")
                } catch {
                    log.error("cannot write the security file: \(error)")
                }
            case .remove:
                AtomicFile.remove(config.securityFilePath)
            }
        }
        server.setPairingSecrets(schedule.active.map(\.secret))
        rearm()
    }

    private func writePidFile() {
        do { try AtomicFile.write(Array("\(getpid())\n".utf8), to: config.pidPath, mode: 0o644) } catch {
            log.warning("cannot write the pid file: \(error)")
        }
    }
}
