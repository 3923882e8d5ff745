import ClawChannel
import ClawCrypto
import ClawReactor
import ClawTransport
import Glibc
import Testing
@testable import ClawClient

// MARK: Pure parts

@Suite struct FileClientPathTests {
    @Test func relativePathsJoinTheCurrentDirectory() {
        #expect(FileClient.join(cwd: "docs/2026", "report.pdf") == "docs/2026/report.pdf")
        #expect(FileClient.join(cwd: "docs/2026", "../x") == "docs/x")
        #expect(FileClient.join(cwd: "docs/2026", "a/./b") == "docs/2026/a/b")
        #expect(FileClient.join(cwd: "docs/2026", "a//b/") == "docs/2026/a/b")
        #expect(FileClient.join(cwd: "docs/2026", "") == "docs/2026")
        #expect(FileClient.join(cwd: "docs/2026", ".") == "docs/2026")
        #expect(FileClient.join(cwd: "", "x") == "x")
    }

    @Test func aLeadingSlashStartsFromTheSharedRoot() {
        #expect(FileClient.join(cwd: "docs/2026", "/abs/y") == "abs/y")
        #expect(FileClient.join(cwd: "docs/2026", "/") == "")
        #expect(FileClient.join(cwd: "docs", "/../x") == nil)
    }

    @Test func climbingAboveTheRootIsRefused() {
        #expect(FileClient.join(cwd: "", "..") == nil)
        #expect(FileClient.join(cwd: "docs", "../..") == nil)
        #expect(FileClient.join(cwd: "docs", "../../docs") == nil)
        #expect(FileClient.join(cwd: "docs/2026", "../..") == "")
        #expect(throws: FileClientError.aboveRoot(path: "../..")) { try FileClient.resolve(cwd: "docs", "../..") }
        #expect(FileClientError.aboveRoot(path: "../..").description == "../..: above the shared folder")
    }

    @Test func lastComponent() {
        #expect(FileClient.lastComponent("docs/2026/report.pdf") == "report.pdf")
        #expect(FileClient.lastComponent("report.pdf") == "report.pdf")
        #expect(FileClient.lastComponent("") == "")
    }
}

@Suite struct FileClientPlanTests {
    @Test func aDownloadResumesFromAPartFile() {
        #expect(TransferPlan.downloadStart(local: "f", destination: nil, overwrite: false, partSize: nil) == .fresh)
        #expect(TransferPlan.downloadStart(local: "f", destination: nil, overwrite: false, partSize: 0) == .fresh)
        #expect(TransferPlan.downloadStart(local: "f", destination: nil, overwrite: false, partSize: 4096) == .resume(from: 4096))
    }

