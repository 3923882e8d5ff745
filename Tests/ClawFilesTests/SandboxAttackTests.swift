import Foundation
import Testing
@testable import ClawFiles

/// One way of trying to reach past the root, and how it must be refused.
struct Attack: Sendable, CustomTestStringConvertible {
    let name: String
    let code: FileOpError.Code
    /// The path the error names (as the client gave it).
    let path: String
    let run: @Sendable (Sandbox) throws -> Void

    var testDescription: String { name }

    init(_ name: String, _ code: FileOpError.Code, _ path: String, _ run: @escaping @Sendable (Sandbox) throws -> Void) {
        self.name = name
        self.code = code
        self.path = path
        self.run = run
    }

    /// An upload end to end: part file, a byte, commit.
    static func upload(_ sandbox: Sandbox, _ path: String, overwrite: Bool) throws(FileOpError) {
        let part = try sandbox.openPartFile(for: path, resume: false)
        _ = write(part.fd, "pwned", 5)
        close(part.fd)
        try sandbox.commitPartFile(for: path, overwrite: overwrite)
    }

    static let all: [Attack] = [
        Attack("stat ..", .invalidPath, "..") { _ = try $0.stat("..") },
        Attack("read ../../etc/passwd", .invalidPath, "../../etc/passwd") { _ = try $0.openFile("../../etc/passwd") },
        Attack("read /etc/passwd", .invalidPath, "/etc/passwd") { _ = try $0.openFile("/etc/passwd") },
        Attack("stat a/../../b", .invalidPath, "a/../../b") { _ = try $0.stat("a/../../b") },
        Attack("list ../OUTSIDE", .invalidPath, "../OUTSIDE") { _ = try $0.list("../OUTSIDE") },
        Attack("read a symlink to a file outside", .outsideSandbox, "outfile") { _ = try $0.openFile("outfile") },
        Attack("read through a relative symlink", .outsideSandbox, "out/secret") { _ = try $0.openFile("out/secret") },
        Attack("read through an absolute symlink", .outsideSandbox, "abs/secret") { _ = try $0.openFile("abs/secret") },
        Attack("read through a chain of symlinks", .outsideSandbox, "chain/secret") { _ = try $0.openFile("chain/secret") },
        Attack("read through a symlink to ..", .outsideSandbox, "up/OUTSIDE/secret") { _ = try $0.openFile("up/OUTSIDE/secret") },
        Attack("list through a relative symlink", .outsideSandbox, "out") { _ = try $0.list("out") },
        Attack("list through it with a trailing slash", .outsideSandbox, "out/") { _ = try $0.list("out/") },
        Attack("list through an absolute symlink", .outsideSandbox, "abs") { _ = try $0.list("abs") },
        Attack("list a subdirectory outside", .outsideSandbox, "out/dir") { _ = try $0.list("out/dir") },
        Attack("list the parent of the root", .outsideSandbox, "up") { _ = try $0.list("up") },
        Attack("stat through a symlink", .outsideSandbox, "out/secret") { _ = try $0.stat("out/secret") },
        Attack("stat a symlink leading out", .outsideSandbox, "out") { _ = try $0.stat("out") },
        Attack("stat a symlink to a file outside", .outsideSandbox, "outfile") { _ = try $0.stat("outfile") },
        Attack("stat a symlink loop", .outsideSandbox, "loop1") { _ = try $0.stat("loop1") },
        Attack("open a part file through a symlink", .outsideSandbox, "out/new") { _ = try $0.openPartFile(for: "out/new", resume: false) },
        Attack("resume a part file through a symlink", .outsideSandbox, "abs/secret") { _ = try $0.openPartFile(for: "abs/secret", resume: true) },
        Attack("upload through a symlink", .outsideSandbox, "out/new") { try upload($0, "out/new", overwrite: false) },
        Attack("upload over a file outside", .outsideSandbox, "out/secret") { try upload($0, "out/secret", overwrite: true) },
        Attack("commit through a symlink", .outsideSandbox, "out/new") { try $0.commitPartFile(for: "out/new", overwrite: true) },
        Attack("move a file from outside in", .outsideSandbox, "out/secret") { try $0.move("out/secret", to: "x2", overwrite: false) },
        Attack("move a file out", .outsideSandbox, "out/x") { try $0.move("x", to: "out/x", overwrite: false) },
        Attack("move a file out over another", .outsideSandbox, "abs/secret") { try $0.move("x", to: "abs/secret", overwrite: true) },
        Attack("mkdir through a symlink", .outsideSandbox, "out/newdir") { try $0.makeDirectory("out/newdir", parents: false) },
        Attack("mkdir with parents through a symlink", .outsideSandbox, "out/a/b") { try $0.makeDirectory("out/a/b", parents: true) },
        Attack("mkdir with parents through an absolute symlink", .outsideSandbox, "abs/a") { try $0.makeDirectory("abs/a", parents: true) },
        Attack("mkdir with parents on a symlink leading out", .outsideSandbox, "out") { try $0.makeDirectory("out", parents: true) },
        Attack("remove through a symlink", .outsideSandbox, "out/secret") { _ = try $0.remove("out/secret", recursive: false) },
        Attack("remove a tree through a symlink", .outsideSandbox, "out/dir") { _ = try $0.remove("out/dir", recursive: true) },
        Attack("remove the root", .invalidPath, "") { _ = try $0.remove("", recursive: true) },
        Attack("remove the root as .", .invalidPath, ".") { _ = try $0.remove(".", recursive: true) },
        Attack("move the root", .invalidPath, "") { try $0.move("", to: "elsewhere", overwrite: true) },
        Attack("a NUL byte", .invalidPath, "x\u{0}/../../OUTSIDE/secret") { _ = try $0.openFile("x\u{0}/../../OUTSIDE/secret") },
        Attack("a NUL byte in an upload", .invalidPath, "new\u{0}") { try upload($0, "new\u{0}", overwrite: false) },
        Attack("a 5,000-byte name", .invalidPath, SandboxPath.shown(String(repeating: "n", count: 5000))) {
            _ = try $0.openPartFile(for: String(repeating: "n", count: 5000), resume: false)
        },
        Attack("a 256-byte component", .invalidPath, SandboxPath.shown("docs/" + String(repeating: "c", count: 256))) {
            try $0.makeDirectory("docs/" + String(repeating: "c", count: 256), parents: true)
        },
    ]
}

