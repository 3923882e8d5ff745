import Testing
@testable import ClawFiles

/// PROTOCOL.md 10.6 "Paths": the pure part of the sandbox.
@Suite struct SandboxPathTests {
    @Test(arguments: [
        ("", [String]()), (".", []), ("./", []),
        ("a", ["a"]), ("a/b/c", ["a", "b", "c"]), ("a/b/", ["a", "b"]),
        ("./a/./b/.", ["a", "b"]), (".hidden", [".hidden"]), ("...", ["..."]), ("..a", ["..a"]),
        ("a b/ümlaut €", ["a b", "ümlaut €"]), ("bad\u{FFFD}byte", ["bad\u{FFFD}byte"]),
    ])
    func validPathsSplitIntoComponents(path: String, components: [String]) throws {
        #expect(try SandboxPath.components(path) == components)
    }

    @Test(arguments: [
        ("/", "an absolute path"), ("/etc/passwd", "an absolute path"),
        ("..", "`..`"), ("../x", "`..`"), ("a/..", "`..`"), ("a/../../b", "`..`"), ("../../etc/passwd", "`..`"),
        ("a\u{0}b", "NUL"), ("\u{0}", "NUL"),
        ("a//b", "empty component"), ("a//", "empty component"), ("//", "an absolute path"),
    ])
    func badPathsAreRefusedWithTheReason(path: String, mentions: String) {
        let error = failure { try SandboxPath.components(path) }
        #expect(error?.code == .invalidPath)
        #expect(error?.path == path)
        #expect(error?.reason.contains(mentions) == true, "\(error?.reason ?? "no error")")
    }

    @Test func componentsUpTo255BytesAndPathsUpTo4096BytesAreAllowed() throws {
        let name = String(repeating: "n", count: 255)
        #expect(try SandboxPath.components(name) == [name])
        let long = Array(repeating: String(repeating: "p", count: 255), count: 16).joined(separator: "/")  // 4095 bytes
        #expect(try SandboxPath.components(long).count == 16)
        // Bytes, not characters: 127 two-byte characters fit, 128 do not.
        #expect(try SandboxPath.components(String(repeating: "é", count: 127) + "x").count == 1)
        #expect(failure { try SandboxPath.components(String(repeating: "é", count: 128)) }?.code == .invalidPath)
    }

    @Test func aLongComponentOrPathIsRefusedAndTheErrorRepeatsAShortenedPath() {
        let component = failure { try SandboxPath.components("docs/" + String(repeating: "c", count: 256)) }
        #expect(component?.code == .invalidPath)
        #expect(component?.reason == "a name is longer than 255 bytes")
        #expect(component?.path.hasPrefix("docs/ccc") == true)
        #expect(component?.path.count == 201, "200 characters and an ellipsis")

        let path = failure { try SandboxPath.components(String(repeating: "a/", count: 2049)) }
        #expect(path?.code == .invalidPath)
        #expect(path?.reason == "the path is longer than 4096 bytes")
        #expect(path?.path.count == 201)

        let name = failure { try SandboxPath.components(String(repeating: "n", count: 5000)) }
        #expect(name?.code == .invalidPath)
    }
}
