import Foundation
import Testing
@testable import ClawFiles

/// Opening the root, fs-stat, fs-list and the reading side of fs-get.
@Suite struct SandboxReadTests {
    @Test func aMissingRootIsCreatedPrivateAndAnExistingOneIsLeftAsItIs() throws {
        let tree = ScratchTree()
        let root = tree.base + "/state/files"
        _ = try Sandbox(root: root)
        var st = stat()
        #expect(lstat(root, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        #expect(st.st_mode & 0o777 == 0o700)
        chmod(root, 0o750)
        _ = try Sandbox(root: root)
        #expect(lstat(root, &st) == 0 && st.st_mode & 0o777 == 0o750)

        let notADirectory = failure { try Sandbox(root: tree.root + "/x") }
        #expect(notADirectory?.code == .io)
    }

    @Test func theRootKeepsWorkingAfterItIsRenamed() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox()
        #expect(rename(tree.root, tree.base + "/RENAMED") == 0)
        #expect(try sandbox.list("").map(\.name).contains("hello.txt"))
        #expect(try sandbox.stat("docs/readme.md").size == 8)
    }

    @Test(arguments: Resolution.allCases)
    func statReportsKindSizePermissionBitsAndMtime(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        chmod(tree.root + "/hello.txt", 0o640)
        var times = [timespec(tv_sec: 1_700_000_000, tv_nsec: 0), timespec(tv_sec: 1_700_000_123, tv_nsec: 0)]
        utimensat(AT_FDCWD, tree.root + "/hello.txt", &times, 0)

        #expect(try sandbox.stat("hello.txt") == Sandbox.FileInfo(kind: .file, size: 5, mode: 0o640, mtime: 1_700_000_123))
        #expect(try sandbox.stat("docs").kind == .dir)
        #expect(try sandbox.stat("docs/").kind == .dir)
        #expect(try sandbox.stat("").kind == .dir)
        #expect(try sandbox.stat("./docs/./readme.md").size == 8)
        #expect(failure { try sandbox.stat("nope") }?.code == .notFound)
        #expect(failure { try sandbox.stat("hello.txt/x") }?.code == .notADirectory)
    }

    /// With openat2 a symlink that stays inside is followed; the O_NOFOLLOW walk cannot tell
    /// where a symlink leads without following it, so it refuses them all.
    @Test func aSymlinkInsideIsFollowedWithOpenat2AndRefusedByTheWalk() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(.openat2)
        #expect(try sandbox.stat("inlink") == sandbox.stat("docs/readme.md"))
        #expect(try sandbox.list("indir").map(\.name) == ["readme.md"])
        let opened = try sandbox.openFile("indir/readme.md")
        close(opened.fd)
        try sandbox.makeDirectory("indir/sub/deeper", parents: true)
        #expect(tree.exists("ROOT/docs/sub/deeper"))

        let walk = try tree.sandbox(.noFollowWalk)
        for attempt in [{ _ = try walk.stat("inlink") }, { _ = try walk.list("indir") }, { _ = try walk.openFile("indir/readme.md") }] {
            let error = failure(attempt)
            #expect(error?.code == .outsideSandbox)
            #expect(error?.reason.contains("symbolic link") == true)
        }
        #expect(try walk.stat("docs/readme.md").size == 8, "real directories are walked")
    }

    @Test(arguments: Resolution.allCases)
    func listShowsEntriesSortedWithLinksUnfollowedAndPartFilesHidden(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        tree.writeFile("ROOT/docs/.hidden", "h")
        tree.writeFile("ROOT/docs/.readme.md.clawchat-part", "half an upload")
        tree.writeFile("ROOT/docs/not-a.clawchat-part", "an ordinary name")
        tree.writeFile("ROOT/docs/Zebra", "z")
        tree.writeFile("ROOT/docs/écrit", "é")
        tree.link("readme.md", "ROOT/docs/again")
        tree.link("../../OUTSIDE/secret", "ROOT/docs/leak")
        mkdir(tree.root + "/docs/sub", 0o711)

        let entries = try sandbox.list("docs")
        #expect(entries.map(\.name) == [".hidden", "Zebra", "again", "leak", "not-a.clawchat-part", "readme.md", "sub", "écrit"])
        #expect(entries.first { $0.name == "again" }?.info.kind == .link)
        #expect(entries.first { $0.name == "leak" }?.info.kind == .link, "a link is listed, not followed")
        let sub = entries.first { $0.name == "sub" }?.info
        #expect(sub?.kind == .dir && sub?.mode == 0o711)
        #expect(entries.first { $0.name == "readme.md" }?.info.size == 8)
        #expect(try sandbox.list("").map(\.name).contains("out"), "the root lists its links")
        #expect(try sandbox.list(".") == sandbox.list(""))
        #expect(failure { try sandbox.list("hello.txt") }?.code == .notADirectory)
        #expect(failure { try sandbox.list("nope") }?.code == .notFound)
    }

    @Test func tenThousandEntriesAreListedCompletelyAndSorted() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox()
        mkdir(tree.root + "/many", 0o755)
        var expected: [String] = []
        for i in (0..<10_000).shuffled() {
            let name = "entry-\(i)"
            let fd = open(tree.root + "/many/" + name, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            precondition(fd >= 0)
            close(fd)
            expected.append(name)
        }
        mkdir(tree.root + "/many/a-directory", 0o755)
        tree.writeFile("ROOT/many/.upload.clawchat-part", "")
        expected.append("a-directory")

        let entries = try sandbox.list("many")
        #expect(entries.count == 10_001)
        #expect(entries.map(\.name) == expected.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(entries.filter { $0.info.kind == .file }.count == 10_000)
    }

    @Test(arguments: Resolution.allCases)
    func openFileGivesABlockingReadOnlyFdOfARegularFile(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        let opened = try sandbox.openFile("docs/readme.md")
        defer { close(opened.fd) }
        #expect(opened.info.kind == .file && opened.info.size == 8)
        var buffer = [UInt8](repeating: 0, count: 32)
        #expect(read(opened.fd, &buffer, 32) == 8)
        #expect(String(decoding: buffer.prefix(8), as: UTF8.self) == "# readme")
        let flags = fcntl(opened.fd, F_GETFL)
        #expect(flags & O_ACCMODE == O_RDONLY)
        #expect(flags & O_NONBLOCK == 0)
        #expect(fcntl(opened.fd, F_GETFD) & FD_CLOEXEC != 0)
        #expect(write(opened.fd, "x", 1) == -1, "not writable")
    }

    @Test(arguments: Resolution.allCases)
    func openFileRefusesDirectoriesAndFIFOsWithoutHanging(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        #expect(mkfifo(tree.root + "/pipe", 0o644) == 0)
        let directory = failure { try sandbox.openFile("docs") }
        #expect(directory?.code == .isADirectory)
        #expect(directory?.path == "docs")
        #expect(failure { try sandbox.openFile("") }?.code == .isADirectory)
        let fifo = failure { try sandbox.openFile("pipe") }
        #expect(fifo?.code == .io)
        #expect(fifo?.reason.contains("not a regular file") == true)
        #expect(failure { try sandbox.openFile("missing") }?.code == .notFound)
        #expect(try sandbox.list("").first { $0.name == "pipe" }?.info.kind == .other)
    }
}
