// clawchat: the ClawChat terminal client. `clawchat pair FILE.sec` pairs this device once; after
// that `clawchat` opens a chat over the encrypted channel with no file at all.
import ArgumentParser
import ClawChannel
import ClawClient
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

@main
struct Clawchat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "clawchat",
        abstract: "Talk to your ClawChat daemon over its encrypted UDP channel.",
        subcommands: [Chat.self, Pair.self, Ask.self, History.self, Clear.self, Reload.self, CronCommand.self, Compromised.self] + fileSubcommands,
        defaultSubcommand: Chat.self)
}

/// Unbuffered output: `print` is block-buffered when piped, and a chat must appear as it arrives.
func out(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(1, $0.baseAddress, $0.count) }
}

func err(_ text: String) {
    var bytes = Array((text + "\n").utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

struct IdentityOptions: ParsableArguments {
    @Option(help: "Identity file (default: $CLAWCHAT_CONFIG_DIR/identity or ~/.config/clawchat/identity).")
    var identity: String?

    var path: String { identity ?? defaultIdentityPath() }

    func load() throws -> ClientIdentity {
        let loaded: ClientIdentity?
        do { loaded = try ClientIdentity.load(from: path) } catch {
            throw CLIError("cannot read \(path): \(error)")
        }
        guard let loaded else {
            throw CLIError("this device is not paired: run `clawchat pair clawchat-current.sec` with a file from the server")
        }
        return loaded
    }
}

/// Connects with the stored identity and runs `body` once the channel is up.
func connect(_ identity: ClientIdentity, loop: EventLoop, timeout: Duration) throws -> ClientSession {
    let session = try ClientSession(loop: loop, credentials: identity.credentials, servers: identity.servers,
                                    rotation: identity.rotation)
    session.onRotation = { identity.remember($0) }
    var up = false
    session.onEvent = { if case .established = $0 { up = true } }
    session.start()
    guard loop.run(until: timeout, condition: { up }) else {
        throw CLIError("no answer from \(identity.servers.map(\.description).joined(separator: ", ")) within \(Int(timeout.seconds)) s; is clawchatd running, and is this device still paired?")
    }
    return session
}

struct Pair: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Pair this device with a security file from the server.")

    @Argument(help: "The security file (clawchat-current.sec).") var file: String
    @Option(help: "A name for this device, shown by `clawchatd devices`.") var name: String?
    @Option(help: "File holding the bootstrap key (default: $CLAWCHAT_BOOTSTRAP_KEY, else asked).")
    var bootstrapKeyFile: String?
    @OptionGroup var identity: IdentityOptions

    func run() throws {
        ignoreSIGPIPE()
        guard let bytes = try AtomicFile.read(file) else { throw CLIError("\(file) does not exist") }
        let key = try readBootstrapKey()
        let loop = try EventLoop()
        let deviceName = name ?? hostName()
        do {
            let id = try Pairing.run(fileBytes: bytes, bootstrapKey: key, deviceName: deviceName,
                                     identityPath: identity.path, loop: loop)
            out("paired as \"\(deviceName)\" (device \(hexString(withUnsafeBytes(of: id.deviceID.bigEndian) { Array($0) }))); identity saved in \(identity.path)\n")
        } catch {
            throw CLIError(error.description)
        }
    }

    /// The key from a file or the environment, else asked for on the terminal (not echoed).
    private func readBootstrapKey() throws -> BootstrapKey {
        do {
            if let key = try BootstrapKey.load(file: bootstrapKeyFile) { return key }
        } catch {
            throw CLIError(error.description)
        }
        guard isatty(0) == 1, let p = getpass("Bootstrap key: ") else {
            throw CLIError("no bootstrap key: set CLAWCHAT_BOOTSTRAP_KEY or pass --bootstrap-key-file")
        }
        do { return try BootstrapKey(String(cString: p)) } catch { throw CLIError(error.description) }
    }

    private func hostName() -> String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct Ask: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one message and print the reply as it streams in; exit status 1 on any error.")

    @Argument(help: "The message.") var text: String
    @Option(help: "Seconds to wait for the whole reply.") var timeout: Int = 600
    @Flag(help: "Print the reply (or the error) as one JSON object at the end.") var json = false
    @OptionGroup var identity: IdentityOptions

    func run() throws {
        ignoreSIGPIPE()
        guard text.utf8.count <= Message.maxBody else {
            throw CLIError("the message is \(text.utf8.count) bytes; the limit is \(Message.maxBody)")
        }
        let loop = try EventLoop()
        let session = try connect(try identity.load(), loop: loop, timeout: .seconds(min(timeout, 30)))
        var outcome: Result<Message, RequestFailure>?
        var reply = ""
        let request = session.request("chat", body: Array(text.utf8))
        let tty = isatty(1) == 1
        request.onPartial = { piece in
            reply += piece.text
            if !json { out(tty ? safeForTerminal(piece.text) : piece.text) }
        }
        request.onDone = { outcome = $0 }
        // Ctrl-C cancels the reply (the daemon aborts its LLM request) and exits non-zero.
        var interrupted = false
        let sigint = try SignalEvent(loop: loop, signal: SIGINT) { interrupted = true; request.cancel() }
        defer { withExtendedLifetime(sigint) {} }
        guard loop.run(until: .seconds(timeout), condition: { outcome != nil }), let outcome else {
            request.cancel()
            if !reply.isEmpty && !json { out("\n") }
            throw CLIError("no complete reply within \(timeout) s")
        }
        switch outcome {
        case .success(let m):
            if reply.isEmpty { reply = m.text; if !json { out(reply) } }   // a server without streaming
            if json {
                var fields = [("reply", jsonQuoted(reply))]
                for (k, v) in m.params.sorted(by: { $0.key < $1.key }) { fields.append((k, jsonQuoted(v))) }
                out("{" + fields.map { "\(jsonQuoted($0.0)):\($0.1)" }.joined(separator: ",") + "}\n")
            } else {
                out(reply.hasSuffix("\n") ? "" : "\n")
                if m.params["truncated"] == "true" { err("[the answer was cut at the token limit]") }
            }
        case .failure(let failure):
            if !reply.isEmpty && !json { out("\n") }
            if json {
                var code = "connection"
                if case .server(let c, _) = failure { code = c }
                out("{\"error\":\(jsonQuoted(failure.description)),\"code\":\(jsonQuoted(code))" +
                    (reply.isEmpty ? "" : ",\"partial\":\(jsonQuoted(reply))") + "}\n")
            }
            throw CLIError(interrupted ? "cancelled" : failure.description)
        }
    }
}

/// Sends one request and returns its reply (for the small one-shot commands).
func oneShot(_ method: String, params: [String: String] = [:], body: [UInt8] = [], identity: IdentityOptions,
             timeout: Int = 30) throws -> Message {
    ignoreSIGPIPE()
    let loop = try EventLoop()
    let session = try connect(try identity.load(), loop: loop, timeout: .seconds(timeout))
    var outcome: Result<Message, RequestFailure>?
    session.request(method, params: params, body: body).onDone = { outcome = $0 }
    guard loop.run(until: .seconds(timeout), condition: { outcome != nil }), let outcome else {
        throw CLIError("no reply within \(timeout) s")
    }
    switch outcome {
    case .success(let m): return m
    case .failure(let f): throw CLIError(f.description)
    }
}

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the stored conversation (newest last).")
    @Option(help: "How many exchanges.") var limit: Int = 20
    @Flag(help: "Print the daemon's JSON.") var json = false
    @OptionGroup var identity: IdentityOptions

    func run() throws {
        let m = try oneShot("history", params: ["limit": String(limit)], identity: identity)
        if json { out(m.text + "\n"); return }
        out(HistoryText.render(m.body))
    }
}

