import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc

/// One `fs-put` (PROTOCOL.md 10.6). The whole file is hashed first (its SHA-256 goes in the
/// request), keeping a copy of the hasher's state every few MiB; the daemon then says how much
/// of an earlier attempt it kept, and that prefix is checked against ours starting from the
/// nearest copy, so a resume re-reads at most one interval. The bytes go out in 64 KiB `data`
/// messages read with `pread` as the transport drains, about 2 MB queued at a time: memory
/// stays bounded whatever the file's size.
final class Upload {
    let transfer: FileTransfer
    private let requests: RequestClient
    private unowned let loop: EventLoop
    private let local: String
    private let remote: String
    private let overwrite: Bool
    private let progress: (FileTransfer.Progress) -> Void
    private let done: (Result<TransferSummary, FileClientError>) -> Void
    private let started: Instant

    private var fd: Int32 = -1
    private var size: Int64 = 0
    private var sha256 = ""
    /// The whole-file hashing, kept after it ends for its snapshots.
    private var whole: FileHashing?
    private var prefixHashing: FileHashing?
    private var request: OutgoingRequest?
    private var mayResume = true
    /// Sending has begun (the daemon said where), and all of it is queued (FIN sent).
    private var streaming = false
    private var allQueued = false
    private var offset: Int64 = 0
    private var sent: Int64 = 0
    private var finished = false

    init(requests: RequestClient, loop: EventLoop, local: String, remote: String, overwrite: Bool,
         progress: @escaping (FileTransfer.Progress) -> Void,
         done: @escaping (Result<TransferSummary, FileClientError>) -> Void) {
        self.requests = requests
        self.loop = loop
        self.local = local
        self.remote = remote
        self.overwrite = overwrite
        self.progress = progress
        self.done = done
        started = loop.clock.now
        transfer = FileTransfer(direction: .upload, remote: remote, local: local)
        transfer.onCancel = { [unowned self] in self.cancel() }
    }

    func start() {
        fd = open(local, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = FileClientError.system("open", local)
            onNextTurn(loop) { self.fail(e) }
            return
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = FileClientError.system("stat", local)
            onNextTurn(loop) { self.fail(e) }
            return
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            let what = st.st_mode & S_IFMT == S_IFDIR ? "is a directory (only files can be sent)" : "is not a regular file"
            onNextTurn(loop) { self.fail(.localUnusable(path: self.local, reason: what)) }
            return
        }
        size = Int64(st.st_size)
        let h = FileHashing(loop: loop, fd: fd, path: local, to: size,
                            snapshotEvery: FileHashing.snapshotInterval(forSize: size), onStep: { [unowned self] n in
            self.progress(.init(phase: .hashing, done: n, total: self.size, resumedFrom: 0))
        }, onDone: { [unowned self] result in
            switch result {
            case .success(let h): self.sha256 = hexDigest(of: h); self.ask()
            case .failure(let e): self.fail(e)
            }
        })
        whole = h
        h.start()
    }

    private func ask() {
        let params = ["path": remote, "size": String(size), "sha256": sha256,
                      "overwrite": overwrite ? "true" : "false", "resume": mayResume ? "true" : "false"]
        let r = requests.request("fs-put", params: params, finish: false)
        request = r
        streaming = false
        allQueued = false
        var heard = false
        r.onPartial = { [weak self] m in
            guard !heard else { return }
            heard = true
            self?.resumeAt(m.params)
        }
        r.onWritable = { [weak self] in self?.pump() }
        r.onDone = { [weak self] outcome in self?.answered(outcome) }
        r.reportIfEndedEarly(loop: loop)
    }

    private func resumeAt(_ params: [String: String]) {
        switch TransferPlan.uploadResume(params: params, size: size) {
        case .fromStart:
            send(from: 0)
        case .check(let kept, let theirs):
            checkPrefix(kept, against: theirs)
        case .restart(let reason):
            restart(reason)
        case .fail(let e):
            abandon(e)
        }
    }

