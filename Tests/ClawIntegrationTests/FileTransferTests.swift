import ClawChannel
import ClawClient
import ClawCrypto
import ClawDaemon
import ClawFiles
import ClawReactor
import ClawRelay
import ClawTransport
import Glibc
import Testing

/// The file manager end to end: a daemon with a `FileService` on a sandbox, a client's
/// `FileClient`, optionally through the impairment relay.
final class FilesFixture {
    let fixture: Fixture
    let relayed: RelayedFixture?
    let service: FileService
    let session: ClientSession
    let client: FileClient
    let root: String
    let local: String
    var loop: EventLoop { fixture.loop }

    /// `prepareRoot` runs on the shared folder's path before the sandbox opens it (a test mounts
    /// a small file system there).
    init(_ impairment: ImpairmentConfig? = nil, readOnly: Bool = false, prepareRoot: (String) throws -> Void = { _ in }) throws {
        if let impairment {
            let r = try RelayedFixture(impairment, seed: 3)
            relayed = r
            fixture = r.f
            session = r.session
        } else {
            relayed = nil
            fixture = try Fixture()
            let id = try fixture.pair()
            session = try fixture.connect(id).0
        }
        root = "\(fixture.dir)/files"
        local = "\(fixture.dir)/local"
        try AtomicFile.ensureDirectory(local, mode: 0o700)
        try prepareRoot(root)
        service = FileService(loop: fixture.loop, sandbox: try Sandbox(root: root, readOnly: readOnly),
                              log: Logger("test-files", minimum: .error))
        fixture.daemon.attach(service)
        client = FileClient(session: session)
    }

    func wait<T>(_ timeout: Duration = .seconds(60), _ start: (@escaping (T) -> Void) -> Void) -> T? {
        var result: T?
        start { result = $0 }
        _ = loop.run(until: timeout) { result != nil }
        return result
    }

    func upload(_ localPath: String, _ remote: String, overwrite: Bool = false, timeout: Duration = .seconds(120)) -> Result<TransferSummary, FileClientError>? {
        wait(timeout) { done in self.client.upload(local: localPath, remote: remote, overwrite: overwrite, done: done) }
    }

    func download(_ remote: String, _ localPath: String, overwrite: Bool = false, timeout: Duration = .seconds(120)) -> Result<TransferSummary, FileClientError>? {
        wait(timeout) { done in self.client.download(remote: remote, to: localPath, overwrite: overwrite, done: done) }
    }
}

/// Writes `size` bytes of a seeded pattern; past 8 MiB the file is sparse with a pattern block
/// every 64 MiB, so a 1 GB file costs little disk but every region is checked.
func makeFile(_ path: String, size: Int64, seed: UInt64) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    try #require(fd >= 0)
    defer { close(fd) }
    var rng = SplitMix64(seed: seed)
    func block(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
    if size <= 8 << 20 {
        let bytes = block(Int(size))
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == Int(size))
        return
    }
    #expect(ftruncate(fd, off_t(size)) == 0)
    var at: Int64 = 0
    while at < size {
        let b = block(Int(min(1 << 20, size - at)))
        _ = b.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(at)) }
        at += 64 << 20
    }
}

func sha256(of path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var h = SHA256.Hasher()
    var buf = [UInt8](repeating: 0, count: 1 << 20)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        h.update(Array(buf[0..<n]))
    }
    return hexString(h.finalize())
}

@Suite(.serialized) struct FileTransferTests {
    @Test func smallAndMediumFilesRoundTripThroughALossyRelay() throws {
        let f = try FilesFixture(ImpairmentConfig(lossPercent: 2, delay: .milliseconds(5), jitter: .milliseconds(2),
                                                  duplicatePercent: 1, reorderPercent: 1))
        for (i, size) in [Int64(0), 1, 1199, 1_000_000].enumerated() {
            let src = "\(f.local)/src-\(size)"
            try makeFile(src, size: size, seed: UInt64(i + 1))
            let want = try #require(sha256(of: src))
            let up = try #require(f.upload(src, "up-\(size)"))
            #expect((try? up.get())?.sha256 == want, "upload of \(size) bytes: \(up)")
            #expect(sha256(of: "\(f.root)/up-\(size)") == want, "the server's copy of \(size) bytes is identical")
            let back = "\(f.local)/back-\(size)"
            let down = try #require(f.download("up-\(size)", back))
            #expect((try? down.get())?.bytes == size, "download of \(size) bytes: \(down)")
            #expect(sha256(of: back) == want, "the round trip of \(size) bytes is byte-identical")
        }
        let lost = f.relayed!.relay.counters(.toServer).lost + f.relayed!.relay.counters(.toClient).lost
        #expect(lost > 0, "the relay really dropped datagrams")
    }

    /// 1 GB (sparse) up and back through the relay at 0.5 % loss; memory stays bounded.
    @Test func aGigabyteRoundTripsThroughTheRelayWithLoss() throws {
        let f = try FilesFixture(ImpairmentConfig(lossPercent: 0.5))
        let size: Int64 = bulkSize(1 << 30)
        let src = "\(f.local)/big"
        try makeFile(src, size: size, seed: 42)
        let want = try #require(sha256(of: src))
        let before = memoryKiB()
        let t0 = f.loop.clock.now
        let up = try #require(f.upload(src, "big", timeout: .seconds(1500)))
        let t1 = f.loop.clock.now
        #expect((try? up.get())?.sha256 == want, "\(up)")
        let down = try #require(f.download("big", "\(f.local)/big-back", timeout: .seconds(1500)))
        let t2 = f.loop.clock.now
        #expect((try? down.get())?.sha256 == want, "\(down)")
        #expect(sha256(of: "\(f.local)/big-back") == want)
        let after = memoryKiB()
        print("\(size >> 20) MiB through the relay at 0.5% loss (debug build, one thread): up \(Int((t1 - t0).seconds)) s "
              + "(\(Int(Double(size) / 1e6 / (t1 - t0).seconds)) MB/s), down \(Int((t2 - t1).seconds)) s "
              + "(\(Int(Double(size) / 1e6 / (t2 - t1).seconds)) MB/s); RSS \(before.rss >> 10) → \(after.rss >> 10) MiB")
        #expect(after.rss - before.rss < 256 << 10, "memory stays bounded: RSS grew \(after.rss - before.rss) KiB")
    }