    @Test func anExistingDestinationNeedsOverwrite() {
        #expect(TransferPlan.downloadStart(local: "f", destination: .other, overwrite: false, partSize: 10)
                == .refuse(.localExists(path: "f")))
        #expect(TransferPlan.downloadStart(local: "f", destination: .other, overwrite: true, partSize: 10) == .resume(from: 10))
        #expect(TransferPlan.downloadStart(local: "d", destination: .directory, overwrite: true, partSize: nil)
                == .refuse(.localUnusable(path: "d", reason: "is a directory")))
    }

    @Test func theDownloadMustStartWhereAsked() {
        let ok = TransferPlan.downloadOffset(params: ["size": "100", "offset": "40"], asked: 40)
        #expect((try? ok.get())?.size == 100)
        #expect(throws: FileClientError.self) { try TransferPlan.downloadOffset(params: ["size": "100", "offset": "0"], asked: 40).get() }
        #expect(throws: FileClientError.self) { try TransferPlan.downloadOffset(params: ["size": "10", "offset": "40"], asked: 40).get() }
        #expect(throws: FileClientError.self) { try TransferPlan.downloadOffset(params: ["offset": "0"], asked: 0).get() }
    }

    @Test func aDownloadIsVerifiedBySizeAndHash() {
        let h = String(repeating: "ab", count: 32)
        #expect(TransferPlan.verifyDownload(local: "f", announcedSize: 5, reply: ["size": "5", "sha256": h], received: 5, sha256: h) == nil)
        #expect(TransferPlan.verifyDownload(local: "f", announcedSize: 5, reply: ["size": "5", "sha256": h.uppercased()],
                                            received: 5, sha256: h) == nil)
        if case .verification? = TransferPlan.verifyDownload(local: "f", announcedSize: 5, reply: ["size": "5", "sha256": h],
                                                             received: 4, sha256: h) {} else { Issue.record("short file accepted") }
        if case .verification? = TransferPlan.verifyDownload(local: "f", announcedSize: 5, reply: ["size": "5", "sha256": h],
                                                             received: 5, sha256: String(repeating: "cd", count: 32)) {} else {
            Issue.record("wrong hash accepted")
        }
        if case .malformed? = TransferPlan.verifyDownload(local: "f", announcedSize: 5, reply: [:], received: 5, sha256: h) {} else {
            Issue.record("a reply without a hash accepted")
        }
    }

    @Test func anUploadChecksWhatTheDaemonKept() {
        let h = String(repeating: "0f", count: 32)
        #expect(TransferPlan.uploadResume(params: ["offset": "0", "prefix-sha256": h], size: 10) == .fromStart)
        #expect(TransferPlan.uploadResume(params: ["offset": "4", "prefix-sha256": h.uppercased()], size: 10)
                == .check(offset: 4, theirPrefix: h))
        if case .restart = TransferPlan.uploadResume(params: ["offset": "11", "prefix-sha256": h], size: 10) {} else {
            Issue.record("a kept part longer than the file was not restarted")
        }
        if case .restart = TransferPlan.uploadResume(params: ["offset": "4"], size: 10) {} else {
            Issue.record("a kept part without its hash was trusted")
        }
        if case .fail = TransferPlan.uploadResume(params: [:], size: 10) {} else { Issue.record("no offset accepted") }
    }

    @Test func hashingGoesInStepsOnTheLoopAndKeepsSnapshots() throws {
        let loop = try EventLoop()
        var template = Array("/tmp/fileclient-hash-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        defer { close(fd); unlink(path) }
        let content = pattern(20 << 20, seed: 4)
        _ = content.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        var steps: [Int64] = []
        var result: Result<SHA256.Hasher, FileClientError>?
        let h = FileHashing(loop: loop, fd: fd, path: path, to: Int64(content.count), snapshotEvery: 1 << 20,
                            onStep: { steps.append($0) }, onDone: { result = $0 })
        h.start()
        #expect(steps.isEmpty, "nothing is hashed inside start()")
        loop.run(until: .seconds(20)) { result != nil }
        let hasher = try #require(try result?.get())
        #expect(hexDigest(of: hasher) == hexString(SHA256.hash(content)))
        #expect(steps.count >= 3 && steps.last == Int64(content.count))
        #expect(h.snapshots.count == 21)
        // A snapshot continues like the original: the first 5.5 MiB from the one at 5 MiB.
        let snap = try #require(h.snapshot(atOrBefore: 5 << 20 | 1 << 19))
        #expect(snap.offset == 5 << 20)
        var cont = snap.state
        cont.update(Array(content[(5 << 20)..<(5 << 20 | 1 << 19)]))
        #expect(hexDigest(of: cont) == hexString(SHA256.hash(Array(content[..<(5 << 20 | 1 << 19)]))))
    }

    @Test func snapshotIntervalsBoundTheStateKept() {
        #expect(FileHashing.snapshotInterval(forSize: 0) == 1 << 20)
        #expect(FileHashing.snapshotInterval(forSize: 500 << 20) == 1 << 20)
        let big: Int64 = 64 << 30
        let step = FileHashing.snapshotInterval(forSize: big)
        #expect(step % (1 << 20) == 0)
        #expect(big / step <= 1024)
    }
}

