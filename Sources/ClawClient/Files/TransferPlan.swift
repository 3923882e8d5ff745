/// The decisions of a transfer that depend only on what each side has: kept apart from the I/O
/// so that tests can go through every case.
enum TransferPlan {
    /// How a download begins.
    enum DownloadStart: Equatable {
        case refuse(FileClientError)
        /// Nothing kept: ask from byte 0.
        case fresh
        /// A part file of this many bytes is kept: hash it, then ask for the rest.
        case resume(from: Int64)
    }

    /// `destination`: what is at the local path now (nil: nothing); `partSize`: the size of the
    /// `.clawchat-part` file beside it, nil when there is none.
    static func downloadStart(local: String, destination: LocalKind?, overwrite: Bool, partSize: Int64?) -> DownloadStart {
        switch destination {
        case .directory?: return .refuse(.localUnusable(path: local, reason: "is a directory"))
        case .other?: if !overwrite { return .refuse(.localExists(path: local)) }
        case nil: break
        }
        guard let partSize, partSize > 0 else { return .fresh }
        return .resume(from: partSize)
    }

    enum LocalKind: Equatable { case directory, other }

    /// The first `partial` of `fs-get` says where the data starts; it must be where we asked.
    static func downloadOffset(params: [String: String], asked: Int64) -> Result<(size: Int64, offset: Int64), FileClientError> {
        guard let size = Int64(params["size"] ?? ""), size >= 0,
              let offset = Int64(params["offset"] ?? ""), offset >= 0, offset <= size else {
            return .failure(.malformed("fs-get announced no valid size and offset"))
        }
        guard offset == asked else {
            return .failure(.malformed("fs-get starts at byte \(offset), not at \(asked) as asked"))
        }
        return .success((size, offset))
    }

    /// The reply of a download against what arrived: the sizes and the SHA-256 must all agree.
    static func verifyDownload(local: String, announcedSize: Int64, reply: [String: String],
                               received: Int64, sha256: String) -> FileClientError? {
        guard let size = Int64(reply["size"] ?? ""), let theirs = reply["sha256"]?.lowercased() else {
            return .malformed("fs-get replied without size and sha256")
        }
        if size != announcedSize || received != size {
            return .verification(path: local, reason: "received \(received) bytes of a file of \(size); the part file was deleted, try again")
        }
        if theirs != sha256 {
            return .verification(path: local, reason: "the SHA-256 of what arrived (\(sha256.prefix(16))...) is not the daemon's (\(theirs.prefix(16))...); the part file was deleted, try again")
        }
        return nil
    }

    /// What an upload does after the daemon says how much of an earlier attempt it kept.
    enum UploadResume: Equatable {
        /// Send everything from byte 0.
        case fromStart
        /// Check the kept prefix against our own first `offset` bytes.
        case check(offset: Int64, theirPrefix: String)
        /// The daemon's part cannot be ours: cancel and send again without resume.
        case restart(reason: String)
        case fail(FileClientError)
    }

    static func uploadResume(params: [String: String], size: Int64) -> UploadResume {
        guard let offset = Int64(params["offset"] ?? ""), offset >= 0 else {
            return .fail(.malformed("fs-put announced no valid offset"))
        }
        if offset == 0 { return .fromStart }
        if offset > size { return .restart(reason: "the daemon kept \(offset) bytes of a file of \(size)") }
        guard let prefix = params["prefix-sha256"], prefix.utf8.count == 64 else {
            return .restart(reason: "the daemon did not say what its \(offset) kept bytes are")
        }
        return .check(offset: offset, theirPrefix: prefix.lowercased())
    }

    /// The reply of an upload: the daemon must have the file we hashed.
    static func verifyUpload(remote: String, reply: [String: String], size: Int64, sha256: String) -> FileClientError? {
        if let s = reply["size"], Int64(s) != size {
            return .verification(path: remote, reason: "the daemon stored \(s) bytes, not \(size)")
        }
        if let h = reply["sha256"], h.lowercased() != sha256 {
            return .verification(path: remote, reason: "the daemon's SHA-256 differs from the file sent")
        }
        return nil
    }
}
