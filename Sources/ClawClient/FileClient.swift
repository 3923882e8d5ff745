import ClawReactor
import ClawTransport

/// The client of the daemon's file manager (PROTOCOL.md 10.6): listing, stat, remove, move,
/// mkdir, and resumable, verified downloads and uploads. Everything is asynchronous on the
/// session's loop; each completion is called exactly once, never from inside the call that
/// started the operation. Transfers run side by side with each other and with chat, each on
/// its own stream.
///
/// Remote paths are relative to the shared folder, as the protocol wants them; `join(cwd:_:)`
/// turns what a user types (relative to a current directory, or from the root with a leading
/// `/`) into one.
public final class FileClient {
    public let requests: RequestClient
    public unowned let loop: EventLoop
    /// Transfers in progress: they keep themselves here until they end.
    private var active: [ObjectIdentifier: AnyObject] = [:]

    /// Bytes per `data` message of an upload (the daemon sends downloads in the same size).
    public static let chunkSize = 64 << 10
    /// Bytes an upload keeps queued: enough to fill the path, bounded whatever the file size.
    public static let queueLimit = 2 << 20
    /// The suffix of a download's part file, beside its destination.
    public static let partSuffix = ".clawchat-part"

    public init(requests: RequestClient, loop: EventLoop) {
        self.requests = requests
        self.loop = loop
    }

    public convenience init(session: ClientSession) {
        self.init(requests: session.requests, loop: session.loop)
    }

    /// Downloads and uploads not finished yet.
    public var activeTransfers: Int { active.count }

    /// Where a download to `local` keeps what has arrived until it is complete and verified.
    public static func partPath(for local: String) -> String { local + partSuffix }

    // MARK: Transfers

    /// Downloads `remote` to the local path `local`, resuming from `LOCAL.clawchat-part` when a
    /// previous download left one. Fails at once when `local` exists and `overwrite` is false.
    /// A failed or cancelled download keeps its part file for the next attempt, except when the
    /// bytes proved wrong.
    @discardableResult
    public func download(remote: String, to local: String, overwrite: Bool,
                         progress: @escaping (FileTransfer.Progress) -> Void = { _ in },
                         done: @escaping (Result<TransferSummary, FileClientError>) -> Void) -> FileTransfer {
        let d = Download(requests: requests, loop: loop, remote: remote, local: local, overwrite: overwrite,
                         progress: progress, done: done)
        track(d, transfer: d.transfer)
        d.start()
        return d.transfer
    }

    /// Uploads the local file `local` to `remote`. The daemon keeps what an interrupted upload
    /// sent; this one then sends only the rest, once the kept bytes proved to be this file's.
    @discardableResult
    public func upload(local: String, remote: String, overwrite: Bool,
                       progress: @escaping (FileTransfer.Progress) -> Void = { _ in },
                       done: @escaping (Result<TransferSummary, FileClientError>) -> Void) -> FileTransfer {
        let u = Upload(requests: requests, loop: loop, local: local, remote: remote, overwrite: overwrite,
                       progress: progress, done: done)
        track(u, transfer: u.transfer)
        u.start()
        return u.transfer
    }

    private func track(_ job: AnyObject, transfer: FileTransfer) {
        let key = ObjectIdentifier(job)
        active[key] = job
        transfer.onFinished = { [weak self] in self?.active[key] = nil }
    }

    // MARK: Operations

    /// The entries of a remote directory, every page of the answer put together.
    public func list(_ path: String, done: @escaping (Result<[RemoteEntry], FileClientError>) -> Void) {
        var entries: [RemoteEntry] = []
        var broken: FileClientError?
        let r = requests.request("fs-list", params: ["path": path])
        r.onPartial = { [unowned r] m in
            guard broken == nil else { return }
            do throws(FileClientError) { entries += try RemoteEntry.decodePage(m.body) } catch {
                broken = error
                r.cancel()
            }
        }
        r.onDone = { outcome in
            if let broken { done(.failure(broken)); return }
            switch outcome {
            case .success(let m):
                if let n = m.params["count"].flatMap({ Int($0) }), n != entries.count {
                    done(.failure(.malformed("the listing announced \(n) entries and sent \(entries.count)")))
                } else {
                    done(.success(entries))
                }
            case .failure(let f):
                done(.failure(FileClientError(f)))
            }
        }
        r.reportIfEndedEarly(loop: loop)
    }

    /// What is at a remote path (a final symlink followed, inside the shared folder).
    public func stat(_ path: String, done: @escaping (Result<RemoteEntry, FileClientError>) -> Void) {
        let r = requests.request("fs-stat", params: ["path": path])
        r.onDone = { outcome in
            done(outcome.mapError(FileClientError.init).flatMap { m in
                Result { () throws(FileClientError) in try RemoteEntry.fromStat(path: path, params: m.params) }
            })
        }
        r.reportIfEndedEarly(loop: loop)
    }

    /// Removes a file, a symlink or an empty directory; with `recursive`, a directory and all
    /// in it. Reports how many entries went.
    public func remove(_ path: String, recursive: Bool, done: @escaping (Result<Int, FileClientError>) -> Void) {
        simple("fs-rm", ["path": path, "recursive": String(recursive)], done) { Int($0.params["removed"] ?? "") ?? 0 }
    }

    /// Renames or moves; refuses to replace an existing `to` unless `overwrite`.
    public func move(from: String, to: String, overwrite: Bool, done: @escaping (Result<Void, FileClientError>) -> Void) {
        simple("fs-mv", ["from": from, "to": to, "overwrite": String(overwrite)], done) { _ in () }
    }

    /// Creates a directory; with `parents`, the missing ones above it too (and no error when it
    /// exists).
    public func makeDirectory(_ path: String, parents: Bool, done: @escaping (Result<Void, FileClientError>) -> Void) {
        simple("fs-mkdir", ["path": path, "parents": String(parents)], done) { _ in () }
    }

    private func simple<T>(_ method: String, _ params: [String: String],
                           _ completion: @escaping (Result<T, FileClientError>) -> Void, value: @escaping (Message) -> T) {
        let r = requests.request(method, params: params)
        r.onDone = { outcome in
            completion(outcome.map(value).mapError(FileClientError.init))
        }
        r.reportIfEndedEarly(loop: loop)
    }

    // MARK: Paths

    /// Resolves what a user typed against the current remote directory `cwd`: a leading `/`
    /// starts from the shared folder's root, `.` and empty components vanish, `..` goes up.
    /// The result is a clean relative path (`""` is the root), or nil when it climbs above the
    /// root. Only the spelling is checked: the daemon refuses what is still invalid.
    public static func join(cwd: String, _ path: String) -> String? {
        var parts: [Substring] = []
        let whole = path.hasPrefix("/") ? path : cwd + "/" + path
        for c in whole.split(separator: "/", omittingEmptySubsequences: true) {
            switch c {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default: parts.append(c)
            }
        }
        return parts.joined(separator: "/")
    }

    /// `join`, with the error to show when the path climbs above the root.
    public static func resolve(cwd: String, _ path: String) throws(FileClientError) -> String {
        guard let p = join(cwd: cwd, path) else { throw .aboveRoot(path: path) }
        return p
    }

    /// The last component of a path (`""` for the root).
    public static func lastComponent(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? ""
    }
}
