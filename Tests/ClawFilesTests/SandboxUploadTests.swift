import CShim
import Foundation
import Testing
@testable import ClawFiles

/// The sandbox side of fs-put: `.NAME.clawchat-part` beside the target, renamed into place.
@Suite struct SandboxUploadTests {
    private func append(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count)
    }

    @Test(arguments: Resolution.allCases)
    func anUploadLandsUnderItsNameOnlyWhenCommitted(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        let part = try sandbox.openPartFile(for: "docs/new.txt", resume: false)
        #expect(part.existing == 0)
        append(part.fd, "first half, ")
        #expect(cshim_sync_file_range_write(part.fd, 0, 0) == 0)
        close(part.fd)

        #expect(tree.readFile("ROOT/docs/.new.txt.clawchat-part") == "first half, ")
        var st = stat()
        #expect(lstat(tree.root + "/docs/.new.txt.clawchat-part", &st) == 0 && st.st_mode & 0o777 == 0o600)
        #expect(!tree.exists("ROOT/docs/new.txt"), "a half upload is not visible under its name")
        #expect(try sandbox.list("docs").map(\.name) == ["readme.md"], "nor in a listing")

        let resumed = try sandbox.openPartFile(for: "docs/new.txt", resume: true)
        #expect(resumed.existing == 12)
        #expect(lseek(resumed.fd, 0, SEEK_END) == 12)
        append(resumed.fd, "second half")
        #expect(fsync(resumed.fd) == 0)
        close(resumed.fd)
        try sandbox.commitPartFile(for: "docs/new.txt", overwrite: false)

        #expect(tree.readFile("ROOT/docs/new.txt") == "first half, second half")
        #expect(!tree.exists("ROOT/docs/.new.txt.clawchat-part"))
        #expect(try sandbox.list("docs").map(\.name) == ["new.txt", "readme.md"])
    }

    @Test func withoutResumeAnEarlierPartFileStartsOverEmpty() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox()
        tree.writeFile("ROOT/.big.bin.clawchat-part", "left over from a crash")
        let resumed = try sandbox.openPartFile(for: "big.bin", resume: true)
        #expect(resumed.existing == 22)
        close(resumed.fd)
        let fresh = try sandbox.openPartFile(for: "big.bin", resume: false)
        #expect(fresh.existing == 0)
        close(fresh.fd)
        #expect(tree.readFile("ROOT/.big.bin.clawchat-part") == "")
    }

    @Test func aHardLinkOrSymlinkPlantedAtThePartNameIsNotWrittenThrough() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox()
        let outside = tree.guardOutside()
        #expect(link(tree.outside + "/secret", tree.root + "/.hard.clawchat-part") == 0)
        let part = try sandbox.openPartFile(for: "hard", resume: true)
        #expect(part.existing == 0, "a fresh file replaced the hard link")
        append(part.fd, "mine")
        close(part.fd)
        try sandbox.commitPartFile(for: "hard", overwrite: false)
        #expect(tree.readFile("ROOT/hard") == "mine")

        tree.link("../OUTSIDE/secret", "ROOT/.soft.clawchat-part")
        let error = failure { try sandbox.openPartFile(for: "soft", resume: true) }
        #expect(error?.code == .outsideSandbox)
        outside.verify()
    }

    @Test(arguments: Resolution.allCases)
    func aCommitNeverReplacesAnEntryUnlessAskedAndNeverADirectory(resolution: Resolution) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        var part = try sandbox.openPartFile(for: "hello.txt", resume: false)
        append(part.fd, "replacement")
        close(part.fd)

        let exists = failure { try sandbox.commitPartFile(for: "hello.txt", overwrite: false) }
        #expect(exists?.code == .exists)
        #expect(exists?.path == "hello.txt")
        #expect(tree.readFile("ROOT/hello.txt") == "hello")
        #expect(tree.readFile("ROOT/.hello.txt.clawchat-part") == "replacement", "kept for the caller to discard or retry")

        try sandbox.commitPartFile(for: "hello.txt", overwrite: true)
        #expect(tree.readFile("ROOT/hello.txt") == "replacement")

        #expect(failure { try sandbox.openPartFile(for: "docs", resume: false) }?.code == .isADirectory)
        tree.writeFile("ROOT/.docs.clawchat-part", "a file")
        #expect(failure { try sandbox.commitPartFile(for: "docs", overwrite: true) }?.code == .isADirectory)
        #expect(tree.readFile("ROOT/docs/readme.md") == "# readme")

        part = try sandbox.openPartFile(for: "gone", resume: false)
        close(part.fd)
        sandbox.discardPartFile(for: "gone")
        #expect(!tree.exists("ROOT/.gone.clawchat-part"))
        let noUpload = failure { try sandbox.commitPartFile(for: "gone", overwrite: false) }
        #expect(noUpload?.code == .notFound)
        #expect(noUpload?.reason == "no upload of this file is in progress")
    }

    @Test func uploadTargetsThatCannotWorkAreRefusedUpFront() throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox()
        #expect(failure { try sandbox.openPartFile(for: "no/such/dir/file", resume: false) }?.code == .notFound)
        #expect(failure { try sandbox.openPartFile(for: "hello.txt/file", resume: false) }?.code == .notADirectory)
        #expect(failure { try sandbox.openPartFile(for: "", resume: false) }?.code == .isADirectory)
        let fits = String(repeating: "n", count: 240)
        let part = try sandbox.openPartFile(for: fits, resume: false)
        close(part.fd)
        let tooLong = failure { try sandbox.openPartFile(for: fits + "n", resume: false) }
        #expect(tooLong?.code == .invalidPath)
        #expect(tooLong?.reason == "the name is too long for an upload (at most 240 bytes)")
    }
}
