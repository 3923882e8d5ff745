/// HKDF with HMAC-SHA256, exactly as the Noise Protocol Framework (rev 34, section 4.3)
/// defines it: no salt/info, and two or three 32-byte outputs.
///
///     temp_key = HMAC(chaining_key, input_key_material)
///     output1  = HMAC(temp_key, 0x01)
///     output2  = HMAC(temp_key, output1 || 0x02)
///     output3  = HMAC(temp_key, output2 || 0x03)
public enum HKDF {
    /// Length of each output, in bytes (Noise's HASHLEN for SHA-256).
    public static let outputLength = HMACSHA256.tagLength

    /// Derives `outputCount` (2 or 3) keys. All intermediate values stay in secure memory.
    public static func derive(
        chainingKey: UnsafeRawBufferPointer,
        inputKeyMaterial: UnsafeRawBufferPointer,
        outputCount: Int
    ) -> [SecureBytes] {
        precondition((2...3).contains(outputCount), "Noise HKDF produces 2 or 3 outputs")
        let tempKey = SecureBytes(count: outputLength)
        tempKey.withUnsafeMutableBytes { out in
            HMACSHA256.authenticate(key: chainingKey, parts: [inputKeyMaterial], into: out)
        }
        var outputs: [SecureBytes] = []
        outputs.reserveCapacity(outputCount)
        tempKey.withUnsafeBytes { temp in
            for index in 1...outputCount {
                let output = SecureBytes(count: outputLength)
                var counter = UInt8(index)
                withUnsafeBytes(of: &counter) { counterByte in
                    output.withUnsafeMutableBytes { out in
                        if let previous = outputs.last {
                            previous.withUnsafeBytes { prior in
                                HMACSHA256.authenticate(key: temp, parts: [prior, counterByte], into: out)
                            }
                        } else {
                            HMACSHA256.authenticate(key: temp, parts: [counterByte], into: out)
                        }
                    }
                }
                outputs.append(output)
            }
        }
        return outputs
    }

    /// `derive` with a secret chaining key and secret input key material.
    public static func derive(chainingKey: SecureBytes, inputKeyMaterial: SecureBytes, outputCount: Int) -> [SecureBytes] {
        chainingKey.withUnsafeBytes { ck in
            inputKeyMaterial.withUnsafeBytes { ikm in
                derive(chainingKey: ck, inputKeyMaterial: ikm, outputCount: outputCount)
            }
        }
    }

    /// `derive` with a secret chaining key and public input key material (e.g. an ephemeral
    /// public key, or nothing at all for Noise's Split).
    public static func derive(chainingKey: SecureBytes, inputKeyMaterial: [UInt8], outputCount: Int) -> [SecureBytes] {
        chainingKey.withUnsafeBytes { ck in
            inputKeyMaterial.withUnsafeBytes { ikm in
                derive(chainingKey: ck, inputKeyMaterial: ikm, outputCount: outputCount)
            }
        }
    }
}
