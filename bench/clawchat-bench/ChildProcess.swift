import ClawChannel
import ClawReactor
import Glibc

/// A copy of this executable running one of its hidden subcommands, so the server side of a
/// benchmark gets its own process (and CPU) while the parent generates load. The parent ends it
/// by pid: `terminate()` is called explicitly, and again by `deinit` on every other path.
final class ChildProcess {
    let pid: pid_t
    let name: String
    private var reaped = false
    private var exitCode: Int32?
    /// Our end of the child's standard input, when it is a pipe: closing it is the child's EOF.
    private var stdinWriter: Int32 = -1

    /// Starts `/proc/self/exe` with `arguments`; `name` says what it is in error messages.
    convenience init(_ name: String, arguments: [String]) throws(BenchError) {
        try self.init(name, executable: "/proc/self/exe", argv0: "clawchat-bench", arguments: arguments, output: nil)
    }

    /// Starts another program (sshd, scp, ssh-keygen), with standard input from /dev/null and,
    /// when `output` is given, standard output and error appended to that file. With
    /// `stdinPipe`, standard input is a pipe that stays open until `terminate()` or until this
    /// process dies, for programs that exit at end of input (the mock LLM server).
    init(_ name: String, executable: String, argv0: String? = nil, arguments: [String], output: String?,
         stdinPipe: Bool = false) throws(BenchError) {
        let argv: [UnsafeMutablePointer<CChar>?] = ([argv0 ?? executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Both ends close on exec: only the dup2'd copy (the child's fd 0) crosses into the child,
        // so no other process holds the write end and the child sees EOF when we close it. (The
        // bench has one thread, so no other spawn can come between pipe and fcntl.)
        var ends: [Int32] = [-1, -1]
        if stdinPipe {
            guard pipe(&ends) == 0 else { throw BenchError("cannot start the \(name): pipe: \(errorText())") }
            for fd in ends { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        }
        if let output {
            if !stdinPipe { posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) }
            posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        if stdinPipe { close(ends[0]) }
        guard rc == 0 else {
            if stdinPipe { close(ends[1]) }
            throw BenchError("cannot start the \(name): posix_spawn: \(String(cString: strerror(rc)))")
        }
        self.pid = pid
        self.name = name
        stdinWriter = ends[1]
    }

    deinit { terminate() }

    /// Waits until the child has written `path` and returns its contents. Fails if the child
    /// exits first or nothing appears within `timeout`.
    func waitForFile(_ path: String, timeout: Duration) throws(BenchError) -> [UInt8] {
        let clock = MonotonicClock()
        let end = clock.now + timeout
        while clock.now < end {
            if let bytes = try? AtomicFile.read(path), !bytes.isEmpty { return bytes }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                reaped = true
                throw BenchError("the \(name) (pid \(pid)) exited before it was ready (wait status \(status))")
            }
            usleep(10_000)
        }
        throw BenchError("the \(name) (pid \(pid)) did not write \(path) within \(Int(timeout.seconds)) s")
    }

    /// Waits for the port number the child writes to `file` once it listens.
    func waitForPort(file: String) throws(BenchError) -> UInt16 {
        let text = String(decoding: try waitForFile(file, timeout: .seconds(10)), as: UTF8.self)
        guard let port = UInt16(text.filter(\.isNumber)) else { throw BenchError("the \(name) wrote a bad port file: \(text)") }
        return port
    }

    /// Fails if the child has exited (it should run until `terminate()`).
    func ensureRunning() throws(BenchError) {
        guard !reaped else { throw BenchError("the \(name) (pid \(pid)) is gone") }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid {
            reaped = true
            throw BenchError("the \(name) (pid \(pid)) exited during the benchmark (wait status \(status))")
        }
    }

    /// CPU time the child has used so far, in seconds (`/proc/PID/schedstat`, nanoseconds).
    var cpuSeconds: Double? {
        guard let bytes = try? AtomicFile.read("/proc/\(pid)/schedstat"),
              let first = String(decoding: bytes, as: UTF8.self).split(separator: " ").first,
              let ns = UInt64(first) else { return nil }
        return Double(ns) / 1e9
    }

    /// The child's peak resident memory in KiB, since it started or since `PeakMemory.reset`.
    var peakKiB: Int? { PeakMemory.kiB(of: "\(pid)") }

    /// The child's wait status if it has exited (it is then reaped), nil while it runs.
    func exitStatus() -> Int32? {
        guard !reaped else { return exitCode }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        reaped = true
        exitCode = status
        return status
    }

    /// Waits up to `timeout` for the child to exit by itself; its wait status, or nil (it is
    /// then ended) if it was still running.
    func wait(timeout: Duration) -> Int32? {
        let clock = MonotonicClock()
        let end = clock.now + timeout
        while clock.now < end {
            if let status = exitStatus() { return status }
            usleep(2_000)
        }
        terminate()
        return nil
    }

    /// SIGTERM, up to two seconds for the child to exit, then SIGKILL. Idempotent.
    func terminate() {
        if stdinWriter >= 0 {
            close(stdinWriter)
            stdinWriter = -1
        }
        guard !reaped else { return }
        reaped = true
        kill(pid, SIGTERM)
        for _ in 0..<200 {
            let r = waitpid(pid, nil, WNOHANG)
            if r == pid || r < 0 { return }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        waitpid(pid, nil, 0)
    }
}

/// A private directory under `base` (mode 0700 from `mkdtemp`), removed with its contents on deinit.
final class TempDirectory {
    let path: String

    init(prefix: String, base: String = "/tmp") throws(BenchError) {
        var template = Array("\(base)/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let made else { throw BenchError("cannot create a temporary directory: \(String(cString: strerror(errno)))") }
        path = String(cString: made)
    }

    deinit { Self.removeTree(path) }

    private static func removeTree(_ path: String) {
        guard let dir = opendir(path) else { unlink(path); return }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let child = "\(path)/\(name)"
            if entry.pointee.d_type == UInt8(DT_DIR) { removeTree(child) } else { unlink(child) }
        }
        closedir(dir)
        rmdir(path)
    }
}
