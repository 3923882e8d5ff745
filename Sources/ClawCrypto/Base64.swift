import CSodium

/// Standard Base64 (with padding) through libsodium, so secrets never pass through Foundation.
public enum Base64 {
    public static func encode(_ bytes: [UInt8]) -> String {
        Sodium.ensureInitialized()
        let variant = Int32(sodium_base64_VARIANT_ORIGINAL)
        let len = sodium_base64_encoded_len(bytes.count, variant)
        var out = [CChar](repeating: 0, count: len)
        bytes.withUnsafeBufferPointer { b in
            _ = sodium_bin2base64(&out, len, b.baseAddress, b.count, variant)
        }
        return String(decoding: out.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Decodes Base64, ignoring surrounding whitespace; nil if it is not valid Base64.
    public static func decode(_ text: String) -> [UInt8]? {
        Sodium.ensureInitialized()
        let trimmed = Array(text.utf8.drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }.reversed()
            .drop { $0 == 32 || $0 == 10 || $0 == 13 || $0 == 9 }.reversed())
        guard !trimmed.isEmpty else { return nil }
        var out = [UInt8](repeating: 0, count: trimmed.count)
        var written = 0
        var end: UnsafePointer<CChar>?
        let rc = trimmed.withUnsafeBufferPointer { t in
            t.withMemoryRebound(to: CChar.self) { c in
                sodium_base642bin(&out, out.count, c.baseAddress, c.count, nil, &written, &end,
                                  Int32(sodium_base64_VARIANT_ORIGINAL))
            }
        }
        guard rc == 0 else { return nil }
        // Everything must have been consumed: trailing junk is an error, not ignored.
        let consumed = trimmed.withUnsafeBufferPointer { t in
            t.withMemoryRebound(to: CChar.self) { c in end.map { c.baseAddress!.distance(to: $0) } ?? -1 }
        }
        guard consumed == trimmed.count else { return nil }
        return Array(out.prefix(written))
    }
}