struct Clear: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forget the conversation history (the daily logs stay).")
    @OptionGroup var identity: IdentityOptions
    func run() throws { out(try oneShot("clear", identity: identity).text + "\n") }
}

struct Reload: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Make the daemon re-read its context files (SOUL.md, ...).")
    @OptionGroup var identity: IdentityOptions
    func run() throws { out(try oneShot("reload", identity: identity).text + "\n") }
}

struct Compromised: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Destroy every key on both sides: the server revokes all devices and writes a new security file; this device forgets its identity.")

    @Flag(help: "Do not ask for confirmation.") var yes = false
    @OptionGroup var identity: IdentityOptions

    func run() throws {
        ignoreSIGPIPE()
        let id = try identity.load()
        if !yes {
            out("This destroys every session key, revokes EVERY paired device, and deletes this device's identity.\nType COMPROMISED to confirm: ")
            guard let line = readLine(), line == "COMPROMISED" else { throw CLIError("not confirmed; nothing changed") }
        }
        let loop = try EventLoop()
        let confirmed = try runCompromised(id, loop: loop, identityPath: identity.path)
        out(confirmed ? "the server confirmed: all keys destroyed, all devices revoked; identity deleted\n"
                      : "the server did not confirm (it may have acted already); local identity deleted anyway\n")
    }
}

/// Sends the compromised command and deletes the identity whatever the outcome.
func runCompromised(_ id: ClientIdentity, loop: EventLoop, identityPath: String) throws -> Bool {
    let session = try connect(id, loop: loop, timeout: .seconds(20))
    var outcome: Bool?
    session.onEvent = { e in
        if case .compromisedConfirmed = e { outcome = true }
        if case .compromisedUnconfirmed = e { outcome = false }
    }
    session.sendCompromised()
    loop.run(until: .seconds(30)) { outcome != nil }
    AtomicFile.remove(identityPath)
    return outcome == true
}

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Interactive chat (the default).")

    @OptionGroup var identity: IdentityOptions
    @Option(help: "Seconds of silence after which a keepalive is sent (keep it below your NAT's UDP timeout).")
    var keepalive: Int = 15

    func run() throws {
        ignoreSIGPIPE()
        guard keepalive >= 1 else { throw ValidationError("--keepalive must be at least 1 s") }
        let id = try identity.load()
        let loop = try EventLoop()
        var timers = ChannelTimers()
        timers.keepaliveInterval = .seconds(keepalive)
        let chat = try InteractiveChat(identity: id, identityPath: identity.path, loop: loop, timers: timers)
        chat.run()
    }
}

func format3(_ v: Double) -> String {
    let scaled = Int((v * 10).rounded())
    return "\(scaled / 10).\(abs(scaled % 10))"
}

/// A failure at run time: printed as one line, exit status 1, no usage text.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
