import ClawChannel
import ClawReactor
import Glibc

/// What became of the scp baseline in this run.
enum ScpStatus {
    case measured
    /// `--no-scp`.
    case skipped
    /// A program it needs is not installed: what is missing.
    case unavailable(String)
    /// The private sshd could not be set up: why.
    case failed(String)

    /// The line the report prints instead of scp rows; nil when measured.
    var note: String? {
        switch self {
        case .measured: return nil
        case .skipped: return "scp baseline: skipped (--no-scp)"
        case .unavailable(let what):
            return "scp baseline: NOT MEASURED, \(what); to measure it, install OpenSSH "
                + "(apt-get install --no-install-recommends openssh-server openssh-client; scripts/bench does this)"
        case .failed(let why): return "scp baseline: NOT MEASURED, the private sshd could not be used: \(why)"
        }
    }
}

/// The baseline of the file rows: a private sshd on 127.0.0.1, a free port, its own ed25519 host
/// key and one authorized ed25519 client key, all in the bench's temporary directory; scp copies
/// the same test file up and down through it. It runs as the current user, with `UsePAM no`
/// (the notes: `sshd -D -f CONFIG`). sshd runs in the foreground as a child process, is ended
/// by pid on every path (`stop`, `deinit`), and dies with the bench if the bench is killed
/// (`setpriv --pdeathsig`, when util-linux has it).
final class SSHBaseline {
    /// Where the programs are.
    struct Programs {
        var sshd: String
        var scp: String
        var ssh: String
        var keygen: String
        var setpriv: String?
    }

    let dir: String
    let port: UInt16
    let programs: Programs
    /// `ssh -V`, e.g. "OpenSSH_9.2p1 Debian-2+deb12u6, OpenSSL 3.0.15 3 Sep 2024".
    let version: String
    /// The first of the client's ciphers (`ssh -G`): what scp uses without `-c`.
    let defaultCipher: String
    /// The server's `Subsystem sftp` (scp speaks SFTP to it since OpenSSH 9.0).
    let sftpSubsystem: String
    private let clientKey: String
    private let user: String
    private let server: ChildProcess
    private let madePrivsepDirectory: Bool
    private var stopped = false

    /// The scp copies: the uploaded one on the "server" side, the downloaded one on ours.
    var remoteCopy: String { "\(dir)/remote/bench.bin" }
    var localCopy: String { "\(dir)/local/bench.bin" }

    /// The programs, or what is missing.
    static func find() -> Result<Programs, ScpStatusReason> {
        guard access("/usr/sbin/sshd", X_OK) == 0 else { return .failure(.init("/usr/sbin/sshd is not installed")) }
        guard let scp = which("scp") else { return .failure(.init("scp is not installed")) }
        guard let ssh = which("ssh"), let keygen = which("ssh-keygen") else {
            return .failure(.init("ssh or ssh-keygen is not installed"))
        }
        return .success(Programs(sshd: "/usr/sbin/sshd", scp: scp, ssh: ssh, keygen: keygen, setpriv: which("setpriv")))
    }

    /// Keys, configuration, sshd started and a first login checked. Throws with the reason if
    /// any of it fails; nothing is left running then.
    init(programs: Programs, dir: String) throws(BenchError) {
        self.dir = dir
        self.programs = programs
        try LocalFile.makeDirectory(dir)
        try LocalFile.makeDirectory("\(dir)/remote")
        try LocalFile.makeDirectory("\(dir)/local")
        let hostKey = "\(dir)/host_ed25519", clientKey = "\(dir)/client_ed25519"
        for key in [hostKey, clientKey] {
            let r = try Self.run(programs.keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "clawchat-bench", "-f", key], log: "\(dir)/keygen.log")
            guard r.status == 0 else { throw BenchError("ssh-keygen failed: \(Self.oneLine(r.output))") }
        }
        guard let pub = try? AtomicFile.read(clientKey + ".pub") else { throw BenchError("ssh-keygen wrote no public key") }
        do { try AtomicFile.write(pub, to: "\(dir)/authorized_keys", mode: 0o600) } catch {
            throw BenchError("cannot write authorized_keys: \(error)")
        }
        self.clientKey = clientKey
        user = getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "root"
        sftpSubsystem = access("/usr/lib/openssh/sftp-server", X_OK) == 0 ? "/usr/lib/openssh/sftp-server" : "internal-sftp"

