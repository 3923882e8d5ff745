import ClawChannel
import ClawClient
import ClawCrypto
import ClawReactor
import Glibc

/// Where the `transfer` scenario keeps its directory: in memory (/dev/shm) when there is room,
/// so that the file rows measure the transfer rather than the disk.
struct ScratchPlace {
    /// The parent of the temporary directory.
    var base: String
    /// True for tmpfs (/dev/shm): file reads, writes and fsync never wait for a disk.
    var inMemory: Bool
    /// Why /dev/shm was not used, when it was not.
    var reason: String?

    /// /dev/shm if it is a writable directory with room for `needed` bytes, both by its own limit
    /// and by the memory available (tmpfs lives in RAM); /tmp otherwise.
    static func choose(needed: Int) -> ScratchPlace {
        let shm = "/dev/shm"
        guard LocalFile.isDirectory(shm), access(shm, W_OK) == 0 else {
            return ScratchPlace(base: "/tmp", inMemory: false, reason: "/dev/shm is missing or not writable")
        }
        var fs = statvfs()
        guard statvfs(shm, &fs) == 0 else {
            return ScratchPlace(base: "/tmp", inMemory: false, reason: "cannot statvfs /dev/shm")
        }
        let room = Int(fs.f_bavail) * Int(fs.f_frsize)
        if room < needed {
            return ScratchPlace(base: "/tmp", inMemory: false,
                                reason: "/dev/shm has \(room / 1_000_000) MB free, the run needs \(needed / 1_000_000) MB")
        }
        if let available = memoryAvailable(), available < needed + (512 << 20) {
            return ScratchPlace(base: "/tmp", inMemory: false,
                                reason: "only \(available / 1_000_000) MB of memory available for \(needed / 1_000_000) MB in /dev/shm")
        }
        return ScratchPlace(base: shm, inMemory: true, reason: nil)
    }

    /// `MemAvailable` from /proc/meminfo, bytes.
    private static func memoryAvailable() -> Int? {
        guard let bytes = try? AtomicFile.read("/proc/meminfo") else { return nil }
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            return Int(line.dropFirst(13).filter(\.isNumber)).map { $0 * 1024 }
        }
        return nil
    }

    /// For the report's header.
    var description: String {
        inMemory ? "files on \(base) (tmpfs, in memory)"
                 : "files on \(base) (disk: page cache and fsync included\(reason.map { "; not /dev/shm: \($0)" } ?? ""))"
    }
}

/// Local file chores of the file rows, none of them timed.
enum LocalFile {
    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func size(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    static func makeDirectory(_ path: String) throws(BenchError) {
        guard mkdir(path, 0o700) == 0 || errno == EEXIST else { throw BenchError("cannot create \(path): \(errorText())") }
    }

    static func remove(_ path: String) { unlink(path) }

    /// `bytes` random bytes (libsodium's generator) written in full: no holes, nothing a file
    /// system or a compressor could shortcut.
    static func writeRandom(_ path: String, bytes: Int) throws(BenchError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BenchError("cannot create \(path): \(errorText())") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var written = 0
        while written < bytes {
            let n = min(buffer.count, bytes - written)
            let ok = buffer.withUnsafeMutableBytes { raw -> Bool in
                Random.fill(UnsafeMutableRawBufferPointer(rebasing: raw[0..<n]))
                return writeAll(fd, UnsafeRawBufferPointer(rebasing: raw[0..<n]))
            }
            guard ok else { throw BenchError("cannot write \(path): \(errorText())") }
            written += n
        }
    }

    /// The SHA-256 (hex) of a whole file.
    static func sha256(_ path: String) throws(BenchError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw BenchError("cannot open \(path): \(errorText())") }
        defer { close(fd) }
        var hasher = SHA256.Hasher()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw BenchError("cannot read \(path): \(errorText())") }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
        }
        return hexString(hasher.finalize())
    }

    /// Copies `from` to a new file `to`.
    static func copy(_ from: String, to: String) throws(BenchError) {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw BenchError("cannot open \(from): \(errorText())") }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard dst >= 0 else { throw BenchError("cannot create \(to): \(errorText())") }
        defer { close(dst) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(src, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw BenchError("cannot read \(from): \(errorText())") }
            if n == 0 { return }
            guard buffer.withUnsafeBytes({ writeAll(dst, UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) else {
                throw BenchError("cannot write \(to): \(errorText())")
            }
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { if errno == EINTR { continue }; return false }
            done += n
        }
        return true
    }
}

func errorText() -> String { String(cString: strerror(errno)) }

// MARK: Results

/// Who moved the file: ClawChat's file manager, or scp to the private sshd.
enum FileTool: Equatable {
    case clawchat
    /// Nil: scp's default cipher.
    case scp(cipher: String?)
}

/// What one file transfer saw. "Server" is the daemon, or every sshd process of the connection;
/// "client" is this process, or scp and the ssh it runs.
struct FileSample {
    var seconds: Double
    var megabytesPerSecond: Double
    var serverCPU: Double
    var clientCPU: Double
    /// Peak RSS during the transfer, KiB. For scp, the sum of each process's `VmHWM`.
    var serverPeakKiB: Int
    var clientPeakKiB: Int
    /// False if the kernel refused the VmHWM reset (the peaks are then since the process started).
    var peakReset: Bool
    /// ClawChat upload: seconds from the start until the first byte could go, which is the
    /// client hashing the whole file (the SHA-256 goes in the request) plus the daemon's first
    /// answer. NaN otherwise.
    var hashingSeconds: Double = .nan
    /// ClawChat: packets the bench's transport sent, and those it declared lost.
    var packetsSent = 0
    var packetsLost = 0

