import ClawChannel
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// One `fs-get` (PROTOCOL.md 10.6) into `LOCAL.clawchat-part` beside the destination. A part
/// file left by an interrupted download is hashed (a few MiB per loop turn) and the daemon is
/// asked for the rest only; every chunk is written as it arrives and fed to a running SHA-256,
/// and only a file whose size and hash match the daemon's is renamed onto LOCAL. The part file
/// is locked while in use, so two downloads to one destination cannot interleave.
final class Download {
    let transfer: FileTransfer
    private let requests: RequestClient
    private unowned let loop: EventLoop
    private let remote: String
    private let local: String
    private let partPath: String
    private let overwrite: Bool
    private let progress: (FileTransfer.Progress) -> Void
    private let done: (Result<TransferSummary, FileClientError>) -> Void
    private let started: Instant

    private var fd: Int32 = -1
    private var hashing: FileHashing?
    private var request: OutgoingRequest?
    private var hasher = SHA256.Hasher()
    /// Where the current attempt started, and how far the part file reaches.
    private var offset: Int64 = 0
    private var position: Int64 = 0
    /// The file's size, once the daemon said it (-1 before).
    private var size: Int64 = -1
    private var transferred: Int64 = 0
    private var restarted = false
    private var finished = false

    init(requests: RequestClient, loop: EventLoop, remote: String, local: String, overwrite: Bool,
         progress: @escaping (FileTransfer.Progress) -> Void,
         done: @escaping (Result<TransferSummary, FileClientError>) -> Void) {
        self.requests = requests
        self.loop = loop
        self.remote = remote
        self.local = local
        partPath = FileClient.partPath(for: local)
        self.overwrite = overwrite
        self.progress = progress
        self.done = done
        started = loop.clock.now
        transfer = FileTransfer(direction: .download, remote: remote, local: local)
        transfer.onCancel = { [unowned self] in self.cancel() }
    }

    func start() {
        let destination = LocalIO.kind(of: local).map { $0 == S_IFDIR ? TransferPlan.LocalKind.directory : .other }
        var partSize: Int64?
        var st = stat()
        if stat(partPath, &st) == 0 { partSize = Int64(st.st_size) }
        let plan = TransferPlan.downloadStart(local: local, destination: destination, overwrite: overwrite, partSize: partSize)
        if case .refuse(let e) = plan {
            onNextTurn(loop) { self.fail(e) }
            return
        }
        fd = open(partPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            let e = FileClientError.system("create", partPath)
            onNextTurn(loop) { self.fail(e) }
            return
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            fd = -1
            onNextTurn(loop) { self.fail(.localUnusable(path: self.partPath, reason: "another download is writing it")) }
            return
        }
        var now = stat()
        let kept = fstat(fd, &now) == 0 ? Int64(now.st_size) : 0
        guard kept > 0 else { ask(from: 0); return }
        let h = FileHashing(loop: loop, fd: fd, path: partPath, to: kept, onStep: { [unowned self] n in
            self.progress(.init(phase: .hashing, done: n, total: kept, resumedFrom: 0))
        }, onDone: { [unowned self] result in
            self.hashing = nil
            switch result {
            case .success(let h): self.hasher = h; self.ask(from: kept)
            case .failure(let e): self.fail(e)
            }
        })
        hashing = h
        h.start()
    }

    /// Sends the request for the bytes from `start` on (the part file holds those before).
    private func ask(from start: Int64) {
        var params = ["path": remote]
        if start > 0 {
            params["offset"] = String(start)
            params["prefix-sha256"] = hexDigest(of: hasher)
        }
        offset = start
        position = start
        size = -1
        let r = requests.request("fs-get", params: params)
        request = r
        r.onPartial = { [weak self] m in self?.announced(m.params) }
        r.onData = { [weak self] bytes in self?.received(bytes) }
        r.onDone = { [weak self] outcome in self?.answered(outcome) }
        r.reportIfEndedEarly(loop: loop)
    }

