import Foundation
import Testing
@testable import ClawFiles

/// How a test's sandbox resolves paths: as on this kernel (openat2), or as on one without it.
enum Resolution: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case openat2
    case noFollowWalk
    var testDescription: String { rawValue }
}

/// A scratch tree per test under /tmp: BASE/ROOT is the sandbox, BASE/OUTSIDE lies beside it with
/// things an attacker wants (`secret`, `dir/inner`). ROOT holds files, a directory and symlinks
/// leading out in every way, plus some that stay inside.
final class ScratchTree {
    let base: String
    let root: String
    let outside: String

    init() {
        var template = Array("/tmp/clawfiles-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        base = String(cString: made!)
        root = base + "/ROOT"
        outside = base + "/OUTSIDE"
        mkdir(root, 0o755)
        mkdir(outside, 0o755)
        writeFile("OUTSIDE/secret", "the secret")
        mkdir(outside + "/dir", 0o755)
        writeFile("OUTSIDE/dir/inner", "inner secret")

        writeFile("ROOT/x", "x content")
        writeFile("ROOT/hello.txt", "hello")
        mkdir(root + "/docs", 0o755)
        writeFile("ROOT/docs/readme.md", "# readme")
        link("../OUTSIDE", "ROOT/out")             // relative, leads out
        link(outside, "ROOT/abs")                  // absolute, leads out
        link("../OUTSIDE/secret", "ROOT/outfile")  // to a file outside
        link("out", "ROOT/chain")                  // inside, to a link that leads out
        link("..", "ROOT/up")                      // the parent of the root
        link("loop2", "ROOT/loop1")
        link("loop1", "ROOT/loop2")
        link("docs/readme.md", "ROOT/inlink")      // stays inside
        link("docs", "ROOT/indir")                 // stays inside
    }

    deinit { Self.removeTree(base) }

    /// A sandbox on ROOT.
    func sandbox(_ resolution: Resolution = .openat2, readOnly: Bool = false) throws -> Sandbox {
        try Sandbox(root: root, readOnly: readOnly, forceNoFollowWalk: resolution == .noFollowWalk)
    }

    func writeFile(_ relative: String, _ text: String, mode: mode_t = 0o644) {
        let fd = open(base + "/" + relative, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        precondition(fd >= 0, "cannot create \(relative)")
        let bytes = Array(text.utf8)
        precondition(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
        close(fd)
    }

    func readFile(_ relative: String) -> String? {
        guard let data = FileManager.default.contents(atPath: base + "/" + relative) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    func link(_ target: String, _ relative: String) {
        precondition(symlink(target, base + "/" + relative) == 0, "cannot link \(relative)")
    }

    func linkTarget(_ relative: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: base + "/" + relative)
    }

    func exists(_ relative: String) -> Bool {
        var st = stat()
        return lstat(base + "/" + relative, &st) == 0
    }

    func names(_ relative: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: base + "/" + relative)) ?? []).sorted()
    }

    // MARK: Proving that nothing outside was touched

    /// What `lstat` and the bytes say of every entry under a directory, keyed by relative path.
    struct Snapshot: Equatable, CustomStringConvertible {
        struct Entry: Equatable {
            var type: mode_t, size: Int64, mode: mode_t, mtime: Int, mtimeNanos: Int, inode: UInt64
            var content: [UInt8]?
            var linkTarget: String?
        }
        var entries: [String: Entry]
        var description: String { entries.keys.sorted().joined(separator: ", ") }
    }

    /// Reads every entry under `relative` (which bumps access times: arm the detector after it).
    func snapshot(_ relative: String) -> Snapshot {
        var out: [String: Snapshot.Entry] = [:]
        func visit(_ rel: String) {
            let full = base + "/" + rel
            var st = stat()
            guard lstat(full, &st) == 0 else { return }
            var entry = Snapshot.Entry(type: st.st_mode & S_IFMT, size: Int64(st.st_size), mode: st.st_mode & 0o7777,
                                       mtime: st.st_mtim.tv_sec, mtimeNanos: st.st_mtim.tv_nsec, inode: UInt64(st.st_ino))
            switch st.st_mode & S_IFMT {
            case S_IFREG: entry.content = FileManager.default.contents(atPath: full).map { Array($0) }
            case S_IFLNK: entry.linkTarget = linkTarget(rel)
            case S_IFDIR:
                for name in names(rel) { visit(rel + "/" + name) }
            default: break
            }
            out[rel] = entry
        }
        visit(relative)
        return Snapshot(entries: out)
    }

    /// An access time long before every modification time, which any read or listing under
    /// `relative` replaces (relatime updates an access time older than the modification time).
    static let armedAccessTime = 1_000_000_000

    /// Sets the access time of everything under `relative` to `armedAccessTime`.
    func armReadDetector(_ relative: String) {
        for path in allPaths(relative) {
            var times = [timespec(tv_sec: Self.armedAccessTime, tv_nsec: 0), timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2)]  // UTIME_OMIT: the modification time stays
            precondition(utimensat(AT_FDCWD, base + "/" + path, &times, AT_SYMLINK_NOFOLLOW) == 0)
        }
    }

    /// The entries under `relative` that were read or listed since `armReadDetector`.
    func entriesRead(_ relative: String) -> [String] {
        // Each entry is checked before it is listed here, which bumps its access time.
        var st = stat()
        guard lstat(base + "/" + relative, &st) == 0 else { return [] }
        var out = st.st_atim.tv_sec != Self.armedAccessTime ? [relative] : []
        if st.st_mode & S_IFMT == S_IFDIR {
            for name in names(relative) { out += entriesRead(relative + "/" + name) }
        }
        return out
    }

    private func allPaths(_ relative: String) -> [String] {
        var out = [relative]
        var st = stat()
        if lstat(base + "/" + relative, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR {
            for name in names(relative) { out += allPaths(relative + "/" + name) }
        }
        return out
    }

    /// Records OUTSIDE and arms the read detector; `verify` then checks nothing changed.
    func guardOutside() -> OutsideGuard {
        let guardState = OutsideGuard(tree: self, before: snapshot("OUTSIDE"))
        armReadDetector("OUTSIDE")
        return guardState
    }

    struct OutsideGuard {
        let tree: ScratchTree
        let before: Snapshot

        /// Nothing under OUTSIDE was read, listed, created, changed or removed, and nothing new
        /// appeared beside ROOT.
        func verify(sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(tree.entriesRead("OUTSIDE") == [], "read or listed outside the root", sourceLocation: sourceLocation)
            #expect(tree.snapshot("OUTSIDE") == before, "changed outside the root", sourceLocation: sourceLocation)
            #expect(tree.names("") == ["OUTSIDE", "ROOT"], "created beside the root", sourceLocation: sourceLocation)
        }
    }

    /// rm -rf that never follows a symlink.
    static func removeTree(_ path: String) {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if st.st_mode & S_IFMT == S_IFDIR {
            chmod(path, 0o700)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] {
                removeTree(path + "/" + name)
            }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}

/// Runs `body`, which must fail with a `FileOpError`; returns it (nil if `body` succeeded).
func failure<T>(_ body: () throws -> T, sourceLocation: SourceLocation = #_sourceLocation) -> FileOpError? {
    do {
        _ = try body()
        return nil
    } catch let error as FileOpError {
        return error
    } catch {
        Issue.record("not a FileOpError: \(error)", sourceLocation: sourceLocation)
        return nil
    }
}