    /// Hashes our first `kept` bytes (from the nearest snapshot) and compares with the daemon's.
    private func checkPrefix(_ kept: Int64, against theirs: String) {
        guard kept < size else {
            if theirs == sha256 { send(from: kept) } else { restart("the daemon's kept bytes differ from this file") }
            return
        }
        guard let from = whole?.snapshot(atOrBefore: kept) else { restart("no hash state to compare with"); return }
        let h = FileHashing(loop: loop, fd: fd, path: local, from: from, to: kept, onStep: { [unowned self] n in
            self.progress(.init(phase: .hashing, done: n, total: kept, resumedFrom: 0))
        }, onDone: { [unowned self] result in
            self.prefixHashing = nil
            switch result {
            case .success(let h):
                if hexDigest(of: h) == theirs { self.send(from: kept) } else {
                    self.restart("the daemon's \(kept) kept bytes differ from this file")
                }
            case .failure(let e):
                self.abandon(e)
            }
        })
        prefixHashing = h
        h.start()
    }

    /// Gives up the daemon's kept bytes: cancels this request and sends everything again.
    private func restart(_ reason: String) {
        guard mayResume else { abandon(.malformed("the daemon asked to resume an upload sent without resume")); return }
        mayResume = false
        if let r = request {
            request = nil
            r.detach()
            r.cancel()
        }
        progress(.init(phase: .restarting(reason: reason), done: 0, total: size, resumedFrom: 0))
        ask()
    }

    private func send(from start: Int64) {
        offset = start
        sent = start
        streaming = true
        progress(.init(phase: .transferring, done: start, total: size, resumedFrom: start))
        pump()
    }

    /// Keeps about `FileClient.queueLimit` bytes queued; called again as the transport drains.
    private func pump() {
        guard streaming, !finished, let r = request, !r.isDone else { return }
        while !allQueued, sent < size, r.queuedBytes < FileClient.queueLimit {
            let n = Int(min(Int64(FileClient.chunkSize), size - sent))
            let chunk: [UInt8]
            do { chunk = try LocalIO.read(fd, count: n, at: sent, path: local) } catch {
                abandon(error)
                return
            }
            r.data(chunk)
            sent += Int64(n)
        }
        if sent == size, !allQueued {
            allQueued = true
            r.finish()
        }
        progress(.init(phase: .transferring, done: max(offset, sent - Int64(r.queuedBytes)), total: size, resumedFrom: offset))
    }

    private func answered(_ outcome: Result<Message, RequestFailure>) {
        request?.detach()
        request = nil
        guard !finished else { return }
        switch outcome {
        case .success(let m):
            if let e = TransferPlan.verifyUpload(remote: remote, reply: m.params, size: size, sha256: sha256) {
                fail(e)
                return
            }
            progress(.init(phase: .transferring, done: size, total: size, resumedFrom: offset))
            finish(.success(TransferSummary(bytes: size, transferred: size - offset, resumedFrom: offset,
                                            seconds: (loop.clock.now - started).seconds, sha256: sha256)))
        case .failure(let f):
            fail(FileClientError(f))
        }
    }

    private func cancel() {
        if let r = request { r.cancel() } else { fail(.cancelled) }
    }

    private func abandon(_ e: FileClientError) {
        if let r = request {
            request = nil
            r.detach()
            r.cancel()
        }
        fail(e)
    }

    private func fail(_ e: FileClientError) { finish(.failure(e)) }

    private func finish(_ result: Result<TransferSummary, FileClientError>) {
        guard !finished else { return }
        finished = true
        whole?.cancel()
        whole = nil
        prefixHashing?.cancel()
        prefixHashing = nil
        request?.detach()
        request = nil
        if fd >= 0 { close(fd); fd = -1 }
        transfer.markFinished()
        done(result)
    }
}