    private func announced(_ params: [String: String]) {
        guard size < 0 else { return }
        switch TransferPlan.downloadOffset(params: params, asked: offset) {
        case .success(let (total, _)):
            size = total
            progress(.init(phase: .transferring, done: position, total: size, resumedFrom: offset))
        case .failure(let e):
            abandon(e)
        }
    }

    private func received(_ bytes: [UInt8]) {
        guard !finished else { return }
        guard size >= 0 else { abandon(.malformed("fs-get sent data before saying where it starts")); return }
        guard position + Int64(bytes.count) <= size else {
            abandon(.verification(path: local, reason: "the daemon sent more than the \(size) bytes it announced; the part file was deleted"),
                    discard: true)
            return
        }
        do { try LocalIO.writeAll(fd, bytes, at: position, path: partPath) } catch {
            abandon(error)
            return
        }
        hasher.update(bytes)
        position += Int64(bytes.count)
        transferred += Int64(bytes.count)
        progress(.init(phase: .transferring, done: position, total: size, resumedFrom: offset))
    }

    private func answered(_ outcome: Result<Message, RequestFailure>) {
        request?.detach()
        request = nil
        guard !finished else { return }
        switch outcome {
        case .success(let m):
            let digest = hexDigest(of: hasher)
            if let e = TransferPlan.verifyDownload(local: local, announcedSize: size, reply: m.params,
                                                   received: position, sha256: digest) {
                fail(e, discard: true)
                return
            }
            commit(sha256: digest)
        case .failure(.server(code: "resume-mismatch", _)) where offset > 0 && !restarted:
            // The remote file is not the one the part file came from: once, from scratch.
            restarted = true
            guard ftruncate(fd, 0) == 0 else { fail(.system("truncate", partPath)); return }
            hasher = SHA256.Hasher()
            progress(.init(phase: .restarting(reason: "the part file kept here is not the start of the remote file"),
                           done: 0, total: size, resumedFrom: 0))
            ask(from: 0)
        case .failure(let f):
            fail(FileClientError(f))
        }
    }

    /// The part file is complete and verified: make it durable, then give it its name.
    private func commit(sha256: String) {
        guard fsync(fd) == 0 else { fail(.system("fsync", partPath)); return }
        _ = fchmod(fd, LocalIO.defaultFileMode)
        close(fd)
        fd = -1
        if overwrite {
            guard rename(partPath, local) == 0 else { fail(.system("rename into", local)); return }
        } else if link(partPath, local) == 0 {
            // A hard link is the portable "rename unless it exists": it fails on an existing name.
            unlink(partPath)
        } else if errno == EEXIST {
            fail(.localExists(path: local))   // appeared meanwhile; the complete part file stays
            return
        } else {
            // A file system without hard links: check, then rename (a narrow race, only there).
            if LocalIO.kind(of: local) != nil { fail(.localExists(path: local)); return }
            guard rename(partPath, local) == 0 else { fail(.system("rename into", local)); return }
        }
        LocalIO.syncDirectory(of: local)
        finish(.success(TransferSummary(bytes: size, transferred: transferred, resumedFrom: offset,
                                        seconds: (loop.clock.now - started).seconds, sha256: sha256)))
    }

    private func cancel() {
        if let r = request {
            r.cancel()   // its onDone reports `.cancelled`
        } else {
            fail(.cancelled)
        }
    }

    /// Stops the request (the daemon stops sending) and fails.
    private func abandon(_ e: FileClientError, discard: Bool = false) {
        if let r = request {
            request = nil
            r.detach()
            r.cancel()
        }
        fail(e, discard: discard)
    }

    private func fail(_ e: FileClientError, discard: Bool = false) {
        finish(.failure(e), discard: discard)
    }

    private func finish(_ result: Result<TransferSummary, FileClientError>, discard: Bool = false) {
        guard !finished else { return }
        finished = true
        hashing?.cancel()
        hashing = nil
        request?.detach()
        request = nil
        if fd >= 0 {
            var st = stat()
            let empty = fstat(fd, &st) == 0 && st.st_size == 0
            close(fd)
            fd = -1
            // An empty part file is nothing to resume from: do not leave it lying around.
            if discard || empty { unlink(partPath) }
        }
        transfer.markFinished()
        done(result)
    }
}
