import ClawAssistant
import ClawChannel
import ClawCrypto
import ClawFiles
import ClawReactor
import ClawTransport
import CShim
import Glibc

/// The remote file manager on the daemon's loop (PROTOCOL.md 10.6): the `fs-*` methods over a
/// ``Sandbox``. Transfers move at the transport's pace: a download reads 64 KiB chunks only while
/// less than 2 MB wait unacknowledged, an upload writes each chunk as it arrives, and hashing a
/// resumed prefix goes 1 MiB per loop turn, so a 1 GB transfer never stalls a chat.
public final class FileService {
    public let sandbox: Sandbox
    private let loop: EventLoop
    private let log: Logger
    /// Bytes sent by downloads and received by uploads, for status and the tests.
    public private(set) var bytesSent: Int64 = 0
    public private(set) var bytesReceived: Int64 = 0
    public private(set) var activeTransfers = 0
    /// Paths with an upload in progress.
    private var uploading: Set<String> = []
    static let chunk = 64 << 10
    static let queueLimit = 2 << 20
    static let hashStep = 1 << 20

    public init(loop: EventLoop, sandbox: Sandbox, log: Logger = Logger("files")) {
        self.loop = loop
        self.sandbox = sandbox
        self.log = log
    }

    public var handlers: [String: (IncomingRequest) -> Void] { [
        "fs-list": { [unowned self] in self.list($0) },
        "fs-stat": { [unowned self] in self.stat($0) },
        "fs-get": { [unowned self] in self.get($0) },
        "fs-put": { [unowned self] in self.put($0) },
        "fs-rm": { [unowned self] r in
            self.simple(r) { () throws(FileOpError) in
                ["removed": String(try self.sandbox.remove(r.param("path"), recursive: r.flag("recursive")))]
            }
        },
        "fs-mv": { [unowned self] r in
            self.simple(r) { () throws(FileOpError) in
                try self.sandbox.move(r.param("from"), to: r.param("to"), overwrite: r.flag("overwrite"))
                return [:]
            }
        },
        "fs-mkdir": { [unowned self] r in
            self.simple(r) { () throws(FileOpError) in
                try self.sandbox.makeDirectory(r.param("path"), parents: r.flag("parents"))
                return [:]
            }
        },
    ] }

    private func simple(_ r: IncomingRequest, _ op: () throws(FileOpError) -> [String: String]) {
        do { r.reply(params: try op()) } catch { fail(r, error) }
    }

    private func fail(_ r: IncomingRequest, _ e: FileOpError) {
        r.fail(code: e.code.rawValue, e.description)
    }

    // MARK: Listing and stat

    private func list(_ r: IncomingRequest) {
        let entries: [Sandbox.FileEntry]
        do { entries = try sandbox.list(r.param("path")) } catch { fail(r, error); return }
        var page: [JSONValue] = []
        func flush() {
            guard !page.isEmpty else { return }
            r.partial(Array(JSONValue.object(["entries": .array(page)]).encoded().utf8))
            page.removeAll(keepingCapacity: true)
        }
        for e in entries {
            page.append(["name": .string(e.name), "type": .string(e.info.kind.rawValue), "size": .number(Double(e.info.size)),
                         "mode": .string(String(e.info.mode, radix: 8)), "mtime": .number(Double(e.info.mtime))])
            if page.count == 500 { flush() }
        }
        flush()
        r.reply(params: ["count": String(entries.count)])
    }

    private func stat(_ r: IncomingRequest) {
        do {
            let i = try sandbox.stat(r.param("path"))
            r.reply(params: ["type": i.kind.rawValue, "size": String(i.size), "mode": String(i.mode, radix: 8), "mtime": String(i.mtime)])
        } catch { fail(r, error) }
    }

    // MARK: Downloads