    @Test func aChatDuringAGigabyteDownloadIsAnsweredPromptly() throws {
        let f = try FilesFixture()
        let size: Int64 = 1 << 30
        try makeFile("\(f.root)/huge", size: size, seed: 7)
        var got: Int64 = 0
        var finished = false
        let t = f.client.download(remote: "huge", to: "\(f.local)/huge", overwrite: false, progress: { got = $0.done }) { _ in finished = true }
        _ = f.loop.run(until: .seconds(60)) { got > 64 << 20 }
        #expect(got > 64 << 20, "the download is well under way")
        var latencies: [Duration] = []
        for i in 0..<5 {
            let start = f.loop.clock.now
            var answer: String?
            f.session.request("chat", body: Array("ping \(i)".utf8)).onDone = { if case .success(let m) = $0 { answer = m.text } }
            _ = f.loop.run(until: .seconds(10)) { answer != nil }
            #expect(answer == "echo: ping \(i)")
            latencies.append(f.loop.clock.now - start)
        }
        let worst = latencies.max() ?? .zero
        print("chat during a 1 GiB download: answered in \(latencies.map { Int($0.seconds * 1000) }) ms, download at \(got >> 20) MiB")
        #expect(worst < promptLimit(.seconds(1)), "a chat waited \(worst) behind the download")
        #expect(!finished, "the download was still running while the chats were answered")
        t.cancel()
    }

    @Test func aDirectoryOfTenThousandEntriesListsCompletely() throws {
        let f = try FilesFixture()
        try AtomicFile.ensureDirectory("\(f.root)/many", mode: 0o755)
        for i in 0..<10_000 {
            let fd = open("\(f.root)/many/entry-\(i)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            close(fd)
        }
        let entries = try #require(f.wait { done in f.client.list("many", done: done) })
        let names = try entries.get().map(\.name)
        #expect(names.count == 10_000)
        #expect(Set(names) == Set((0..<10_000).map { "entry-\($0)" }))
    }

    @Test func readOnlyModeRefusesEveryChange() throws {
        let f = try FilesFixture(readOnly: true)
        try makeFile("\(f.root)/kept", size: 10, seed: 1)
        try makeFile("\(f.local)/x", size: 10, seed: 2)
        var codes: [String] = []
        func code<T>(_ r: Result<T, FileClientError>?) -> String {
            if case .failure(let e)? = r { return e.code }
            return "succeeded"
        }
        codes.append(code(f.upload("\(f.local)/x", "new")))
        codes.append(code(f.wait { done in f.client.remove("kept", recursive: false, done: done) }))
        codes.append(code(f.wait { done in f.client.move(from: "kept", to: "moved", overwrite: false, done: done) }))
        codes.append(code(f.wait { done in f.client.makeDirectory("dir", parents: false, done: done) }))
        #expect(codes == ["read-only", "read-only", "read-only", "read-only"])
        #expect(sha256(of: "\(f.root)/kept") != nil && AtomicFile.mode(of: "\(f.root)/new") == nil)
        // Reading still works.
        #expect((try? f.download("kept", "\(f.local)/kept")?.get())?.bytes == 10)
    }

    @Test func pathsOutsideTheSandboxAreRefusedOverTheWire() throws {
        let f = try FilesFixture()
        let outside = "\(f.fixture.dir)/outside"
        try AtomicFile.ensureDirectory(outside, mode: 0o700)
        try makeFile("\(outside)/secret", size: 100, seed: 9)
        #expect(symlink("../outside", "\(f.root)/out") == 0)
        for path in ["../outside/secret", "out/secret", "/etc/passwd", "a/../../outside/secret"] {
            let r = f.download(path, "\(f.local)/leak")
            guard case .failure(let e)? = r else { Issue.record("\(path) was served"); continue }
            #expect(["invalid-path", "outside-sandbox"].contains(e.code), "\(path): \(e)")
            #expect(!e.description.contains(f.fixture.dir), "the server's paths stay out of errors: \(e)")
        }
        try makeFile("\(f.local)/payload", size: 100, seed: 3)
        guard case .failure(let e)? = f.upload("\(f.local)/payload", "out/planted") else { Issue.record("planted"); return }
        #expect(e.code == "outside-sandbox")
        #expect(AtomicFile.mode(of: "\(outside)/planted") == nil && AtomicFile.mode(of: "\(outside)/.planted.clawchat-part") == nil)
    }

    @Test func anExistingFileIsNotReplacedUnlessAsked() throws {
        let f = try FilesFixture()
        try makeFile("\(f.root)/doc", size: 50, seed: 1)
        try makeFile("\(f.local)/doc", size: 60, seed: 2)
        guard case .failure(let e)? = f.upload("\(f.local)/doc", "doc") else { Issue.record("replaced"); return }
        #expect(e.code == "exists")
        #expect((try? f.upload("\(f.local)/doc", "doc", overwrite: true)?.get())?.bytes == 60)
        #expect(sha256(of: "\(f.root)/doc") == sha256(of: "\(f.local)/doc"))
    }
}
