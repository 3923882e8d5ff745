import ClawCrypto

/// When security files are made and when they stop counting: a pure machine over UNIX time.
///
/// A file is valid for 11 minutes. While no device has paired with the current file, a fresh one
/// replaces it every 10 minutes (so a file copied just before a regeneration still has a minute to
/// pair). Once a device pairs, every issued secret is spent, the file is removed and regeneration
/// stops until someone asks for a new file (`clawchatd secfile`).
public struct SecurityFileSchedule {
    public static let regenerateEvery: Int64 = 10 * 60

    public struct Issued {
        public let fileID: UInt64
        public let secret: SecureBytes
        public let validFrom: Int64
        public let validUntil: Int64
        public init(fileID: UInt64, secret: SecureBytes, validFrom: Int64, validUntil: Int64) {
            self.fileID = fileID
            self.secret = secret
            self.validFrom = validFrom
            self.validUntil = validUntil
        }
    }

    public enum Effect {
        /// Write a new security file with these values.
        case write(Issued)
        /// Remove the security file: it is spent (or expired with nothing to replace it).
        case remove
    }

    /// Secrets of files that are still valid and unspent, newest first.
    public private(set) var active: [Issued] = []
    public private(set) var regenerating = false
    private var lastIssued: Int64?

    public init() {}

    /// At daemon start: make a file if no device is paired yet (so a fresh install can pair).
    public mutating func start(now: Int64, hasPairedDevices: Bool) -> [Effect] {
        hasPairedDevices ? [] : demand(now: now)
    }

    /// Adopts a still-valid file found on disk at start, instead of replacing it.
    public mutating func adopt(_ issued: Issued, now: Int64) {
        guard issued.validUntil > now else { return }
        active.insert(issued, at: 0)
        lastIssued = issued.validFrom
        regenerating = true
    }

    /// Someone asked for a fresh file now.
    public mutating func demand(now: Int64) -> [Effect] {
        regenerating = true
        return [issue(now: now)]
    }

    /// A device paired: every outstanding secret is spent.
    public mutating func paired() -> [Effect] {
        for a in active { a.secret.zeroize() }
        active = []
        regenerating = false
        lastIssued = nil
        return [.remove]
    }

    /// The compromised protocol: forget every secret and start over with a fresh file.
    public mutating func reset(now: Int64) -> [Effect] {
        for a in active { a.secret.zeroize() }
        active = []
        return demand(now: now)
    }

    public mutating func tick(now: Int64) -> [Effect] {
        var effects: [Effect] = []
        let before = active.count
        active.removeAll { issued in
            let expired = issued.validUntil <= now
            if expired { issued.secret.zeroize() }
            return expired
        }
        if regenerating, let last = lastIssued, now - last >= Self.regenerateEvery {
            effects.append(issue(now: now))
        } else if before > 0 && active.isEmpty {
            effects.append(.remove)
        }
        return effects
    }

    /// The next UNIX second at which `tick` has work.
    public var nextWakeup: Int64? {
        var t: Int64? = active.map(\.validUntil).min()
        if regenerating, let last = lastIssued { t = min(t ?? .max, last + Self.regenerateEvery) }
        return t
    }

    /// When the next file replaces the current one (nil when regeneration is off).
    public var nextRegeneration: Int64? {
        guard regenerating, let last = lastIssued else { return nil }
        return last + Self.regenerateEvery
    }

    private mutating func issue(now: Int64) -> Effect {
        let issued = Issued(fileID: UInt64(Random.uniform(UInt32.max)) << 32 | UInt64(Random.uniform(UInt32.max)),
                            secret: SecureBytes.random(count: 32), validFrom: now,
                            validUntil: now + SecurityFile.validity)
        active.insert(issued, at: 0)
        lastIssued = now
        return .write(issued)
    }
}