@Suite struct FileClientListingTests {
    @Test func aPageDecodes() throws {
        let page = #"{"entries":[{"name":"docs","type":"dir","size":4096,"mode":"755","mtime":1790000000},"#
            + #"{"name":"r\u00e9sum\u00e9 \"1\".pdf","type":"file","size":123456789012,"mode":"644","mtime":1790000123},"#
            + #"{"name":"l","type":"link","size":3,"mode":"777","mtime":0},{"name":"p","type":"fifo","size":0,"mode":"600","mtime":5}]}"#
        let entries = try RemoteEntry.decodePage(Array(page.utf8))
        #expect(entries.count == 4)
        #expect(entries[0] == RemoteEntry(name: "docs", kind: .dir, size: 4096, mode: 0o755, mtime: 1_790_000_000))
        #expect(entries[1].name == "résumé \"1\".pdf")
        #expect(entries[1].size == 123_456_789_012)
        #expect(entries[1].modeString == "rw-r--r--")
        #expect(entries[2].kind == .link)
        #expect(entries[3].kind == .other)
    }

    @Test func emptyPageAndWhitespace() throws {
        #expect(try RemoteEntry.decodePage(Array(" { \"entries\" : [ ] } \n".utf8)).isEmpty)
    }

    @Test func malformedPagesAreErrorsNotShortListings() {
        let bad = [
            "", "{", "[]", #"{"entries":{}}"#, #"{"entries":[{"type":"file","size":1,"mtime":1}]}"#,
            #"{"entries":[{"name":"a","size":"1","mtime":1}]}"#, #"{"entries":[{"name":"a","size":1.5,"mtime":1}]}"#,
            #"{"entries":[]} x"#, #"{"entries":[{"name":"a\q","size":1,"mtime":1}]}"#, #"{"entries":[01]}"#,
            #"{"entries":["\ud800"]}"#, "{\"entries\":[\"a\u{01}\"]}",
            String(repeating: "[", count: 100),
        ]
        for text in bad {
            #expect(throws: FileClientError.self, "\(text)") { try RemoteEntry.decodePage(Array(text.utf8)) }
        }
        #expect(throws: FileClientError.self) { try RemoteEntry.decodePage([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D]) }
    }

    @Test func jsonReaderHandlesTheGrammar() throws {
        let v = try JSONValue.parse(Array(#"{"a":[true,false,null,-1.5e2,0,"\ud83d\ude00\n\/"]}"#.utf8), limits: RemoteEntry.listingLimits)
        #expect(v["a"] == .array([.bool(true), .bool(false), .null, .number(-150), .number(0), .string("😀\n/")]))
    }

    @Test func statReplyDecodes() throws {
        let e = try RemoteEntry.fromStat(path: "docs/a", params: ["type": "file", "size": "12", "mode": "640", "mtime": "99"])
        #expect(e == RemoteEntry(name: "docs/a", kind: .file, size: 12, mode: 0o640, mtime: 99))
        #expect(throws: FileClientError.self) { try RemoteEntry.fromStat(path: "x", params: ["type": "file"]) }
    }

    @Test func errorsSayWhatHappened() {
        #expect(FileClientError(RequestFailure.server(code: "not-found", message: "docs/x: no such file")).description
                == "docs/x: no such file (not-found)")
        #expect(FileClientError(RequestFailure.reset("cancelled")) == .cancelled)
        #expect(FileClientError.local(path: "/tmp/x", operation: "write", errno: ENOSPC).description
                == "write /tmp/x: No space left on device")
        #expect(FileClientError.localExists(path: "a").code == "local-exists")
        #expect(FileClientError.server(code: "exists", message: "").code == "exists")
    }
}

// MARK: Against an in-process daemon

/// A file daemon in the test process: the fs methods of PROTOCOL.md 10.6 over a real message
/// connection to the client's `RequestClient`, with packets passed on the loop. Knobs let a test
/// corrupt what the daemon says.
final class FakeFileDaemon {
    let loop: EventLoop
    let root: String
    private(set) var client: RequestClient!
    private var driver: MessageDriver?
    private var requests: [UInt64: IncomingRequest] = [:]
    private var toServer: [[UInt8]] = []
    private var toClient: [[UInt8]] = []
    private var carrier: Timer!
    /// Bytes of interrupted uploads, by path.
    var kept: [String: [UInt8]] = [:]
    var lieAboutHash = false
    var listPageSize = 500
    var corruptListing = false
    private(set) var received: [Message] = []

