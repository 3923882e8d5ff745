/// One token of a Noise message pattern (Noise rev 34, section 7).
public enum NoiseToken: String, Sendable, Equatable {
    case e, s, ee, es, se, ss, psk
}

/// A Noise handshake pattern with its modifiers applied: the pre-messages and the ordered
/// handshake messages. Message `i` is sent by the initiator when `i` is even, by the responder
/// when it is odd.
public struct NoiseHandshakePattern: Sendable, Equatable {
    /// The full pattern name as it appears in a protocol name, e.g. `IKpsk2`.
    public let name: String
    /// The pattern without modifiers, e.g. `IK`.
    public let baseName: String
    /// The modifiers in order, e.g. `["psk2"]`.
    public let modifiers: [String]
    /// Keys the initiator's side knows of the initiator before the handshake (`-> s`).
    public let initiatorPreMessage: [NoiseToken]
    /// Keys the initiator knows of the responder before the handshake (`<- s`).
    public let responderPreMessage: [NoiseToken]
    /// The handshake messages, tokens in processing order.
    public let messages: [[NoiseToken]]

    /// One-way patterns (N, K, X) have a single message; their transport traffic flows only
    /// from initiator to responder.
    public var isOneWay: Bool { Self.oneWayPatterns.contains(baseName) }

    /// Whether any psk modifier is present; it changes how `e` tokens are processed.
    public var usesPSK: Bool { messages.contains { $0.contains(.psk) } }

    /// Looks up `name` (base pattern plus optional `+`-separated psk modifiers).
    public init(name: String) throws(NoiseError) {
        let base = String(name.prefix { "NKXI1".contains($0) })
        guard let entry = Self.table[base] else { throw .unsupportedPattern(name) }
        let rest = name.dropFirst(base.count)
        let modifiers = rest.isEmpty ? [] : rest.split(separator: "+", omittingEmptySubsequences: false).map(String.init)

        var messages = entry.messages.map(Self.tokens)
        for modifier in modifiers {
            guard modifier.hasPrefix("psk"), let position = Int(modifier.dropFirst(3)),
                  String(position) == modifier.dropFirst(3), position <= messages.count else {
                throw .unsupportedModifier(modifier)
            }
            // psk0 goes first in the first message; pskN (N >= 1) goes last in message N.
            if position == 0 {
                messages[0].insert(.psk, at: 0)
            } else {
                messages[position - 1].append(.psk)
            }
        }

        self.name = name
        self.baseName = base
        self.modifiers = modifiers
        self.initiatorPreMessage = Self.tokens(entry.initiator)
        self.responderPreMessage = Self.tokens(entry.responder)
        self.messages = messages
    }

    /// Every base pattern name in the table.
    public static var supportedPatterns: [String] { table.keys.sorted() }

    private static let oneWayPatterns: Set<String> = ["N", "K", "X"]

    private static func tokens(_ text: String) -> [NoiseToken] {
        text.split(separator: ",").map { word in
            let trimmed = String(word.filter { $0 != " " })
            guard let token = NoiseToken(rawValue: trimmed) else {
                preconditionFailure("Noise pattern table contains unknown token \"\(trimmed)\"")
            }
            return token
        }
    }

    private typealias Entry = (initiator: String, responder: String, messages: [String])

    /// Noise rev 34: one-way (7.4), fundamental interactive (7.5) and deferred (18) patterns,
    /// written as in the specification: initiator pre-message, responder pre-message, then the
    /// messages alternating from the initiator.
    private static let table: [String: Entry] = [
        // One-way.
        "N": ("", "s", ["e, es"]),
        "K": ("s", "s", ["e, es, ss"]),
        "X": ("", "s", ["e, es, s, ss"]),
        // Fundamental interactive.
        "NN": ("", "", ["e", "e, ee"]),
        "NK": ("", "s", ["e, es", "e, ee"]),
        "NX": ("", "", ["e", "e, ee, s, es"]),
        "XN": ("", "", ["e", "e, ee", "s, se"]),
        "XK": ("", "s", ["e, es", "e, ee", "s, se"]),
        "XX": ("", "", ["e", "e, ee, s, es", "s, se"]),
        "KN": ("s", "", ["e", "e, ee, se"]),
        "KK": ("s", "s", ["e, es, ss", "e, ee, se"]),
        "KX": ("s", "", ["e", "e, ee, se, s, es"]),
        "IN": ("", "", ["e, s", "e, ee, se"]),
        "IK": ("", "s", ["e, es, s, ss", "e, ee, se"]),
        "IX": ("", "", ["e, s", "e, ee, se, s, es"]),
        // Deferred.
        "NK1": ("", "s", ["e", "e, ee, es"]),
        "NX1": ("", "", ["e", "e, ee, s", "es"]),
        "X1N": ("", "", ["e", "e, ee", "s", "se"]),
        "X1K": ("", "s", ["e, es", "e, ee", "s", "se"]),
        "XK1": ("", "s", ["e", "e, ee, es", "s, se"]),
        "X1K1": ("", "s", ["e", "e, ee, es", "s", "se"]),
        "X1X": ("", "", ["e", "e, ee, s, es", "s", "se"]),
        "XX1": ("", "", ["e", "e, ee, s", "es, s, se"]),
        "X1X1": ("", "", ["e", "e, ee, s", "es, s", "se"]),
        "K1N": ("s", "", ["e", "e, ee", "se"]),
        "K1K": ("s", "s", ["e, es", "e, ee", "se"]),
        "KK1": ("s", "s", ["e", "e, ee, se, es"]),
        "K1K1": ("s", "s", ["e", "e, ee, es", "se"]),
        "K1X": ("s", "", ["e", "e, ee, s, es", "se"]),
        "KX1": ("s", "", ["e", "e, ee, se, s", "es"]),
        "K1X1": ("s", "", ["e", "e, ee, s", "se, es"]),
        "I1N": ("", "", ["e, s", "e, ee", "se"]),
        "I1K": ("", "s", ["e, es, s", "e, ee", "se"]),
        "IK1": ("", "s", ["e, s", "e, ee, se, es"]),
        "I1K1": ("", "s", ["e, s", "e, ee, es", "se"]),
        "I1X": ("", "", ["e, s", "e, ee, s, es", "se"]),
        "IX1": ("", "", ["e, s", "e, ee, se, s", "es"]),
        "I1X1": ("", "", ["e, s", "e, ee, s", "se, es"]),
    ]
}