        // As root, sshd wants its privilege separation directory (the service makes it at boot).
        var madeDir = false
        if getuid() == 0, !LocalFile.isDirectory("/run/sshd") {
            guard mkdir("/run/sshd", 0o755) == 0 else { throw BenchError("cannot create /run/sshd: \(errorText())") }
            madeDir = true
        }
        madePrivsepDirectory = madeDir
        func undoPrivsep() { if madeDir { rmdir("/run/sshd") } }

        // A free port can be taken between the probe and sshd's bind: try a few.
        var started: (ChildProcess, UInt16)?
        var lastError = ""
        for attempt in 0..<3 {
            let port: UInt16
            do { port = try Self.freePort() } catch { undoPrivsep(); throw error }
            let config = "\(dir)/sshd_config"
            let text = """
                Port \(port)
                ListenAddress 127.0.0.1
                HostKey \(hostKey)
                PidFile \(dir)/sshd.pid
                AuthorizedKeysFile \(dir)/authorized_keys
                PubkeyAuthentication yes
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                UsePAM no
                StrictModes no
                PermitRootLogin prohibit-password
                UseDNS no
                PrintMotd no
                LogLevel ERROR
                Subsystem sftp \(sftpSubsystem)

                """
            do { try AtomicFile.write(Array(text.utf8), to: config, mode: 0o600) } catch {
                undoPrivsep()
                throw BenchError("cannot write the sshd configuration: \(error)")
            }
            if attempt == 0 {
                let check: (status: Int32, output: String)
                do { check = try Self.run(programs.sshd, ["-t", "-f", config], log: "\(dir)/sshd-check.log") } catch {
                    undoPrivsep()
                    throw error
                }
                guard check.status == 0 else { undoPrivsep(); throw BenchError("sshd -t refused the configuration: \(Self.oneLine(check.output))") }
            }
            let log = "\(dir)/sshd.log"
            let args = ["-D", "-e", "-f", config]
            let child: ChildProcess
            do {
                if let setpriv = programs.setpriv {
                    child = try ChildProcess("sshd", executable: setpriv, arguments: ["--pdeathsig", "TERM", "--", programs.sshd] + args, output: log)
                } else {
                    child = try ChildProcess("sshd", executable: programs.sshd, arguments: args, output: log)
                }
            } catch { undoPrivsep(); throw error }
            let pidText: String
            do { pidText = String(decoding: try child.waitForFile("\(dir)/sshd.pid", timeout: .seconds(10)), as: UTF8.self) } catch {
                child.terminate()
                lastError = "\(error); sshd said: \(Self.tail(of: log))"
                unlink("\(dir)/sshd.pid")
                continue
            }
            guard pid_t(pidText.filter(\.isNumber)) == child.pid else {
                child.terminate()
                lastError = "sshd wrote pid \(pidText.filter(\.isNumber)) to its PidFile, not the \(child.pid) started"
                break
            }
            started = (child, port)
            break
        }
        guard let (child, port) = started else { undoPrivsep(); throw BenchError(lastError) }