    init() throws {
        loop = try EventLoop()
        var template = Array("/tmp/fileclient-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        carrier = Timer(loop: loop) { [unowned self] in self.carry() }
        client = RequestClient(loop: loop) { [unowned self] packets in
            self.toServer += packets
            self.carrier.schedule(after: .zero)
        }
    }

    deinit { _ = system("rm -rf '\(root)'") }

    private func carry() {
        let up = toServer, down = toClient
        toServer = []
        toClient = []
        for p in up { serverReceive(p) }
        for p in down { client.receive(p) }
    }

    private func serverReceive(_ p: [UInt8]) {
        guard let (id, _) = MessageConnection.header(of: p) else { return }
        if driver == nil || driver!.connection.connectionID != id {
            let d = MessageDriver(loop: loop, connection: MessageConnection(isClient: false, connectionID: id, now: loop.clock.now)) {
                [unowned self] packets in
                self.toClient += packets
                self.carrier.schedule(after: .zero)
            }
            d.onEvent = { [unowned self] e in self.handle(e) }
            driver = d
        }
        driver!.receive(p)
    }

    private func handle(_ e: MessageEvent) {
        switch e {
        case .message(let stream, let m):
            if let r = requests[stream] { if m.kind == .data { r.onData?(m.body) }; return }
            guard m.kind == .request, let d = driver else { return }
            received.append(m)
            let r = IncomingRequest(device: 1, stream: stream, message: m, driver: d)
            requests[stream] = r
            serve(r)
        case .streamEnded(let stream): requests[stream]?.onEnd?()
        case .streamReset(let stream, let why): requests.removeValue(forKey: stream)?.cancelled(why)
        case .streamWritable(let stream): requests[stream]?.onWritable?()
        case .closed: break
        }
        requests = requests.filter { !$0.value.isFinished }
    }

    func path(_ p: String) -> String { root + "/" + p }

    func write(_ p: String, _ bytes: [UInt8]) {
        let fd = open(path(p), O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func read(_ p: String) -> [UInt8]? { try? AtomicFile.read(path(p), limit: 1 << 30) }

    private func serve(_ r: IncomingRequest) {
        let p = r.message.params
        switch r.method {
        case "fs-get": get(r)
        case "fs-put": put(r)
        case "fs-stat":
            guard let bytes = read(p["path"] ?? "") else { r.fail(code: "not-found", "\(p["path"] ?? ""): not found"); return }
            r.reply(params: ["type": "file", "size": String(bytes.count), "mode": "644", "mtime": "1790000000"])
        case "fs-list":
            let names = (0..<1234).map { "f\($0)" }
            for start in stride(from: 0, to: names.count, by: listPageSize) {
                let page = names[start..<min(start + listPageSize, names.count)]
                    .map { #"{"name":"\#($0)","type":"file","size":1,"mode":"644","mtime":2}"# }.joined(separator: ",")
                r.partial(Array((#"{"entries":["# + page + (corruptListing && start > 0 ? "" : "]}")).utf8))
            }
            r.reply(params: ["count": String(names.count)])
        case "fs-rm": r.reply(params: ["removed": "3"])
        default: r.fail(code: "unknown-method", "no such method")
        }
    }

    private func get(_ r: IncomingRequest) {
        let p = r.message.params
        guard let bytes = read(p["path"] ?? "") else { r.fail(code: "not-found", "\(p["path"] ?? ""): not found"); return }
        let offset = Int(p["offset"] ?? "0") ?? 0
        if offset > 0 {
            guard offset <= bytes.count, hexString(SHA256.hash(Array(bytes[..<offset]))) == p["prefix-sha256"] else {
                r.fail(code: "resume-mismatch", "the part you have differs from the file here; start again")
                return
            }
        }
        r.partial([], params: ["size": String(bytes.count), "offset": String(offset)])
        var pos = offset
        var cancelled = false
        r.onCancel = { _ in cancelled = true }
        let produce = { [unowned self] in
            while !cancelled, !r.isFinished, pos < bytes.count, r.queuedBytes < 2 << 20 {
                let n = min(64 << 10, bytes.count - pos)
                r.data(Array(bytes[pos..<pos + n]))
                pos += n
            }
            if pos == bytes.count, !r.isFinished {
                let digest = hexString(SHA256.hash(self.lieAboutHash ? bytes + [0] : bytes))
                r.reply(params: ["size": String(bytes.count), "sha256": digest])
            }
        }
        r.onWritable = produce
        produce()
    }

    private func put(_ r: IncomingRequest) {
        let p = r.message.params
        let target = p["path"] ?? ""
        let size = Int(p["size"] ?? "") ?? -1
        if p["overwrite"] != "true", read(target) != nil { r.fail(code: "exists", "\(target): already exists"); return }
        var data = p["resume"] == "true" ? kept[target] ?? [] : []
        if data.count > size { data = [] }
        kept[target] = data
        r.partial([], params: ["offset": String(data.count), "prefix-sha256": hexString(SHA256.hash(data))])
        r.onData = { [unowned self] bytes in
            data += bytes
            self.kept[target] = data
        }
        r.onEnd = { [unowned self] in
            guard data.count == size, hexString(SHA256.hash(data)) == p["sha256"] else {
                self.kept[target] = nil
                r.fail(code: "hash-mismatch", "the file that arrived does not match its SHA-256")
                return
            }
            self.kept[target] = nil
            self.write(target, data)
            r.reply(params: ["size": String(size), "sha256": p["sha256"]!])
        }
    }
}

/// A reproducible, non-repeating pattern.
func pattern(_ n: Int, seed: UInt64 = 1) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15
    return (0..<n).map { _ in
        x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return UInt8(truncatingIfNeeded: x >> 56)
    }
}

@Suite(.serialized) struct FileClientTransferTests {
    func localFile(_ d: FakeFileDaemon, _ name: String) -> String { d.root + "/local-" + name }

    func writeLocal(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    func run<T>(_ d: FakeFileDaemon, _ start: (@escaping (T) -> Void) -> Void) -> T? {
        var out: T?
        start { out = $0 }
        d.loop.run(until: .seconds(30)) { out != nil }
        return out
    }

    @Test func downloadLandsVerifiedAndRemovesThePartFile() throws {
        let d = try FakeFileDaemon()
        let content = pattern(3_000_000)
        d.write("big.bin", content)
        let local = localFile(d, "big.bin")
        let files = FileClient(requests: d.client, loop: d.loop)
        var phases: Set<String> = []
        let result = run(d) { done in
            files.download(remote: "big.bin", to: local, overwrite: false, progress: { phases.insert("\($0.phase)") }, done: done)
        }
        let summary = try #require(try result?.get())
        #expect(summary.bytes == 3_000_000 && summary.transferred == 3_000_000 && summary.resumedFrom == 0)
        #expect(summary.sha256 == hexString(SHA256.hash(content)))
        #expect(try AtomicFile.read(local, limit: 1 << 30) == content)
        #expect(!exists(FileClient.partPath(for: local)))
        #expect(phases == ["transferring"])
        #expect(files.activeTransfers == 0)
    }

    @Test func downloadResumesFromAPartFile() throws {
        let d = try FakeFileDaemon()
        let content = pattern(2_500_000, seed: 2)
        d.write("r.bin", content)
        let local = localFile(d, "r.bin")
        writeLocal(FileClient.partPath(for: local), Array(content[..<1_200_000]))
        let files = FileClient(requests: d.client, loop: d.loop)
        let summary = try #require(try run(d) { files.download(remote: "r.bin", to: local, overwrite: false, done: $0) }?.get())
        #expect(summary.resumedFrom == 1_200_000)
        #expect(summary.transferred == 1_300_000)
        #expect(d.received.last?.params["offset"] == "1200000")
        #expect(try AtomicFile.read(local, limit: 1 << 30) == content)
    }

    @Test func aPartFileOfAnotherFileStartsAgainOnce() throws {
        let d = try FakeFileDaemon()
        let content = pattern(700_000, seed: 3)
        d.write("m.bin", content)
        let local = localFile(d, "m.bin")
        writeLocal(FileClient.partPath(for: local), pattern(300_000, seed: 99))
        let files = FileClient(requests: d.client, loop: d.loop)
        var restarted = false
        let summary = try #require(try run(d) { done in
            files.download(remote: "m.bin", to: local, overwrite: false, progress: {
                if case .restarting = $0.phase { restarted = true }
            }, done: done)
        }?.get())
        #expect(restarted)
        #expect(summary.resumedFrom == 0 && summary.transferred == 700_000)
        #expect(d.received.count == 2)
        #expect(try AtomicFile.read(local, limit: 1 << 30) == content)
    }

    @Test func aWrongHashDeletesThePartFileAndFails() throws {
        let d = try FakeFileDaemon()
        d.lieAboutHash = true
        d.write("h.bin", pattern(100_000))
        let local = localFile(d, "h.bin")
        let files = FileClient(requests: d.client, loop: d.loop)
        let result = try #require(run(d) { files.download(remote: "h.bin", to: local, overwrite: false, done: $0) })
        guard case .failure(.verification) = result else { Issue.record("accepted: \(result)"); return }
        #expect(!exists(local))
        #expect(!exists(FileClient.partPath(for: local)))
    }

    @Test func anExistingLocalFileIsReplacedOnlyWithOverwrite() throws {
        let d = try FakeFileDaemon()
        d.write("e.bin", pattern(1000))
        let local = localFile(d, "e.bin")
        writeLocal(local, [1, 2, 3])
        let files = FileClient(requests: d.client, loop: d.loop)
        let refused = try #require(run(d) { files.download(remote: "e.bin", to: local, overwrite: false, done: $0) })
        #expect(throws: FileClientError.localExists(path: local)) { try refused.get() }
        #expect(d.received.isEmpty)
        #expect(try AtomicFile.read(local) == [1, 2, 3])
        _ = try #require(try run(d) { files.download(remote: "e.bin", to: local, overwrite: true, done: $0) }?.get())
        #expect(try AtomicFile.read(local) == pattern(1000))
    }

    @Test func aServerErrorLeavesNoEmptyPartFile() throws {
        let d = try FakeFileDaemon()
        let local = localFile(d, "none")
        let files = FileClient(requests: d.client, loop: d.loop)
        let result = try #require(run(d) { files.download(remote: "none", to: local, overwrite: false, done: $0) })
        #expect(throws: FileClientError.server(code: "not-found", message: "none: not found")) { try result.get() }
        #expect(!exists(FileClient.partPath(for: local)))
    }

    @Test func aCancelledDownloadKeepsItsPartAndResumesLater() throws {
        let d = try FakeFileDaemon()
        let content = pattern(4_000_000, seed: 5)
        d.write("c.bin", content)
        let local = localFile(d, "c.bin")
        let files = FileClient(requests: d.client, loop: d.loop)
        var transfer: FileTransfer?
        let first = try #require(run(d) { done in
            transfer = files.download(remote: "c.bin", to: local, overwrite: false, progress: { p in
                if p.done >= 1_000_000 { transfer?.cancel() }
            }, done: done)
        })
        #expect(throws: FileClientError.cancelled) { try first.get() }
        var st = stat()
        #expect(stat(FileClient.partPath(for: local), &st) == 0 && st.st_size >= 1_000_000)
        #expect(st.st_mode & 0o777 == 0o600)
        let summary = try #require(try run(d) { files.download(remote: "c.bin", to: local, overwrite: false, done: $0) }?.get())
        #expect(summary.resumedFrom == Int64(st.st_size))
        #expect(summary.resumedFrom + summary.transferred == 4_000_000)
        #expect(try AtomicFile.read(local, limit: 1 << 30) == content)
    }

    @Test func uploadSendsTheFileAndIsVerified() throws {
        let d = try FakeFileDaemon()
        let content = pattern(3_300_000, seed: 7)
        let local = localFile(d, "up.bin")
        writeLocal(local, content)
        let files = FileClient(requests: d.client, loop: d.loop)
        var hashed: Int64 = 0
        let summary = try #require(try run(d) { done in
            files.upload(local: local, remote: "up.bin", overwrite: false, progress: { p in
                if p.phase == .hashing { hashed = p.done }
            }, done: done)
        }?.get())
        #expect(hashed == 3_300_000)
        #expect(summary.transferred == 3_300_000 && summary.resumedFrom == 0)
        #expect(d.read("up.bin") == content)
        let put = try #require(d.received.first)
        #expect(put.params["sha256"] == hexString(SHA256.hash(content)))
        #expect(put.params["size"] == "3300000" && put.params["resume"] == "true" && put.params["overwrite"] == "false")
    }

    @Test func anInterruptedUploadResumesWhereTheDaemonStopped() throws {
        let d = try FakeFileDaemon()
        let content = pattern(3_000_000, seed: 8)
        let local = localFile(d, "ru.bin")
        writeLocal(local, content)
        d.kept["ru.bin"] = Array(content[..<1_700_001])
        let files = FileClient(requests: d.client, loop: d.loop)
        let summary = try #require(try run(d) { files.upload(local: local, remote: "ru.bin", overwrite: false, done: $0) }?.get())
        #expect(summary.resumedFrom == 1_700_001)
        #expect(summary.transferred == 3_000_000 - 1_700_001)
        #expect(d.read("ru.bin") == content)
    }

    @Test func keptBytesOfAnotherFileAreSentAgainWithoutResume() throws {
        let d = try FakeFileDaemon()
        let content = pattern(500_000, seed: 9)
        let local = localFile(d, "x.bin")
        writeLocal(local, content)
        d.kept["x.bin"] = pattern(200_000, seed: 10)
        let files = FileClient(requests: d.client, loop: d.loop)
        let summary = try #require(try run(d) { files.upload(local: local, remote: "x.bin", overwrite: false, done: $0) }?.get())
        #expect(summary.resumedFrom == 0 && summary.transferred == 500_000)
        #expect(d.received.map { $0.params["resume"] } == ["true", "false"])
        #expect(d.read("x.bin") == content)
    }

    @Test func anEmptyFileUploads() throws {
        let d = try FakeFileDaemon()
        let local = localFile(d, "empty")
        writeLocal(local, [])
        let files = FileClient(requests: d.client, loop: d.loop)
        let summary = try #require(try run(d) { files.upload(local: local, remote: "empty", overwrite: false, done: $0) }?.get())
        #expect(summary.bytes == 0)
        #expect(d.read("empty") == [])
    }

    @Test func uploadingADirectoryIsRefusedLocally() throws {
        let d = try FakeFileDaemon()
        let files = FileClient(requests: d.client, loop: d.loop)
        let result = try #require(run(d) { files.upload(local: d.root, remote: "x", overwrite: false, done: $0) })
        guard case .failure(.localUnusable) = result else { Issue.record("\(result)"); return }
        #expect(d.received.isEmpty)
    }

    @Test func listingPutsEveryPageTogether() throws {
        let d = try FakeFileDaemon()
        d.listPageSize = 500
        let files = FileClient(requests: d.client, loop: d.loop)
        let entries = try #require(try run(d) { files.list("", done: $0) }?.get())
        #expect(entries.count == 1234)
        #expect(entries.last?.name == "f1233")
        d.corruptListing = true
        let broken = try #require(run(d) { files.list("", done: $0) })
        guard case .failure(.malformed) = broken else { Issue.record("\(broken)"); return }
    }

    @Test func statAndRemove() throws {
        let d = try FakeFileDaemon()
        d.write("s", pattern(77))
        let files = FileClient(requests: d.client, loop: d.loop)
        let e = try #require(try run(d) { files.stat("s", done: $0) }?.get())
        #expect(e.size == 77 && e.kind == .file)
        #expect(try run(d) { files.remove("dir", recursive: true, done: $0) }?.get() == 3)
        #expect(d.received.last?.params["recursive"] == "true")
    }
}