    /// Server plus client CPU time per MB moved, milliseconds: the cost, which other load on the
    /// machine changes less than the rate.
    var cpuMsPerMB: Double { (serverCPU + clientCPU) * 1000 / megabytesPerSecond }
}

/// The rounds of one tool and direction.
struct FileSeries {
    var samples: [FileSample] = []
    var timedOut = false
    /// Why the later rounds were not measured (scp failed, or its copy was wrong).
    var failure: String?
}

struct FileRow {
    var tool: FileTool
    var upload = FileSeries()
    var download = FileSeries()
    /// scp: seconds of `ssh HOST true` once per round, the connection cost inside each scp run.
    var loginSeconds: [Double] = []

    subscript(direction: TransferDirection) -> FileSeries {
        get { direction == .download ? download : upload }
        set { if direction == .download { download = newValue } else { upload = newValue } }
    }

    /// False once a timeout or a failure stopped this series.
    func live(_ direction: TransferDirection) -> Bool { !self[direction].timedOut && self[direction].failure == nil }
}

// MARK: ClawChat's file manager

/// The files of the ClawChat file rows: the test file, the daemon's shared folder, and where
/// downloads land.
struct FileRowPaths {
    /// The test file, outside the shared folder.
    var source: String
    /// Its SHA-256 (hex), computed once before the rounds.
    var sha256: String
    var bytes: Int
    /// The daemon's shared folder (`_echo-server --files`).
    var sharedFolder: String
    /// Uploads go to this name in the shared folder; downloads fetch it back.
    var remoteName = "bench-upload.bin"
    /// Downloads land here, under a new name each time.
    var downloads: String

    var remoteOnDisk: String { "\(sharedFolder)/\(remoteName)" }
}

extension TransferMeter {
    /// One ClawChat file transfer on a fresh session to the daemon (direct): an upload of the
    /// test file with `FileClient.upload`, timed from the call to the daemon's verified reply, or
    /// a download of what was uploaded to a new local path, timed to the verified rename. Nil if
    /// it timed out. Throws if it failed or the bytes in place are not the test file's.
    func measureFile(_ direction: TransferDirection, files: FileRowPaths, round: Int,
                     via server: SocketAddress) throws(BenchError) -> FileSample? {
        let what = "file \(direction)"
        // Untimed preparation: an upload creates its file; a download needs the file there.
        let local = "\(files.downloads)/download-\(round).bin"
        switch direction {
        case .upload:
            LocalFile.remove(files.remoteOnDisk)
            LocalFile.remove("\(files.sharedFolder)/.\(files.remoteName).clawchat-part")   // what a timed-out upload kept
        case .download:
            LocalFile.remove(local)
            LocalFile.remove(FileClient.partPath(for: local))
            if LocalFile.size(files.remoteOnDisk) != files.bytes { try LocalFile.copy(files.source, to: files.remoteOnDisk) }
        }
        let session = try connect(to: server, what: what)
        let client = FileClient(session: session)
        let peakReset = PeakMemory.reset("\(daemon.pid)") && PeakMemory.reset("self")

        let t0 = loop.clock.now, c0 = CPUUsage.now(), d0 = daemon.cpuSeconds
        var outcome: Result<TransferSummary, FileClientError>?
        var sendingFrom: Instant?
        let loop = self.loop
        let transfer: FileTransfer
        switch direction {
        case .upload:
            transfer = client.upload(local: files.source, remote: files.remoteName, overwrite: false, progress: { p in
                if sendingFrom == nil, p.phase == .transferring { sendingFrom = loop.clock.now }
            }, done: { outcome = $0 })
        case .download:
            transfer = client.download(remote: files.remoteName, to: local, overwrite: false, done: { outcome = $0 })
        }
        let finished = loop.run(until: settings.timeout) { outcome != nil || self.interruption.requested }
        let t1 = loop.clock.now, c1 = CPUUsage.now(), d1 = daemon.cpuSeconds
        let stats = session.requests.connection?.transport.stats

        if interruption.requested || !finished {
            transfer.cancel()
            loop.run(until: .milliseconds(200)) { false }
            if interruption.requested { throw BenchError("interrupted") }
            return nil
        }
        let summary: TransferSummary
        switch outcome {
        case .success(let s)?: summary = s
        case .failure(let e)?: throw BenchError("\(what) failed: \(e)")
        case nil: throw BenchError("\(what): no outcome")
        }
        // Both sides agreed on a size and hash; check them, and the bytes now in place, against
        // the test file's.
        guard summary.bytes == Int64(files.bytes), summary.transferred == Int64(files.bytes) else {
            throw BenchError("\(what): moved \(summary.transferred) of \(summary.bytes) bytes, not \(files.bytes)")
        }
        guard summary.sha256 == files.sha256 else {
            throw BenchError("\(what): SHA-256 \(summary.sha256) is not the test file's \(files.sha256)")
        }
        let landed = direction == .upload ? files.remoteOnDisk : local
        guard try LocalFile.sha256(landed) == files.sha256 else {
            throw BenchError("\(what): the SHA-256 of \(landed) is not the test file's")
        }
        if direction == .download { LocalFile.remove(local) }

        let wall = (t1 - t0).seconds
        return FileSample(
            seconds: wall, megabytesPerSecond: Double(files.bytes) / wall / 1e6,
            serverCPU: d0.flatMap { a in d1.map { ($0 - a) / wall } } ?? .nan, clientCPU: (c1 - c0).total / wall,
            serverPeakKiB: daemon.peakKiB ?? 0, clientPeakKiB: PeakMemory.kiB(of: "self") ?? 0, peakReset: peakReset,
            hashingSeconds: sendingFrom.map { ($0 - t0).seconds } ?? .nan,
            packetsSent: stats?.packetsSent ?? 0, packetsLost: stats?.packetsLost ?? 0)
    }
}