        // sshd runs: a key login, then what the client will use.
        let probe = Self.sshArguments(port: port, key: clientKey, user: user, cipher: nil)
        let facts: (version: String, cipher: String)
        do throws(BenchError) {
            let login = try Self.run(programs.ssh, probe + ["true"], log: "\(dir)/ssh.log")
            guard login.status == 0 else { throw BenchError("a key login to the private sshd failed: \(Self.oneLine(login.output))") }
            let v = try Self.run(programs.ssh, ["-V"], log: "\(dir)/ssh-version.log")
            let g = try Self.run(programs.ssh, ["-G"] + probe, log: "\(dir)/ssh-config.log")
            let ciphers = g.output.split(separator: "\n").first { $0.hasPrefix("ciphers ") }
            facts = (v.output.split(separator: "\n").first.map(String.init) ?? "OpenSSH",
                     ciphers.flatMap { $0.dropFirst(8).split(separator: ",").first.map(String.init) } ?? "default")
        } catch {
            child.terminate()
            undoPrivsep()
            throw error
        }
        server = child
        self.port = port
        version = facts.version
        defaultCipher = facts.cipher
    }

    deinit { stop() }

    /// Ends sshd by its pid and removes what was made outside the temporary directory.
    func stop() {
        guard !stopped else { return }
        stopped = true
        server.terminate()
        if madePrivsepDirectory { rmdir("/run/sshd") }
    }

    /// Options of every ssh and scp run: the generated key only, no host key check or
    /// known_hosts, never a prompt.
    private var commonOptions: [String] { Self.commonOptions(key: clientKey) }

    private static func commonOptions(key: String) -> [String] {
        ["-q", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"]
    }

    private var host: String { "\(user)@127.0.0.1" }

    private func sshArguments(cipher: String?) -> [String] {
        Self.sshArguments(port: port, key: clientKey, user: user, cipher: cipher)
    }

    private static func sshArguments(port: UInt16, key: String, user: String, cipher: String?) -> [String] {
        ["-T", "-p", "\(port)"] + commonOptions(key: key) + (cipher.map { ["-c", $0] } ?? []) + ["\(user)@127.0.0.1"]
    }

    /// What the report calls this row's cipher.
    func cipherName(_ cipher: String?) -> String { cipher ?? defaultCipher }

    /// Seconds of `ssh HOST true`: connection, key exchange, authentication, a session and its
    /// end. Every scp run pays this too, while the ClawChat rows start on an established session.
    func loginSeconds(cipher: String?) throws(BenchError) -> Double? {
        let clock = MonotonicClock()
        let t0 = clock.now
        let r = try Self.run(programs.ssh, sshArguments(cipher: cipher) + ["true"], log: "\(dir)/ssh.log")
        return r.status == 0 ? (clock.now - t0).seconds : nil
    }

    /// How one scp run ended.
    enum Outcome {
        case sample(FileSample)
        case timedOut
        case failed(String)
    }

    /// One scp of `source` (`sha256`, `bytes`) up to `remoteCopy` or back down to `localCopy`,
    /// timed from starting scp to seeing it exit, then checked by SHA-256 (not timed).
    func transfer(_ direction: TransferDirection, cipher: String?, source: String, sha256: String, bytes: Int,
                  timeout: Duration, loop: EventLoop, interruption: Interruption) throws(BenchError) -> Outcome {
        switch direction {
        case .upload: LocalFile.remove(remoteCopy)
        case .download:
            LocalFile.remove(localCopy)
            if LocalFile.size(remoteCopy) != bytes { try LocalFile.copy(source, to: remoteCopy) }
        }
        let remote = "\(host):\(remoteCopy)"
        let args = ["-P", "\(port)"] + commonOptions + (cipher.map { ["-c", $0] } ?? [])
            + (direction == .upload ? [source, remote] : [remote, localCopy])
        let log = "\(dir)/scp.log"
        unlink(log)

        // SIGCHLD wakes the loop the moment scp exits, so the time does not depend on polling.
        var exited = false
        let sigchld: SignalEvent
        do { sigchld = try SignalEvent(loop: loop, signal: SIGCHLD) { exited = true } } catch {
            throw BenchError("cannot watch SIGCHLD: \(error)")
        }
        var peaks: [pid_t: (server: Bool, kib: Int)] = [:]
        func sample(_ scpPid: pid_t) {
            for (root, isServer) in [(server.pid, true), (scpPid, false)] {
                for p in descendants(of: root, including: !isServer) {
                    if let kib = PeakMemory.kiB(of: "\(p)") { peaks[p] = (isServer, max(peaks[p]?.kib ?? 0, kib)) }
                }
            }
        }

        let clock = MonotonicClock()
        let c0 = childrenCPU(), s0 = serverCPU()
        let t0 = clock.now
        let child = try ChildProcess("scp", executable: programs.scp, arguments: args, output: log)
        var status: Int32?
        while true {
            if let s = child.exitStatus() { status = s; break }
            sample(child.pid)
            if interruption.requested { child.terminate(); throw BenchError("interrupted") }
            if clock.now - t0 > timeout { break }
            exited = false
            _ = loop.run(until: .milliseconds(20)) { exited || interruption.requested }
        }
        let t1 = clock.now
        withExtendedLifetime(sigchld) {}
        guard let status else {
            child.terminate()
            settle()
            return .timedOut
        }
        let c1 = childrenCPU()
        // sshd's processes for this connection add their time to the listener once reaped.
        settle()
        let s1 = serverCPU()
        guard status == 0 else {
            let code = status & 0x7f == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(status & 0x7f)"
            return .failed("scp \(direction) ended with \(code): \(Self.tail(of: log))")
        }
        let landed = direction == .upload ? remoteCopy : localCopy
        guard LocalFile.size(landed) == bytes, try LocalFile.sha256(landed) == sha256 else {
            return .failed("scp \(direction): \(landed) is not the test file (size or SHA-256 differs)")
        }
        if direction == .download { LocalFile.remove(localCopy) }

        let wall = (t1 - t0).seconds
        let serverKiB = peaks.values.filter(\.server).reduce(0) { $0 + $1.kib }
        let clientKiB = peaks.values.filter { !$0.server }.reduce(0) { $0 + $1.kib }
        return .sample(FileSample(
            seconds: wall, megabytesPerSecond: Double(bytes) / wall / 1e6,
            serverCPU: s0.flatMap { a in s1.map { ($0 - a) / wall } } ?? .nan, clientCPU: (c1 - c0) / wall,
            serverPeakKiB: serverKiB, clientPeakKiB: clientKiB, peakReset: true))
    }

    /// Waits (up to 2 s) until the listener has no children left, so that their CPU time has
    /// been added to its own.
    private func settle() {
        let clock = MonotonicClock()
        let end = clock.now + .seconds(2)
        while clock.now < end, !descendants(of: server.pid, including: false).isEmpty { usleep(2_000) }
    }

    /// User + system time of the waited-for children of this process (scp and the ssh it ran).
    private func childrenCPU() -> Double {
        var ru = rusage()
        getrusage(__rusage_who_t(RUSAGE_CHILDREN.rawValue), &ru)
        return Double(ru.ru_utime.tv_sec) + Double(ru.ru_utime.tv_usec) / 1e6
            + Double(ru.ru_stime.tv_sec) + Double(ru.ru_stime.tv_usec) / 1e6
    }

    /// The sshd listener's CPU time and that of its reaped children (`/proc/PID/stat` utime,
    /// stime, cutime, cstime), seconds; each connection's processes end up there.
    private func serverCPU() -> Double? {
        guard let bytes = try? AtomicFile.read("/proc/\(server.pid)/stat") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name start at field 3; utime is field 14.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14 else { return nil }
        let ticks = fields[11...14].compactMap { Double($0) }.reduce(0, +)
        return ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    // MARK: Helpers

    /// Text on one line, for an error message.
    static func oneLine(_ text: String) -> String {
        let lines = text.split(separator: "\n")
        return lines.isEmpty ? "(no output)" : lines.joined(separator: "; ")
    }

    /// Runs a short program to its end (30 s at most); its wait status and what it printed.
    static func run(_ executable: String, _ arguments: [String], log: String) throws(BenchError) -> (status: Int32, output: String) {
        unlink(log)
        let child = try ChildProcess(executable, executable: executable, arguments: arguments, output: log)
        let status = child.wait(timeout: .seconds(30))
        let output = (try? AtomicFile.read(log)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        guard let status else { throw BenchError("\(executable) did not finish within 30 s") }
        return (status, output)
    }

    /// The last lines of a log, on one line.
    static func tail(of path: String) -> String {
        guard let bytes = try? AtomicFile.read(path) else { return "(no output)" }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n").suffix(3)
        return lines.isEmpty ? "(no output)" : lines.joined(separator: "; ")
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    static func freePort() throws(BenchError) -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(errorText())") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw BenchError("cannot find a free TCP port: \(errorText())") }
        return UInt16(bigEndian: addr.sin_port)
    }

    /// The first executable `name` on PATH.
    static func which(_ name: String) -> String? {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") + ["/usr/bin", "/bin", "/usr/sbin"] {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }
}

/// Why the baseline cannot run, as a value for `Result`.
struct ScpStatusReason: Error {
    let text: String
    init(_ text: String) { self.text = text }
}

/// The processes below `pid` (children, theirs, ...), and `pid` itself if `including`.
func descendants(of pid: pid_t, including: Bool) -> [pid_t] {
    var result: [pid_t] = including ? [pid] : []
    var queue = [pid]
    while let p = queue.popLast() {
        guard let bytes = try? AtomicFile.read("/proc/\(p)/task/\(p)/children") else { continue }
        let kids = String(decoding: bytes, as: UTF8.self).split(separator: " ").compactMap { pid_t($0.filter(\.isNumber)) }
        result += kids
        queue += kids
    }
    return result
}
