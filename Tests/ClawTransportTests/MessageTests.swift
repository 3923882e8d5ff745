import ClawReactor
import Testing
@testable import ClawTransport

@Suite struct MessageCodecTests {
    @Test func roundTripAndCanonicalEncoding() throws {
        let m = Message(.request, id: 7, method: "chat", params: ["b": "2", "a": "1"], body: Array("hi".utf8))
        var d = MessageDecoder()
        let bytes = m.encoded()
        // Fed one byte at a time, the message appears exactly once, when complete.
        var got: [Message] = []
        for b in bytes { got += try d.feed([b]) }
        #expect(got == [m])
        #expect(Message(.request, id: 7, method: "chat", params: ["a": "1", "b": "2"], body: Array("hi".utf8)).encoded() == bytes)
    }

    @Test func malformedInputIsAClearErrorNotACrash() {
        var d = MessageDecoder()
        #expect(throws: MessageError.unsupportedVersion(2)) { _ = try d.feed([3, 2, 1, 0]) }
        var e = MessageDecoder()
        #expect(throws: MessageError.self) { _ = try e.feed([5, 1, 9, 0, 0, 0]) }   // unknown kind 9
        var f = MessageDecoder()
        #expect(throws: MessageError.tooLarge(UInt64(Message.maxEncodedSize) + 1)) {
            var p: [UInt8] = []
            Varint.append(UInt64(Message.maxEncodedSize) + 1, to: &p)
            _ = try f.feed(p)
        }
        var g = MessageDecoder()
        // A method that is not UTF-8.
        #expect(throws: MessageError.self) { _ = try g.feed([6, 1, 1, 1, 2, 0xFF, 0xFE]) }
    }
}

/// Two message connections wired back to back on a fake clock, no loss.
final class MessagePair {
    var now = Instant(nanoseconds: 1_000_000_000)
    let client: MessageConnection
    let server: MessageConnection
    var clientEvents: [MessageEvent] = []
    var serverEvents: [MessageEvent] = []
    var toServer: [[UInt8]] = []

    init() {
        client = MessageConnection(isClient: true, connectionID: 0xABCD_0123, now: now)
        server = MessageConnection(isClient: false, connectionID: 0xABCD_0123, now: now)
    }

    func run(rounds: Int = 50) {
        for _ in 0..<rounds {
            now = now + .milliseconds(5)
            let up = client.poll(now: now)
            toServer += up
            for p in up { server.receive(p, now: now) }
            for p in server.poll(now: now) { client.receive(p, now: now) }
            client.tick(now: now)
            server.tick(now: now)
            clientEvents += client.takeEvents()
            serverEvents += server.takeEvents()
        }
    }
}

@Suite struct MessageConnectionTests {
    @Test func requestAndReplyOnTheirOwnStream() {
        let p = MessagePair()
        let (stream, id) = p.client.request("chat", body: Array("hello".utf8))
        p.run()
        #expect(p.serverEvents.contains(.message(stream: stream, Message(.request, id: id, method: "chat", body: Array("hello".utf8)))))
        #expect(p.serverEvents.contains(.streamEnded(stream: stream)))
        p.server.send(Message(.partial, id: id, body: Array("hel".utf8)), on: stream)
        p.server.send(Message(.reply, id: id, body: Array("hello back".utf8)), on: stream, finish: true)
        p.run()
        let msgs = p.clientEvents.compactMap { if case .message(let s, let m) = $0, s == stream { return m } else { return nil } }
        #expect(msgs.map(\.kind) == [.partial, .reply])
        #expect(msgs.last?.text == "hello back")
        // The client set the open flag until it heard from the server, then cleared it.
        #expect(MessageConnection.header(of: p.toServer[0])?.flags == MessageConnection.flagOpen)
        #expect(MessageConnection.header(of: p.toServer.last!)?.flags == 0)
    }

    @Test func garbageOnAStreamResetsThatStreamOnly() {
        let p = MessagePair()
        let good = p.client.request("chat", body: [1]).stream
        let bad = p.client.transport.openStream()
        p.client.transport.write([0x05, 9, 9, 9, 9, 9], to: bad, fin: true)
        p.run()
        #expect(p.serverEvents.contains { if case .streamReset(let s, let why) = $0 { return s == bad && why.contains("unsupported message version 9") }; return false })
        #expect(p.serverEvents.contains { if case .message(let s, _) = $0 { return s == good }; return false })
        #expect(!p.server.isClosed)
    }

    @Test func unknownConnectionReplyClosesTheClientWithAClearReason() {
        let p = MessagePair()
        p.client.receive(MessageConnection.unknownConnectionReply(0xABCD_0123), now: p.now)
        let events = p.client.takeEvents()
        #expect(events.contains { if case .closed(let why) = $0 { return why.contains("no record") }; return false })
        // A reply naming another connection is ignored.
        let q = MessagePair()
        q.client.receive(MessageConnection.unknownConnectionReply(1), now: q.now)
        #expect(!q.client.isClosed)
    }

    @Test func cancelledRequestIsReportedToTheServer() {
        let p = MessagePair()
        let (stream, _) = p.client.request("source", finish: false)
        p.run()
        p.client.cancel(stream)
        p.run()
        #expect(p.serverEvents.contains { if case .streamReset(let s, let why) = $0 { return s == stream && why.contains("cancelled") }; return false })
    }
}

@Suite struct AckOnlyTests {
    @Test func acknowledgementsAreRecognisedAndDataIsNot() {
        let p = MessagePair()
        p.client.request("chat", body: [1, 2, 3])
        p.run(rounds: 1)
        let first = p.toServer[0]
        #expect(!MessageConnection.isAckOnly(first), "a request elicits an answer")
        // The server's answer to a request it has not replied to yet is a bare acknowledgement.
        let q = MessagePair()
        q.client.request("chat", body: [1])
        q.now = q.now + .milliseconds(1)
        for pkt in q.client.poll(now: q.now) { q.server.receive(pkt, now: q.now) }
        q.now = q.now + .milliseconds(30)
        q.server.tick(now: q.now)
        let acks = q.server.poll(now: q.now)
        #expect(!acks.isEmpty && acks.allSatisfy(MessageConnection.isAckOnly))
        #expect(!MessageConnection.isAckOnly([0, 0, 0, 1, 0]))
    }
}
