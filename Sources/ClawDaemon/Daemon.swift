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
    public let socket: UDPSocket
    public let server: ServerChannel
    private var schedule = SecurityFileSchedule()
    private var devices: [DeviceRecord]
    private var publicAddresses: [SocketAddress] = []
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
        do { socket = try UDPSocket(loop: loop, bindTo: config.listen) } catch { throw .network(error) }
        socket.setBufferSizes(receive: 4 << 20, send: 4 << 20)
        do {
            server = try ServerChannel(staticKey: key, cipher: config.cipher, devices: devices,
                                       timers: config.timers, limits: config.limits)
        } catch { throw .storage("cannot start the Noise handshake: \(error)") }
        wakeup = Timer(loop: loop) { [unowned self] in self.runTimers() }
        socket.onDatagram = { [unowned self] bytes, from in self.receive(bytes, from: from) }
    }

    /// Starts serving: resolves the public address, makes the first security file if needed.
    public func start() throws(DaemonError) {
        log.notice("listening on \(socket.localAddress), \(devices.count) paired device(s), cipher \(config.cipher)")
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
    }

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

    /// SIGTERM/SIGINT stop the loop, SIGHUP reloads the device list, SIGUSR1 makes a new
    /// security file. Separate from `start` because libevent allows signal events on one base only.
    public func installSignalHandlers() throws(ReactorError) {
        signals = [
            try SignalEvent(loop: loop, signal: SIGTERM) { [unowned self] in self.stop(reason: "SIGTERM") },
            try SignalEvent(loop: loop, signal: SIGINT) { [unowned self] in self.stop(reason: "SIGINT") },
            try SignalEvent(loop: loop, signal: SIGHUP) { [unowned self] in
                self.reloadDevices()
                self.assistant?.reloadContext()
                self.cron?.reload(reason: "SIGHUP")
            },
            try SignalEvent(loop: loop, signal: SIGUSR1) { [unowned self] in self.newSecurityFile() },
        ]
    }

    public func stop(reason: String) {
        guard !stopped else { return }
        stopped = true
        log.notice("stopping (\(reason))")
        AtomicFile.remove(config.pidPath)
        cron?.shutdown()
        assistant?.shutdown()
        signals = []
        wakeup.cancel()
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
            }
            d.onEvent = { [unowned self] in self.handle($0, device: device) }
            connections[device] = d
            log.debug("device \(hexID(device)): message connection \(id) opened")
            d.receive(payload)
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
                r.fail(code: "unknown-method", "no such method: \(m.method)")
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

    private func receive(_ bytes: UnsafeRawBufferPointer, from: SocketAddress) {
        if let stun, stun.offer(bytes, from: from) { return }
        let actions = server.receive(bytes, from: from, now: loop.clock.now)
        perform(actions)
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

    private func perform(_ actions: [ServerChannel.Action]) {
        for action in actions {
            switch action {
            case .send(let bytes, let to):
                socket.send(bytes, to: to)
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
