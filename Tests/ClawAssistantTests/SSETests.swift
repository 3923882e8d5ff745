import Testing
@testable import ClawAssistant

@Suite struct SSETests {
    /// Feeds `text` in every possible split into two chunks and checks each gives `expected`.
    func check(_ text: String, _ expected: [SSEEvent], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let bytes = Array(text.utf8)
        for cut in 0...bytes.count {
            var p = SSEParser()
            let events = try p.feed(bytes[..<cut]) + p.feed(bytes[cut...])
            #expect(events == expected, "split at \(cut)", sourceLocation: sourceLocation)
        }
    }

    @Test func openAIChunksAndDone() throws {
        try check("data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n",
                  [SSEEvent(data: "{\"a\":1}"), SSEEvent(data: "{\"a\":2}"), SSEEvent(data: "[DONE]")])
    }

    @Test func anthropicNamedEventsWithPingsAndCRLF() throws {
        try check("event: message_start\r\ndata: {}\r\n\r\nevent: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n",
                  [SSEEvent(type: "message_start", data: "{}"), SSEEvent(type: "ping", data: "{\"type\": \"ping\"}")])
    }

    @Test func commentsAreCountedNotDispatched() throws {
        var p = SSEParser()
        let events = try p.feed(Array(": keep-alive\n\n: keep-alive\n\n".utf8))
        #expect(events.isEmpty && p.comments == 2)
    }

    @Test func fieldRulesFromTheSpecification() throws {
        // Several data lines join with LF; one leading space is dropped, not two; a field with no
        // colon has an empty value; unknown fields are ignored; CR alone ends a line.
        try check("data:a\ndata:  b\ndata\nfoo: bar\n\n", [SSEEvent(data: "a\n b\n")])
        try check("data: x\r\rdata: y\n\n", [SSEEvent(data: "x"), SSEEvent(data: "y")])
        // An event name without data dispatches nothing, and does not leak into the next event.
        try check("event: lonely\n\ndata: z\n\n", [SSEEvent(data: "z")])
        // id is remembered for later events; retry takes digits only.
        var p = SSEParser()
        let e = try p.feed(Array("id: 7\ndata: q\n\nretry: 15x\n\nretry: 250\n\ndata: r\n\n".utf8))
        #expect(e == [SSEEvent(data: "q", id: "7"), SSEEvent(data: "r", id: "7")])
        #expect(p.retry == 250)
        // A byte order mark at the very start is skipped.
        try check("\u{FEFF}data: bom\n\n", [SSEEvent(data: "bom")])
    }

    @Test func aStreamCutMidEventIsVisible() throws {
        var p = SSEParser()
        _ = try p.feed(Array("data: {\"partial\":".utf8))
        #expect(p.hasPartialEvent)
        var q = SSEParser()
        _ = try q.feed(Array("data: done\n\n".utf8))
        #expect(!q.hasPartialEvent)
    }

    @Test func oversizedEventsAreRefused() {
        var p = SSEParser(maxEventBytes: 100)
        #expect(throws: SSEError.tooLarge(100)) { _ = try p.feed([UInt8](repeating: 0x61, count: 101)) }
        var q = SSEParser(maxEventBytes: 100)
        #expect(throws: SSEError.tooLarge(100)) {
            for _ in 0..<20 { _ = try q.feed(Array("data: 0123456789\n".utf8)) }
        }
    }
}
