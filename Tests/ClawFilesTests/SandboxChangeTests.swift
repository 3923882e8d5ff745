import Foundation
import Testing
@testable import ClawFiles

/// fs-rm, fs-mv, fs-mkdir and the read-only mode.
@Suite struct SandboxChangeTests {
    @Test(arguments: Resolution.allCases)
    func removeTakesFilesAndEmptyDirectoriesAndTreesOnlyWhenAsked(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        #expect(try sandbox.remove("hello.txt", recursive: false) == 1)
        #expect(!tree.exists("ROOT/hello.txt"))
        mkdir(tree.root + "/empty", 0o755)
        #expect(try sandbox.remove("empty/", recursive: false) == 1)

        mkdir(tree.root + "/docs/a", 0o755)
        mkdir(tree.root + "/docs/a/b", 0o755)
        tree.writeFile("ROOT/docs/a/b/c.txt", "c")
        tree.writeFile("ROOT/docs/a/.d.clawchat-part", "part files go too")
        let notEmpty = failure { try sandbox.remove("docs", recursive: false) }
        #expect(notEmpty?.code == .notEmpty)
        #expect(notEmpty?.path == "docs")
        #expect(tree.exists("ROOT/docs/a/b/c.txt"))
        #expect(try sandbox.remove("docs", recursive: true) == 6, "docs, readme.md, a, b, c.txt, .d.clawchat-part")
        #expect(!tree.exists("ROOT/docs"))

        let missing = failure { try sandbox.remove("docs", recursive: true) }
        #expect(missing?.code == .notFound)
        #expect(missing?.path == "docs")
        #expect(tree.exists("ROOT"))
    }

    @Test(arguments: Resolution.allCases)
    func moveRenamesAndReplacesOnlyWhenAsked(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        try sandbox.move("hello.txt", to: "docs/hello.txt", overwrite: false)
        #expect(tree.readFile("ROOT/docs/hello.txt") == "hello")
        #expect(!tree.exists("ROOT/hello.txt"))

        let exists = failure { try sandbox.move("x", to: "docs/hello.txt", overwrite: false) }
        #expect(exists?.code == .exists)
        #expect(exists?.path == "docs/hello.txt")
        #expect(tree.readFile("ROOT/x") == "x content" && tree.readFile("ROOT/docs/hello.txt") == "hello")
        try sandbox.move("x", to: "docs/hello.txt", overwrite: true)
        #expect(tree.readFile("ROOT/docs/hello.txt") == "x content")

        try sandbox.move("docs", to: "renamed", overwrite: false)
        #expect(tree.readFile("ROOT/renamed/readme.md") == "# readme")
        mkdir(tree.root + "/renamed/inner", 0o755)
        let intoItself = failure { try sandbox.move("renamed", to: "renamed/inner/again", overwrite: false) }
        #expect(intoItself?.code == .invalidPath)
        #expect(intoItself?.reason == "a directory cannot be moved into itself")
        #expect(failure { try sandbox.move("renamed", to: "renamed/inner/again", overwrite: true) }?.code == .invalidPath)

        let missing = failure { try sandbox.move("nope", to: "other", overwrite: false) }
        #expect(missing?.code == .notFound)
        #expect(missing?.path == "nope")
        #expect(failure { try sandbox.move("renamed/readme.md", to: "no/such/dir", overwrite: false) }?.code == .notFound)
        #expect(failure { try sandbox.move("renamed/readme.md", to: "", overwrite: true) }?.code == .exists)
        tree.writeFile("ROOT/file", "f")
        #expect(failure { try sandbox.move("file", to: "renamed", overwrite: true) }?.code == .isADirectory)
        #expect(failure { try sandbox.move("renamed", to: "file", overwrite: true) }?.code == .notADirectory)
    }

    @Test(arguments: Resolution.allCases)
    func makeDirectoryCreatesOneOrAllMissingParents(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        try sandbox.makeDirectory("new", parents: false)
        var st = stat()
        #expect(lstat(tree.root + "/new", &st) == 0 && st.st_mode & S_IFMT == S_IFDIR)
        let exists = failure { try sandbox.makeDirectory("new", parents: false) }
        #expect(exists?.code == .exists)
        #expect(exists?.path == "new")
        try sandbox.makeDirectory("new", parents: true)
        try sandbox.makeDirectory("", parents: true)
        #expect(failure { try sandbox.makeDirectory("", parents: false) }?.code == .exists)

        #expect(failure { try sandbox.makeDirectory("a/b/c", parents: false) }?.code == .notFound)
        try sandbox.makeDirectory("a/b/c/", parents: true)
        #expect(tree.exists("ROOT/a/b/c"))
        try sandbox.makeDirectory("a/b/c/d", parents: true)
        #expect(tree.exists("ROOT/a/b/c/d"))

        let file = failure { try sandbox.makeDirectory("hello.txt", parents: true) }
        #expect(file?.code == .notADirectory)
        #expect(file?.reason == "exists and is not a directory")
        #expect(failure { try sandbox.makeDirectory("hello.txt/sub", parents: true) }?.code == .notADirectory)
        #expect(failure { try sandbox.makeDirectory("hello.txt", parents: false) }?.code == .exists)
    }

    @Test(arguments: Resolution.allCases)
    func readOnlyModeRefusesEveryChangeAndStillServesReads(resolution: Resolution) throws {
        let tree = ScratchTree()
        tree.writeFile("ROOT/.hello.txt.clawchat-part", "an old upload")
        let sandbox = try tree.sandbox(resolution, readOnly: true)
        #expect(sandbox.readOnly)
        let before = tree.snapshot("ROOT")
        let changes: [(String, () throws -> Void)] = [
            ("new", { _ = try sandbox.openPartFile(for: "new", resume: false) }),
            ("hello.txt", { _ = try sandbox.openPartFile(for: "hello.txt", resume: true) }),
            ("hello.txt", { try sandbox.commitPartFile(for: "hello.txt", overwrite: true) }),
            ("x", { _ = try sandbox.remove("x", recursive: false) }),
            ("docs", { _ = try sandbox.remove("docs", recursive: true) }),
            ("out", { _ = try sandbox.remove("out", recursive: false) }),
            ("x", { try sandbox.move("x", to: "y", overwrite: false) }),
            ("x", { try sandbox.move("x", to: "hello.txt", overwrite: true) }),
            ("newdir", { try sandbox.makeDirectory("newdir", parents: false) }),
            ("a/b", { try sandbox.makeDirectory("a/b", parents: true) }),
        ]
        for (path, change) in changes {
            let error = failure(change)
            #expect(error?.code == .readOnly)
            #expect(error?.path == path)
        }
        sandbox.discardPartFile(for: "hello.txt")
        #expect(tree.snapshot("ROOT") == before)

        #expect(try sandbox.list("docs").map(\.name) == ["readme.md"])
        #expect(try sandbox.stat("hello.txt").size == 5)
        let opened = try sandbox.openFile("hello.txt")
        close(opened.fd)
    }
}
