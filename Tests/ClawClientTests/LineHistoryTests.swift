import ClawReactor
import Glibc
import Testing
@testable import ClawClient

/// A fresh directory under /tmp for one test.
private func scratchDirectory() -> String {
    var template = Array("/tmp/clawchat-history-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(made != nil, "mkdtemp failed")
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

private func lines(of path: String) -> [String] {
    guard let bytes = try? AtomicFile.read(path) else { return [] }
    return bytes.split(separator: UInt8(ascii: "\n")).map { String(decoding: $0, as: UTF8.self) }
}

@Suite struct LineHistoryTests {
    @Test func entriesWithNewlinesAndBackslashesRoundTrip() {
        let path = scratchDirectory() + "/history"
        let entries = ["plain", "two\nlines", "back\\slash", "cr\r", "\\n literally", "日本 😀", "trailing\\"]
        for e in entries { #expect(LineHistory.append(e, path: path)) }
        #expect(LineHistory.load(path: path) == entries)
        #expect(lines(of: path).count == entries.count)
    }

    @Test func linesStartingWithASpaceOrEmptyOrHugeAreNotSaved() {
        let path = scratchDirectory() + "/history"
        #expect(!LineHistory.append(" my password", path: path))
        #expect(!LineHistory.append("", path: path))
        #expect(!LineHistory.append(String(repeating: "x", count: LineHistory.maxEntryBytes + 1), path: path))
        #expect(LineHistory.append("kept", path: path))
        #expect(LineHistory.load(path: path) == ["kept"])
    }

    @Test func aMissingDirectoryIsCreatedPrivateAndTheFileTooAndAnExistingOneIsLeftAlone() {
        let root = scratchDirectory()
        let path = root + "/a/b/history"
        #expect(LineHistory.append("x", path: path))
        #expect(AtomicFile.mode(of: root + "/a/b") == 0o700)
        #expect(AtomicFile.mode(of: path) == 0o600)

        chmod(root, 0o755)
        #expect(LineHistory.append("y", path: root + "/history"))
        #expect(AtomicFile.mode(of: root) == 0o755)
        #expect(AtomicFile.mode(of: root + "/history") == 0o600)
    }

    @Test func theFileIsCutBackToTheNewestEntriesOnceItHoldsTwiceTheLimit() {
        let path = scratchDirectory() + "/history"
        for i in 1...6 { LineHistory.append("line \(i)", path: path, limit: 3) }
        #expect(lines(of: path).count == 6)
        #expect(LineHistory.load(path: path, limit: 3) == ["line 4", "line 5", "line 6"])
        LineHistory.append("line 7", path: path, limit: 3)
        #expect(lines(of: path) == ["line 5", "line 6", "line 7"])
        #expect(AtomicFile.mode(of: path) == 0o600)
    }

    @Test func loadMergesRepeatsAndSurvivesMissingOrUnreadableFiles() throws {
        let dir = scratchDirectory()
        #expect(LineHistory.load(path: dir + "/nothing") == [])
        #expect(LineHistory.load(path: dir) == [])  // a directory, not a file
        try AtomicFile.write(Array("a\na\nb\n\na\n".utf8), to: dir + "/h")
        #expect(LineHistory.load(path: dir + "/h") == ["a", "b", "a"])
        #expect(LineHistory.load(path: dir + "/h", limit: 0) == [])
    }

    @Test func appendingWhereNoFileCanBeMadeFailsQuietly() throws {
        let dir = scratchDirectory()
        try AtomicFile.write([1], to: dir + "/file")
        #expect(!LineHistory.append("x", path: dir + "/file/history"))
        #expect(!LineHistory.append("x", path: dir))
    }
}