    private func get(_ r: IncomingRequest) {
        let path = r.param("path")
        let offset = Int64(r.message.params["offset"] ?? "0") ?? -1
        guard offset >= 0 else { fail(r, FileOpError(.invalidPath, SandboxPath.shown(path), "offset must be a byte count")); return }
        let opened: (fd: Int32, info: Sandbox.FileInfo)
        do { opened = try sandbox.openFile(path) } catch { fail(r, error); return }
        let fd = opened.fd
        let size = opened.info.size
        var initial = Glibc.stat()
        _ = fstat(fd, &initial)
        var hasher = SHA256.Hasher()
        var pos: Int64 = 0
        var done = false
        activeTransfers += 1
        func end() {
            guard !done else { return }
            done = true
            close(fd)
            activeTransfers -= 1
            r.onWritable = nil   // the closures hold the request and the buffer: break the cycle
            r.onCancel = nil
        }
        r.onCancel = { _ in end() }
        guard offset <= size else {
            fail(r, FileOpError(.resumeMismatch, SandboxPath.shown(path), "the file has \(size) bytes, fewer than the \(offset) you already have; start again"))
            end()
            return
        }
        var buffer = [UInt8](repeating: 0, count: Self.hashStep)

        /// Reads up to `count` bytes at `pos` into `buffer`; nil (and the request failed) on error
        /// or when the file got shorter than it was.
        func read(_ count: Int) -> Int? {
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(pos)) }
            if n < 0 {
                fail(r, FileOpError(.io, SandboxPath.shown(path), "read failed: \(String(cString: strerror(errno)))"))
                end()
                return nil
            }
            if n == 0 && count > 0 {
                fail(r, FileOpError(.changed, SandboxPath.shown(path), "the file got shorter while it was sent; try again"))
                end()
                return nil
            }
            return n
        }

        func produce() {
            while !done, !r.isFinished, pos < size, r.queuedBytes < Self.queueLimit {
                guard let n = read(Int(min(Int64(Self.chunk), size - pos))) else { return }
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                r.data(Array(buffer[0..<n]))
                pos += Int64(n)
                bytesSent += Int64(n)
            }
            guard !done, !r.isFinished, pos == size else { return }
            var st = Glibc.stat()
            if fstat(fd, &st) == 0, Int64(st.st_size) != size || st.st_mtim.tv_sec != initial.st_mtim.tv_sec
                || st.st_mtim.tv_nsec != initial.st_mtim.tv_nsec || st.st_ctim.tv_nsec != initial.st_ctim.tv_nsec {
                fail(r, FileOpError(.changed, SandboxPath.shown(path), "the file changed while it was sent; try again"))
            } else {
                r.reply(params: ["size": String(size), "sha256": hexString(hasher.finalize())])
            }
            end()
        }

        func startSending() {
            r.partial([], params: ["size": String(size), "offset": String(offset)])
            r.onWritable = { produce() }
            produce()
        }

        guard offset > 0 else { startSending(); return }
        let expected = (r.message.params["prefix-sha256"] ?? "").lowercased()
        guard expected.utf8.count == 64 else {
            fail(r, FileOpError(.resumeMismatch, SandboxPath.shown(path), "a resume needs the SHA-256 of the bytes you have (prefix-sha256)"))
            end()
            return
        }
        // Hash what the client says it has, a step per loop turn, then compare.
        var timer: Timer?
        timer = Timer(loop: loop) {
            guard !done else { timer = nil; return }
            guard let n = read(Int(min(Int64(Self.hashStep), offset - pos))) else { timer = nil; return }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            pos += Int64(n)
            if pos < offset { timer?.schedule(after: .zero); return }
            timer = nil
            let prefix = hasher   // finalize consumes; the whole-file hash goes on from here
            guard hexString(prefix.finalize()) == expected else {
                self.fail(r, FileOpError(.resumeMismatch, SandboxPath.shown(path), "the part you have differs from the file here; start again"))
                end()
                return
            }
            startSending()
        }
        timer?.schedule(after: .zero)
    }

    // MARK: Uploads

    private func put(_ r: IncomingRequest) {
        let path = r.param("path")
        guard let size = Int64(r.message.params["size"] ?? ""), size >= 0 else {
            fail(r, FileOpError(.invalidPath, SandboxPath.shown(path), "an upload needs its size in bytes")); return
        }
        let expected = (r.message.params["sha256"] ?? "").lowercased()
        guard expected.utf8.count == 64, expected.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
            fail(r, FileOpError(.invalidPath, SandboxPath.shown(path), "an upload needs the SHA-256 of the whole file (64 hex digits)")); return
        }
        let overwrite = r.flag("overwrite")
        if !overwrite {
            do {
                let existing = try sandbox.stat(path)
                fail(r, FileOpError(existing.kind == .dir ? .isADirectory : .exists, SandboxPath.shown(path),
                                    existing.kind == .dir ? "is a directory" : "already exists; use overwrite to replace it"))
                return
            } catch where error.code == .notFound {
                // the usual case: a new file
            } catch {
                fail(r, error); return
            }
        }
        // One upload per path at a time: two writers on one part file would mix their bytes.
        let key: String
        do { key = try SandboxPath.components(path).joined(separator: "/") } catch { fail(r, error); return }
        guard !uploading.contains(key) else {
            fail(r, FileOpError(.exists, SandboxPath.shown(path), "another upload of this path is in progress"))
            return
        }
        let part: (fd: Int32, existing: Int64)
        do { part = try sandbox.openPartFile(for: path, resume: r.flag("resume")) } catch { fail(r, error); return }
        uploading.insert(key)
        let fd = part.fd
        var offset = part.existing
        if offset > size {
            _ = ftruncate(fd, 0)
            offset = 0
        }
        var hasher = SHA256.Hasher()
        var pos: Int64 = 0
        var ready = false
        var done = false
        var sinceSync: Int64 = 0
        activeTransfers += 1
        func end(discard: Bool) {
            guard !done else { return }
            done = true
            close(fd)
            if discard { sandbox.discardPartFile(for: path) }
            activeTransfers -= 1
            uploading.remove(key)
            r.onData = nil   // the closures hold the request: break the cycle
            r.onEnd = nil
            r.onCancel = nil
        }
        r.onCancel = { _ in end(discard: false) }   // an interrupted upload is kept for a resume
        r.onData = { [unowned self] bytes in
            guard !done else { return }
            guard ready else {
                self.fail(r, FileOpError(.io, SandboxPath.shown(path), "data arrived before the server said where to resume"))
                end(discard: false)
                return
            }
            guard pos + Int64(bytes.count) <= size else {
                self.fail(r, FileOpError(.tooLarge, SandboxPath.shown(path), "more bytes than the announced size of \(size)"))
                end(discard: true)
                return
            }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(pos) + off_t(written)) }
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    let full = e == ENOSPC || e == EDQUOT
                    self.fail(r, FileOpError(full ? .noSpace : .io, path,
                                             full ? "the server's disk is full; the partial upload was deleted"
                                                  : "write failed: \(String(cString: strerror(e)))"))
                    end(discard: full)
                    return
                }
                written += n
            }
            hasher.update(bytes)
            pos += Int64(bytes.count)
            self.bytesReceived += Int64(bytes.count)
            sinceSync += Int64(bytes.count)
            // Start writeback every 8 MB so that the final fsync has little left to wait for.
            if sinceSync >= 8 << 20 { _ = cshim_sync_file_range_write(fd, 0, 0); sinceSync = 0 }
        }
        r.onEnd = { [unowned self] in
            guard !done else { return }
            guard pos == size else {
                self.fail(r, FileOpError(.io, SandboxPath.shown(path), "the upload ended after \(pos) of \(size) bytes; send the rest with resume"))
                end(discard: false)
                return
            }
            guard hexString(hasher.finalize()) == expected else {
                self.fail(r, FileOpError(.hashMismatch, SandboxPath.shown(path), "the file that arrived does not match its SHA-256; it was deleted, send it again"))
                end(discard: true)
                return
            }
            if fsync(fd) != 0 {
                self.fail(r, FileOpError(.io, SandboxPath.shown(path), "fsync failed: \(String(cString: strerror(errno)))"))
                end(discard: false)
                return
            }
            do throws(FileOpError) {
                try self.sandbox.commitPartFile(for: path, overwrite: overwrite)
                r.reply(params: ["size": String(size), "sha256": expected])
                self.log.info("files: received \(path) (\(size) bytes)")
                end(discard: false)
            } catch {
                self.fail(r, error)
                end(discard: false)
            }
        }

        var buffer = [UInt8](repeating: 0, count: Self.hashStep)
        func announce() {
            let prefix = hasher   // finalize consumes; the whole-file hash goes on from here
            ready = true
            r.partial([], params: ["offset": String(offset), "prefix-sha256": hexString(prefix.finalize())])
        }
        guard offset > 0 else { announce(); return }
        // Hash what an earlier upload left, a step per loop turn, before saying where to resume.
        var timer: Timer?
        timer = Timer(loop: loop) {
            guard !done else { timer = nil; return }
            let want = Int(min(Int64(Self.hashStep), offset - pos))
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(pos)) }
            guard n > 0 else {
                self.fail(r, FileOpError(.io, SandboxPath.shown(path), "cannot read the partial upload"))
                end(discard: true)
                timer = nil
                return
            }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            pos += Int64(n)
            if pos < offset { timer?.schedule(after: .zero); return }
            timer = nil
            announce()
        }
        timer?.schedule(after: .zero)
    }
}

extension IncomingRequest {
    func param(_ name: String) -> String { message.params[name] ?? "" }
    func flag(_ name: String) -> Bool { message.params[name] == "true" }
}
