import ClawAssistant
import ClawChannel
import ClawClient
import ClawConfig
import ClawCron
import ClawCrypto
import ClawFiles
import ClawReactor
import ClawTransport
import Glibc

/// Every parser that sees bytes from outside, as a function of those bytes. Each must return
/// (accept or refuse) and never trap, hang or grow without bound; libFuzzer (scripts/fuzz) and
/// the replay mode of `clawchat-fuzz` call them.
enum FuzzTargets {
    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "sse": { bytes in
            var p = SSEParser(maxEventBytes: 64 << 10)
            _ = try? p.feed(bytes)
        },
        "json": { bytes in _ = try? JSONValue.parse(bytes) },
        "completion-openai": { completion(.openAIChat, $0) },
        "completion-anthropic": { completion(.anthropicMessages, $0) },
        "cron-expression": { bytes in
            guard let s = try? CronSchedule.parse(String(decoding: bytes.prefix(256), as: UTF8.self)) else { return }
            _ = s.next(after: 1_796_115_000, in: .utc)
        },
        "cron-file": { bytes in
            let file = CronFile(text: String(decoding: bytes, as: UTF8.self)) { text in
                (try? CronSchedule.parse(text)) == nil ? "bad" : nil
            }
            if let first = file.jobs.first { _ = try? file.removing(named: first.name) }
        },
        "tzif": { bytes in
            guard let z = try? TimeZoneRules(tzif: bytes, name: "fuzz") else { return }
            _ = z.local(1_796_115_000)
            _ = z.instants(for: LocalDateTime(year: 2026, month: 3, day: 8, hour: 2, minute: 30))
        },
        "posix-tz": { bytes in _ = try? TimeZoneRules(posix: String(decoding: bytes.prefix(256), as: UTF8.self), name: "fuzz") },
        "toml": { bytes in _ = TOMLDocument(parsing: String(decoding: bytes, as: UTF8.self)) },
        "config": { bytes in _ = ConfigLoader.load(text: String(decoding: bytes, as: UTF8.self), path: "fuzz.toml", environment: { _ in nil }) },
        "messages": { bytes in
            var d = MessageDecoder()
            _ = try? d.feed(bytes)
        },
        "transport-packet": { bytes in
            let c = TransportConnection(isClient: false, config: .forChannel, now: .zero)
            c.receive(bytes, now: .zero)
            _ = c.poll(now: Instant(nanoseconds: 1_000_000))
        },
        "security-file": { bytes in _ = try? SecurityFile.open(bytes, with: fuzzKey, now: 1_796_115_000) },
        "sandbox-path": { bytes in _ = try? SandboxPath.components(String(decoding: bytes, as: UTF8.self)) },
        "channel-server": ChannelTargets.server,
        "channel-client": ChannelTargets.client,
        "stun": ChannelTargets.stun,
        "env-file": { bytes in _ = EnvFile(parsing: String(decoding: bytes, as: UTF8.self)) },
        "file-listing": { bytes in _ = try? RemoteEntry.decodePage(bytes) },
        "line-editor": { bytes in
            var e = LineEditor(history: ["one", "two"], historyLimit: 4)
            _ = e.feed(bytes)
        },
    ]

    static var fuzzKey: BootstrapKey { BootstrapKey.raw(SecureBytes(copying: [UInt8](repeating: 7, count: 32))) }

    static func completion(_ api: ProviderAPI, _ bytes: [UInt8]) {
        var d = CompletionDecoder(api: api)
        guard (try? d.headers(status: 200, headers: [("content-type", "text/event-stream")])) != nil else { return }
        _ = d.body(bytes)
        _ = try? d.end()
    }
}

#if FUZZING
/// libFuzzer's entry point (its own `main` calls it when it links first): the target named by
/// $CLAWCHAT_FUZZ_TARGET.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let name = getenv("CLAWCHAT_FUZZ_TARGET").map({ String(cString: $0) }), let target = FuzzTargets.all[name] else {
        fatalError("set CLAWCHAT_FUZZ_TARGET to one of: \(FuzzTargets.all.keys.sorted().joined(separator: " "))")
    }
    target(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}
#endif
