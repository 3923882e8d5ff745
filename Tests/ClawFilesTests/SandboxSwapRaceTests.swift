import CShim
import Foundation
import Testing
@testable import ClawFiles

/// Exchanges two entries of a directory (renameat2 RENAME_EXCHANGE) on its own thread, as fast as
/// it can, until stopped: `ROOT/flip` is a real directory one moment and a symlink leading out the
/// next.
private final class Swapper: @unchecked Sendable {
    private let lock = NSLock()
    private var stopRequested = false
    private var swapCount = 0
    private let finished = DispatchSemaphore(value: 0)

    init(_ a: String, _ b: String) {
        Thread.detachNewThread { [self] in
            var swaps = 0
            while !self.locked({ stopRequested }) {
                if cshim_renameat2(AT_FDCWD, a, AT_FDCWD, b, cshim_RENAME_EXCHANGE) == 0 { swaps += 1 }
            }
            self.locked { swapCount = swaps }
            self.finished.signal()
        }
    }

    /// Stops the thread and returns how many exchanges it made.
    func stop() -> Int {
        locked { stopRequested = true }
        finished.wait()
        return locked { swapCount }
    }

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }
}

/// A symlink swapped in between check and use: every operation resolves its path at the moment of
/// use, beneath the root, so a swap can make it fail but never lead it outside.
@Suite struct SandboxSwapRaceTests {
    @Test(arguments: Resolution.allCases, ["../OUTSIDE", "ABSOLUTE"])
    func aDirectorySwappedForASymlinkMidOperationNeverLeadsOutside(resolution: Resolution, linkTarget: String) throws {
        let tree = ScratchTree()
        let sandbox = try tree.sandbox(resolution)
        mkdir(tree.root + "/flip", 0o755)
        tree.writeFile("ROOT/flip/inside.txt", "inside")
        tree.link(linkTarget == "ABSOLUTE" ? tree.outside : linkTarget, "ROOT/flipalt")
        let outside = tree.guardOutside()

        let swapper = Swapper(tree.root + "/flip", tree.root + "/flipalt")
        var breaches: [String] = []
        var done = 0, refusedOutside = 0, otherFailures = 0
        /// Runs one operation; it may fail (the directory is gone or a symlink for a moment), but
        /// only with an error of the sandbox.
        func attempt(_ body: () throws -> Void) {
            do {
                try body()
                done += 1
            } catch let error as FileOpError {
                if error.code == .outsideSandbox { refusedOutside += 1 } else { otherFailures += 1 }
            } catch {
                breaches.append("unexpected error \(error)")
            }
        }
        let deadline = Date().addingTimeInterval(1)
        var i = 0
        while Date() < deadline {
            i += 1
            attempt { try Attack.upload(sandbox, "flip/up-\(i)", overwrite: false) }
            attempt { try Attack.upload(sandbox, "flip/secret", overwrite: true) }
            attempt {
                let opened = try sandbox.openFile("flip/inside.txt")
                var buffer = [UInt8](repeating: 0, count: 64)
                let n = read(opened.fd, &buffer, buffer.count)
                close(opened.fd)
                if n != 6 || buffer.prefix(6) != Array("inside".utf8)[...] { breaches.append("read \(n) bytes that are not inside.txt") }
            }
            attempt {
                let opened = try sandbox.openFile("flip/dir/inner")
                close(opened.fd)
                breaches.append("opened flip/dir/inner, which exists only outside")
            }
            attempt {
                let names = try sandbox.list("flip").map(\.name)
                if names.contains("dir") { breaches.append("listed OUTSIDE through flip: \(names)") }
            }
            attempt {
                _ = try sandbox.stat("flip/dir")
                breaches.append("stat flip/dir, which exists only outside")
            }
            attempt { try sandbox.makeDirectory("flip/d-\(i)", parents: false) }
            attempt { try sandbox.makeDirectory("flip/p-\(i)/q", parents: true) }
            attempt { _ = try sandbox.remove("flip/d-\(i)", recursive: false) }
            attempt { _ = try sandbox.remove("flip/dir", recursive: true) }
            attempt { try sandbox.move("flip/up-\(i)", to: "flip/moved-\(i)", overwrite: false) }
            attempt { try sandbox.move("x", to: "flip/x-\(i)", overwrite: true) }
            attempt { try sandbox.move("flip/x-\(i)", to: "x", overwrite: false) }
        }
        let swaps = swapper.stop()

        #expect(breaches == [])
        #expect(swaps > 100, "the swapper ran")
        #expect(done > 0, "operations succeeded while the real directory was in place")
        #expect(refusedOutside > 0, "operations were refused while the symlink was in place")
        outside.verify()
    }
}