/// Every attack of the table is refused with a clear error, on this kernel and on one
/// without openat2, and nothing outside the root is read, created or changed.
@Suite struct SandboxAttackTests {
    @Test(arguments: Attack.all, Resolution.allCases)
    func attackIsRefusedAndNothingOutsideIsTouched(attack: Attack, resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        let rootBefore = tree.snapshot("ROOT")
        let outside = tree.guardOutside()

        let error = failure { try attack.run(sandbox) }

        #expect(error?.code == attack.code, "\(error.map(String.init(describing:)) ?? "it succeeded")")
        #expect(error?.path == attack.path)
        #expect(error?.reason.isEmpty == false)
        #expect(error?.description.contains(tree.base) == false, "an error must not name the server's path")
        if attack.code == .outsideSandbox && resolution == .openat2 {
            #expect(error?.reason.contains("leads outside the shared folder") == true)
        }
        outside.verify()
        #expect(tree.snapshot("ROOT") == rootBefore, "a refused operation changes nothing inside either")
    }

    /// Symlinks are entries of the root like others: removing or moving one acts on the link, and
    /// an upload with overwrite replaces the link, never its target.
    @Test(arguments: Resolution.allCases)
    func aSymlinkLeadingOutIsRemovedOrMovedItselfNotItsTarget(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        let outside = tree.guardOutside()

        #expect(try sandbox.remove("out", recursive: true) == 1)
        #expect(!tree.exists("ROOT/out"))
        #expect(try sandbox.remove("abs/", recursive: false) == 1)
        #expect(!tree.exists("ROOT/abs"))
        try sandbox.move("chain", to: "docs/chain", overwrite: false)
        #expect(tree.linkTarget("ROOT/docs/chain") == "out")

        #expect(failure { try Attack.upload(sandbox, "outfile", overwrite: false) }?.code == .exists)
        try Attack.upload(sandbox, "outfile", overwrite: true)
        #expect(tree.linkTarget("ROOT/outfile") == nil)
        #expect(tree.readFile("ROOT/outfile") == "pwned")

        tree.link("../../OUTSIDE", "ROOT/docs/leak")
        tree.link("../../OUTSIDE/secret", "ROOT/docs/leakfile")
        #expect(try sandbox.remove("docs", recursive: true) == 5, "docs, readme.md, chain, leak, leakfile")
        #expect(!tree.exists("ROOT/docs"))
        outside.verify()
    }

    @Test func thisKernelHasOpenat2SoTheAttackTableCoversBothResolutions() throws {
        // Linux 5.6 added openat2; the O_NOFOLLOW walk is only for kernels before it.
        let tree = ScratchTree()
        #expect(try tree.sandbox().resolution == .openat2)
        #expect(try tree.sandbox(.noFollowWalk).resolution == .noFollowWalk)
    }
}
