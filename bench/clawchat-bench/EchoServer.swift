import ArgumentParser
import ClawAssistant
import ClawChannel
import ClawCrypto
import ClawDaemon
import ClawFiles
import ClawReactor
import Glibc

/// What the `echo` scenario's child process serves.
enum EchoServerMode: String, ExpressibleByArgument, CaseIterable {
    /// A `UDPSocket` that sends every datagram straight back: the reactor without the channel.
    case plain
    /// A real `Daemon` in a private state directory, answering chat with its default echo, or
    /// through its assistant with `--llm-base-url`.
    case clawchat
}

/// The server side of the `echo` scenario, run by the parent as a child process. It listens on
/// 127.0.0.1, writes its port to DIR/port, and runs until SIGTERM or until its parent is gone.
struct EchoServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_echo-server",
        abstract: "Internal: the server process of the echo benchmark.",
        shouldDisplay: false)

    @Option(help: "plain or clawchat.")
    var mode: EchoServerMode

    @Option(help: "Private directory for the port file and the daemon's state.")
    var dir: String

    @Option(help: "File with the daemon's bootstrap key (Base64); clawchat mode only.")
    var bootstrapKeyFile: String?

    @Option(help: "AEAD cipher of the daemon.")
    var cipher: CipherChoice = .preferred

    @Option(help: "Shared folder of the daemon's file manager (fs-* methods); clawchat mode only.")
    var files: String?

    @Option(help: "Base URL (up to /v1) of an OpenAI-compatible LLM: the daemon's assistant answers chat through it; clawchat mode only.")
    var llmBaseURL: String?

    func run() throws {
        try AtomicFile.ensureDirectory(dir, mode: 0o700)
        let loop = try EventLoop()
        let parent = getppid()
        let port: UInt16
        // Each mode keeps its server object alive in `server` until the loop returns.
        let server: AnyObject
        var stop: () -> Void = { loop.stop() }
        switch mode {
        case .plain:
            let socket = try UDPSocket(loop: loop, bindTo: .loopback())
            socket.setBufferSizes(receive: 4 << 20, send: 4 << 20)   // as the daemon does
            // Queued like the daemon's answers: one sendmmsg (with GSO) per receive batch.
            socket.onDatagram = { [unowned socket] bytes, from in socket.enqueue(bytes, to: from) }
            port = socket.localAddress.port
            server = socket
        case .clawchat:
            guard let bootstrapKeyFile, let text = try AtomicFile.read(bootstrapKeyFile),
                  let key = Base64.decode(String(decoding: text, as: UTF8.self)), key.count == 32 else {
                throw BenchError("clawchat mode needs --bootstrap-key-file with a Base64 32-byte key")
            }
            let config = DaemonConfig(stateDirectory: "\(dir)/state", securityDirectory: "\(dir)/state/security",
                                      listen: .loopback(), bootstrapKey: .raw(SecureBytes(copying: key)),
                                      cipher: cipher.aead)
            let daemon = try Daemon(loop: loop, config: config, log: Logger("bench-daemon", minimum: .warning))
            if let files {
                let sandbox: Sandbox
                do { sandbox = try Sandbox(root: files) } catch { throw BenchError("the shared folder \(files): \(error)") }
                daemon.attach(FileService(loop: loop, sandbox: sandbox, log: Logger("bench-daemon", minimum: .warning)))
            }
            if let llmBaseURL {
                // As clawchatd sets it up: context files and the journal in the state directory,
                // the default budgets, timeouts and retries.
                let provider = ProviderConfig(kind: .openaiCompatible, model: "clawchat-bench", baseURL: llmBaseURL, apiKeyEnv: "")
                let assistant = AssistantConfig(provider: provider, contextDirectory: "\(dir)/state/context",
                                                journalPath: "\(dir)/state/conversation.jsonl")
                daemon.attach(try Assistant(loop: loop, config: assistant, log: Logger("bench-daemon", minimum: .warning)))
            }
            try daemon.start()
            port = daemon.socket.localAddress.port
            stop = { [unowned daemon] in daemon.stop(reason: "benchmark over") }
            server = daemon
        }
        let signals = try [SIGTERM, SIGINT].map { try SignalEvent(loop: loop, signal: $0) { stop() } }
        // If the parent dies without killing us (it crashed, or was SIGKILLed), we are reparented.
        let orphanCheck = Timer(loop: loop) { if getppid() != parent { stop() } }
        orphanCheck.schedulePeriodic(every: .milliseconds(200))
        try AtomicFile.write(Array("\(port)\n".utf8), to: "\(dir)/port", mode: 0o600)
        loop.runUntilStopped()
        withExtendedLifetime((server, signals, orphanCheck)) {}
    }
}
