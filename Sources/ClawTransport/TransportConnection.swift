import ClawReactor

/// What the transport tells the application.
public enum TransportEvent: Equatable {
    /// The peer opened a stream.
    case streamOpened(UInt64)
    /// Bytes of a stream, in order, each exactly once.
    case streamData(UInt64, [UInt8])
    /// The peer finished its side of the stream (all its bytes were delivered).
    case streamFinished(UInt64)
    case streamReset(UInt64, code: UInt64)
    /// A stream can take more bytes from `write`.
    case streamWritable(UInt64)
    /// The connection ended: closed by either side, a protocol violation, or a dead peer.
    case closed(reason: String)
}

/// A reliable, multiplexed, congestion-controlled transport over an unreliable datagram channel,
/// modelled on QUIC (RFC 9000 streams and frames, RFC 9002 loss recovery and NewReno). Pure: it
/// takes packets and time, and returns packets and events. Packet numbers are never reused.
public final class TransportConnection {
    struct SentPacket {
        let number: UInt64
        let sentAt: Instant
        let size: Int
        let ackEliciting: Bool
        let frames: [SentFrame]
    }

    enum SentFrame {
        case stream(id: UInt64, offset: UInt64, length: Int, fin: Bool)
        case maxData, maxStreamData(UInt64), reset(UInt64, code: UInt64, finalSize: UInt64), ping
    }

    final class Stream {
        let id: UInt64
        var send: SendStream
        var recv: RecvStream
        var wantsWritable = false
        init(id: UInt64, peerMaxData: UInt64, window: UInt64) {
            self.id = id
            send = SendStream(peerMaxData: peerMaxData)
            recv = RecvStream(window: window)
        }
    }

    public let isClient: Bool
    public let config: TransportConfig
    public private(set) var rtt = RTTEstimator()
    public private(set) var congestion: NewReno
    public private(set) var isClosed = false
    public private(set) var stats = Stats()

    public struct Stats: Sendable {
        public var packetsSent = 0, packetsReceived = 0, packetsLost = 0, duplicatePackets = 0
        public var bytesSent = 0, streamBytesDelivered = 0, ptoCount = 0, spuriousLosses = 0
    }

    // Sending state.
    private var nextPacketNumber: UInt64 = 0
    private var sent: [SentPacket?] = []
    private var sentBase: UInt64 = 0
    private var largestAcked: UInt64?
    private var lossTime: Instant?
    private var ptoBackoff = 0
    private var lastAckElicitingSent: Instant?
    private var lastProgress: Instant
    private var probesDue = 0
    /// Reordering tolerance, raised when a packet declared lost is acknowledged after all
    /// (RFC 9002 section 6.1 allows adapting both thresholds).
    private(set) var packetThreshold: UInt64 = 3
    private(set) var timeThresholdEighths: Int64 = 9
    /// Numbers of packets declared lost recently, ascending, to recognise spurious losses.
    private var declaredLost: [UInt64] = []
    /// The window before the last reduction, and the packets whose loss caused it: if every one
    /// of them is acknowledged after all, the reduction was spurious and is undone.
    private var undo: (window: Int, threshold: Int, pending: Set<UInt64>)?
    private var pacingTokens: Double
    private var pacingUpdated: Instant

    // Receiving state.
    private var lastHeard: Instant
    private var received = RangeSet()
    private var largestReceivedAt: Instant?
    private var ackElicitingSinceAck = 0
    private var ackDeadline: Instant?

    // Streams and flow control.
    private var streams: [UInt64: Stream] = [:]
    private var order: [UInt64] = []
    private var roundRobin = 0
    private var nextLocalStream: UInt64
    private var nextPeerStream: UInt64
    private var peerMaxData: UInt64
    private var sentNewBytes: UInt64 = 0
    private var maxData: UInt64
    private var receivedBytes: UInt64 = 0
    private var deliveredBytes: UInt64 = 0
    private var pendingControl: [Frame] = []
    private var closeFrame: Frame?
    private var events: [TransportEvent] = []

    public init(isClient: Bool, config: TransportConfig = TransportConfig(), now: Instant) {
        self.isClient = isClient
        self.config = config
        congestion = NewReno(maxDatagramSize: config.maxPacketSize)
        nextLocalStream = isClient ? 0 : 1
        nextPeerStream = isClient ? 1 : 0
        // Both sides use the same configuration, so the initial credit the peer gives us is ours.
        peerMaxData = config.connectionWindow
        maxData = config.connectionWindow
        lastProgress = now
        lastHeard = now
        pacingTokens = Double(NewReno.initialWindow(config.maxPacketSize))
        pacingUpdated = now
    }

    // MARK: Application interface

    /// Opens a stream of our own.
    public func openStream() -> UInt64 {
        let id = nextLocalStream
        nextLocalStream += 2
        addStream(id)
        return id
    }

    /// Queues bytes on a stream; returns how many were accepted (the rest waits for
    /// `streamWritable`). `fin` ends our side once everything accepted has been written.
    @discardableResult
    public func write(_ bytes: [UInt8], to id: UInt64, fin: Bool = false) -> Int {
        guard !isClosed, let s = streams[id], !s.send.finWritten, !s.send.reset else { return 0 }
        let room = max(0, config.sendBufferLimit - s.send.buffered)
        let n = min(room, bytes.count)
        s.send.write(bytes[..<n])
        if n < bytes.count { s.wantsWritable = true } else if fin { s.send.finWritten = true }
        return n
    }

    /// How many bytes `write` would accept now.
    public func writableBytes(_ id: UInt64) -> Int {
        guard let s = streams[id], !s.send.finWritten else { return 0 }
        return max(0, config.sendBufferLimit - s.send.buffered)
    }

    /// Bytes held for all streams: written and unacknowledged, and received out of order.
    public var bufferedBytesTotal: (send: Int, receive: Int) {
        streams.values.reduce((0, 0)) { ($0.0 + $1.send.buffered, $0.1 + $1.recv.buffered) }
    }

    /// Sends a PING (it elicits an acknowledgement, which tells the peer we exist).
    public func sendPing() {
        guard !isClosed else { return }
        pendingControl.append(.ping)
    }

    /// Bytes written to a stream and not yet acknowledged by the peer.
    public func bufferedBytes(_ id: UInt64) -> Int { streams[id]?.send.buffered ?? 0 }

    /// Abandons a stream in both directions (e.g. the user cancelled).
    public func reset(_ id: UInt64, code: TransportErrorCode = .cancelled) {
        guard let s = streams[id], !s.send.reset else { return }
        s.send.reset = true
        pendingControl.append(.resetStream(id: id, errorCode: code.rawValue, finalSize: s.send.written))
        s.recv.reset = true
        collect(s)
    }

    public func close(reason: String) {
        guard !isClosed else { return }
        closeFrame = .connectionClose(errorCode: TransportErrorCode.noError.rawValue, reason: reason)
        finish("closed locally: \(reason)")
    }

    /// Events since the last call.
    public func takeEvents() -> [TransportEvent] {
        defer { events = [] }
        return events
    }

    public var openStreams: Int { streams.count }
    public var bytesInFlight: Int { congestion.bytesInFlight }

    /// One line per stream, for diagnosing a stalled transfer in tests.
    var streamDiagnostics: [String] {
        streams.keys.sorted().map { id in
            let s = streams[id]!
            return "stream \(id): \(s.send.debugDescription) | recv delivered \(s.recv.delivered) max \(s.recv.maxData) buffered \(s.recv.buffered); conn sentNew \(sentNewBytes)/\(peerMaxData) recv \(receivedBytes)/\(maxData)"
        }
    }

    // MARK: Input

    public func receive(_ packet: [UInt8], now: Instant) {
        guard !isClosed else { return }
        var r = FrameReader(packet)
        guard let pn = r.u64(), !r.atEnd else { return }
        if received.contains(pn) || (received.lowest.map { pn < $0 } ?? false) && received.count >= config.maxAckRanges {
            stats.duplicatePackets += 1
            return
        }
        var frames: [Frame] = []
        while !r.atEnd {
            guard let f = Frame.decode(&r, maxAckRanges: config.maxAckRanges) else {
                return violation(.frameEncodingError, "malformed frame")
            }
            frames.append(f)
        }
        stats.packetsReceived += 1
        lastHeard = now
        received.insert(pn)
        received.keepHighest(config.maxAckRanges)
        let outOfOrder = received.highest != pn
        if received.highest == pn { largestReceivedAt = now }
        var eliciting = false
        for f in frames {
            if f.isAckEliciting { eliciting = true }
            handle(f, now: now)
            if isClosed { return }
        }
        if eliciting {
            ackElicitingSinceAck += 1
            if ackElicitingSinceAck >= 2 || outOfOrder { ackDeadline = now } else if ackDeadline == nil { ackDeadline = now + config.maxAckDelay }
        }
    }

    private func handle(_ frame: Frame, now: Instant) {
        switch frame {
        case .ping:
            break
        case .ack(let ranges, let delay):
            onAck(ranges: ranges, ackDelay: .microseconds(Int64(clamping: delay)), now: now)
        case .stream(let id, let offset, let data, let fin):
            guard let s = peerStream(id) else { return }
            var out: [UInt8] = []
            var growth: UInt64 = 0
            switch s.recv.receive(offset: offset, data: data, fin: fin, out: &out, connectionGrowth: &growth) {
            case .flowControlViolation: return violation(.flowControlError, "stream \(id) data past its credit")
            case .finalSizeViolation: return violation(.finalSizeError, "stream \(id) final size changed")
            case .ok: break
            }
            receivedBytes += growth
            if receivedBytes > maxData { return violation(.flowControlError, "connection data past its credit") }
            if !out.isEmpty && s.recv.reset {
                deliveredBytes += UInt64(out.count)   // a stream we abandoned: count it, drop it
            } else if !out.isEmpty {
                deliveredBytes += UInt64(out.count)
                stats.streamBytesDelivered += out.count
                events.append(.streamData(id, out))
                if let m = s.recv.creditUpdate() { pendingControl.append(.maxStreamData(id: id, max: m)) }
                if maxData - deliveredBytes < config.connectionWindow / 2 {
                    maxData = deliveredBytes + config.connectionWindow
                    pendingControl.append(.maxData(maxData))
                }
            }
            if !s.recv.reset, s.recv.takeFin() { events.append(.streamFinished(id)) }
            collect(s)
        case .resetStream(let id, let code, _):
            guard let s = peerStream(id) else { return }
            if !s.recv.reset {
                s.recv.reset = true
                events.append(.streamReset(id, code: code))
            }
            if !s.send.reset {
                s.send.reset = true
            }
            collect(s)
        case .maxData(let m):
            peerMaxData = max(peerMaxData, m)
        case .maxStreamData(let id, let m):
            if let s = peerStream(id) { s.send.peerMaxData = max(s.send.peerMaxData, m) }
        case .connectionClose(_, let reason):
            finish("closed by the peer: \(reason)")
        }
    }

    /// The stream a frame refers to: existing, newly opened by the peer, or nil for a stream
    /// that is already closed (late retransmissions are ignored).
    private func peerStream(_ id: UInt64) -> Stream? {
        if let s = streams[id] { return s }
        let peerInitiated = (id & 1 == 1) == isClient
        guard peerInitiated, id >= nextPeerStream else { return nil }
        // Open every peer stream up to this one: frames may arrive out of order.
        let opening = (id - nextPeerStream) / 2 + 1
        guard streams.count + Int(min(opening, 1 << 20)) <= config.maxPeerStreams + Int(nextLocalStream / 2) else {
            violation(.streamLimitError, "too many streams")
            return nil
        }
        var next = nextPeerStream
        while next <= id {
            addStream(next)
            events.append(.streamOpened(next))
            next += 2
        }
        nextPeerStream = next
        return streams[id]
    }

    private func addStream(_ id: UInt64) {
        streams[id] = Stream(id: id, peerMaxData: config.streamWindow, window: config.streamWindow)
        order.append(id)
    }

    /// Forgets a stream once both halves are done.
    private func collect(_ s: Stream) {
        guard s.send.isDone || (s.send.finAcked && s.send.buffered == 0), s.recv.isDone else { return }
        guard s.send.reset || s.send.finAcked else { return }
        streams[s.id] = nil
        order.removeAll { $0 == s.id }
    }

    // MARK: Loss recovery (RFC 9002)

    private func onAck(ranges: [ClosedRange<UInt64>], ackDelay: Duration, now: Instant) {
        guard let largest = ranges.first?.upperBound else { return }
        guard largest < nextPacketNumber else { return violation(.protocolViolation, "acknowledgement of a packet never sent") }
        if largestAcked == nil || largest > largestAcked! { largestAcked = largest }
        var newlyAcked: [SentPacket] = []
        for r in ranges {
            let lower = max(r.lowerBound, sentBase)
            guard r.upperBound >= lower else { continue }
            var pn = lower
            while pn <= r.upperBound {
                let i = Int(pn - sentBase)
                if i < sent.count, let p = sent[i] {
                    newlyAcked.append(p)
                    sent[i] = nil
                }
                pn += 1
            }
        }
        detectSpuriousLosses(ranges)
        guard !newlyAcked.isEmpty else { return }
        if let newest = newlyAcked.max(by: { $0.number < $1.number }), newest.number == largest, newest.ackEliciting {
            rtt.update(sample: now - newest.sentAt, ackDelay: min(ackDelay, config.maxAckDelay))
        }
        for p in newlyAcked {
            if p.ackEliciting { congestion.onPacketAcked(bytes: p.size, sentAt: p.sentAt) }
            for f in p.frames {
                if case .stream(let id, let offset, let length, let fin) = f, let s = streams[id] {
                    s.send.onAcked(offset: offset, length: length, fin: fin)
                    if s.wantsWritable && s.send.buffered < config.sendBufferLimit {
                        s.wantsWritable = false
                        events.append(.streamWritable(id))
                    }
                    collect(s)
                }
            }
        }
        lastProgress = now
        ptoBackoff = 0
        detectLosses(now: now)
        trimSent()
    }

    /// A packet we declared lost was acknowledged: the network reordered, it did not drop.
    /// Tolerate that much reordering from now on, and undo the window reduction once every
    /// packet that caused it has turned up.
    private func detectSpuriousLosses(_ ranges: [ClosedRange<UInt64>]) {
        guard let first = declaredLost.first, let last = declaredLost.last else { return }
        var found: [Int] = []
        for r in ranges where r.upperBound >= first && r.lowerBound <= last {
            var lo = 0, hi = declaredLost.count
            while lo < hi { let m = (lo + hi) / 2; if declaredLost[m] < r.lowerBound { lo = m + 1 } else { hi = m } }
            while lo < declaredLost.count, declaredLost[lo] <= r.upperBound { found.append(lo); lo += 1 }
        }
        guard !found.isEmpty else { return }
        for i in Set(found).sorted(by: >) {
            let pn = declaredLost.remove(at: i)
            stats.spuriousLosses += 1
            if let largestAcked, largestAcked - pn + 1 > packetThreshold { packetThreshold = min(largestAcked - pn + 1, 32) }
            if undo?.pending.remove(pn) != nil, undo!.pending.isEmpty {
                congestion.undoReduction(window: undo!.window, threshold: undo!.threshold)
                undo = nil
            }
        }
        timeThresholdEighths = min(timeThresholdEighths + 2, 16)
    }

    private func detectLosses(now: Instant) {
        guard let largestAcked else { return }
        lossTime = nil
        let lossDelay = max(max(rtt.latest, rtt.smoothed) * timeThresholdEighths / 8, config.timerGranularity)
        var lost: [SentPacket] = []
        var i = 0
        while i < sent.count {
            let pn = sentBase + UInt64(i)
            if pn > largestAcked { break }
            if let p = sent[i] {
                if largestAcked >= pn + packetThreshold || p.sentAt <= now - lossDelay {
                    lost.append(p)
                    sent[i] = nil
                } else {
                    let t = p.sentAt + lossDelay
                    if lossTime == nil || t < lossTime! { lossTime = t }
                }
            }
            i += 1
        }
        guard !lost.isEmpty else { return }
        onLost(lost, now: now)
    }

    private func onLost(_ lost: [SentPacket], now: Instant) {
        stats.packetsLost += lost.count
        var bytes = 0
        var newest = lost[0].sentAt
        for p in lost {
            if p.ackEliciting { bytes += p.size }
            newest = max(newest, p.sentAt)
            for f in p.frames {
                switch f {
                case .stream(let id, let offset, let length, let fin):
                    streams[id]?.send.onLost(offset: offset, length: length, fin: fin)
                case .maxData:
                    pendingControl.append(.maxData(maxData))
                case .maxStreamData(let id):
                    if let s = streams[id] { pendingControl.append(.maxStreamData(id: id, max: s.recv.maxData)) }
                case .reset(let id, let code, let size):
                    pendingControl.append(.resetStream(id: id, errorCode: code, finalSize: size))
                case .ping:
                    break
                }
            }
        }
        // Persistent congestion: consecutive packets, none acknowledged between them, all lost
        // over more than three probe timeouts (RFC 9002 section 7.6).
        let span = rtt.pto(maxAckDelay: config.maxAckDelay, granularity: config.timerGranularity) * 3
        var persistent = false
        var runStart = lost[0]
        for (a, b) in zip(lost, lost.dropFirst()) {
            if b.number != a.number + 1 { runStart = b }
            if rtt.hasSample && b.sentAt - runStart.sentAt > span { persistent = true }
        }
        let before = (congestion.window, congestion.slowStartThreshold, congestion.recoveryStart)
        congestion.onPacketsLost(bytes: bytes, newestSentAt: newest, now: now, persistentCongestion: persistent)
        if persistent {
            undo = nil
        } else if congestion.recoveryStart != before.2 {
            undo = (before.0, before.1, Set(lost.map(\.number)))
        }
        let sorted = declaredLost.last.map { $0 < lost[0].number } ?? true
        for p in lost where p.ackEliciting { declaredLost.append(p.number) }
        if !sorted { declaredLost.sort() }
        if declaredLost.count > 512 { declaredLost.removeFirst(declaredLost.count - 512) }
    }

    private func trimSent() {
        var drop = 0
        while drop < sent.count, sent[drop] == nil { drop += 1 }
        if drop > 0 {
            sent.removeFirst(drop)
            sentBase += UInt64(drop)
        }
    }

    private var ptoDeadline: Instant? {
        guard congestion.bytesInFlight > 0, let last = lastAckElicitingSent else { return nil }
        let base = rtt.pto(maxAckDelay: config.maxAckDelay, granularity: config.timerGranularity)
        return last + base * (1 << min(ptoBackoff, 16))
    }

    // MARK: Timers

    public var nextWakeup: Instant? {
        guard !isClosed else { return nil }
        var t: Instant?
        func consider(_ x: Instant?) { if let x, t == nil || x < t! { t = x } }
        consider(ackDeadline)
        consider(lossTime ?? ptoDeadline)
        if congestion.bytesInFlight > 0 { consider(lastProgress + config.deadPeerTimeout) } else if needsLivenessProbe { consider(lastHeard + config.idleProbeInterval) }
        if hasDataToSend && congestion.available >= config.maxPacketSize { consider(nextPacingTime) }
        return t
    }

    public func tick(now: Instant) {
        guard !isClosed else { return }
        if congestion.bytesInFlight > 0, now - lastProgress >= config.deadPeerTimeout {
            finish("peer unresponsive: nothing acknowledged for \(Int(config.deadPeerTimeout.seconds)) s")
            return
        }
        if needsLivenessProbe, now - lastHeard >= config.idleProbeInterval, !pendingControl.contains(.ping) {
            // Waiting for the peer with nothing of ours in flight (a request being answered):
            // a PING puts something in flight, so a vanished peer is noticed.
            pendingControl.append(.ping)
            lastHeard = now
        }
        if let t = lossTime, now >= t {
            detectLosses(now: now)
            trimSent()
        } else if let t = ptoDeadline, now >= t {
            ptoBackoff += 1
            stats.ptoCount += 1
            probesDue = 2
            requeueOldestForProbe()
        }
    }

    /// On a probe timeout, send the oldest unacknowledged data again (or a PING).
    private func requeueOldestForProbe() {
        for case let p? in sent where p.ackEliciting {
            for f in p.frames {
                if case .stream(let id, let offset, let length, let fin) = f {
                    streams[id]?.send.onLost(offset: offset, length: length, fin: fin)
                }
            }
            return
        }
    }

    /// Streams are open but nothing of ours is in flight: only a probe would reveal a dead peer.
    private var needsLivenessProbe: Bool { !streams.isEmpty && congestion.bytesInFlight == 0 }

    // MARK: Output

    private var hasDataToSend: Bool {
        !pendingControl.isEmpty || streams.values.contains { s in
            s.send.hasRetransmission || (s.send.nextNew < min(s.send.written, s.send.peerMaxData) && sentNewBytes < peerMaxData)
                || (s.send.finWritten && !s.send.finSent)
        }
    }

    private var pacingRate: Double {
        // Bytes per second: 1.25 × window per smoothed RTT (RFC 9002 section 7.7).
        let srtt = max(rtt.smoothed.seconds, 0.000_1)
        return 1.25 * Double(congestion.window) / srtt
    }

    private var nextPacingTime: Instant? {
        let need = Double(config.maxPacketSize) - pacingTokens
        guard need > 0 else { return pacingUpdated }
        // Round up, and never less than a microsecond: a wake-up that truncates to "now" would
        // find the same tokens and spin.
        return pacingUpdated + .nanoseconds(max(1_000, Int64((need / pacingRate * 1e9).rounded(.up))))
    }

    private func refillPacing(now: Instant) {
        let burst = Double(10 * config.maxPacketSize)
        pacingTokens = min(burst, pacingTokens + (now - pacingUpdated).seconds * pacingRate)
        pacingUpdated = now
    }

    /// Packets to send now, within the congestion window and the pacing rate.
    public func poll(now: Instant) -> [[UInt8]] {
        var out: [[UInt8]] = []
        if let closeFrame {
            var p: [UInt8] = []
            p.reserveCapacity(64)
            appendPacketNumber(&p)
            closeFrame.encode(into: &p)
            self.closeFrame = nil
            return [p]
        }
        guard !isClosed else { return [] }
        refillPacing(now: now)
        while out.count < 256 {
            let probe = probesDue > 0
            let canSendData = probe || (congestion.available >= config.maxPacketSize && pacingTokens >= Double(config.maxPacketSize))
            let ackDue = ackDeadline.map { now >= $0 } ?? false
            // An ACK goes when due (two packets, out of order, or max_ack_delay), or early when it
            // can ride on data; never alone before it is due.
            let piggyback = canSendData && ackElicitingSinceAck > 0 && (probe || hasDataToSend)
            guard let packet = buildPacket(now: now, includeAck: ackDue || piggyback,
                                           allowData: canSendData, probe: probe) else { break }
            out.append(packet)
            if probe { probesDue -= 1 }
        }
        return out
    }

    private func appendPacketNumber(_ p: inout [UInt8]) {
        let pn = nextPacketNumber
        nextPacketNumber += 1
        for s in stride(from: 56, through: 0, by: -8) { p.append(UInt8(truncatingIfNeeded: pn >> UInt64(s))) }
    }

    private func buildPacket(now: Instant, includeAck: Bool, allowData: Bool, probe: Bool) -> [UInt8]? {
        var p: [UInt8] = []
        p.reserveCapacity(config.maxPacketSize)
        let number = nextPacketNumber
        appendPacketNumber(&p)
        var frames: [SentFrame] = []
        var eliciting = false
        if includeAck, let ack = ackFrame(now: now) {
            ack.encode(into: &p)
            ackElicitingSinceAck = 0
            ackDeadline = nil
        }
        if allowData {
            while let f = pendingControl.first, p.count + 32 <= config.maxPacketSize {
                pendingControl.removeFirst()
                f.encode(into: &p)
                eliciting = true
                switch f {
                case .maxData: frames.append(.maxData)
                case .maxStreamData(let id, _): frames.append(.maxStreamData(id))
                case .resetStream(let id, let code, let size): frames.append(.reset(id, code: code, finalSize: size))
                default: break
                }
            }
            fillStreams(&p, frames: &frames, eliciting: &eliciting)
            if probe && !eliciting {
                Frame.ping.encode(into: &p)
                frames.append(.ping)
                eliciting = true
            }
        }
        guard p.count > 8 else {
            nextPacketNumber -= 1   // nothing to say: the number was never used on the wire
            return nil
        }
        record(SentPacket(number: number, sentAt: now, size: p.count, ackEliciting: eliciting, frames: frames))
        return p
    }

    /// Fills the packet from the streams in turn, so a small request is not stuck behind a bulk
    /// transfer: each packet starts with the next stream in the rotation.
    private func fillStreams(_ p: inout [UInt8], frames: inout [SentFrame], eliciting: inout Bool) {
        guard !order.isEmpty else { return }
        var visited = 0
        while visited < order.count, p.count + 16 < config.maxPacketSize {
            roundRobin %= order.count
            let id = order[roundRobin]
            roundRobin += 1
            visited += 1
            guard let s = streams[id] else { continue }
            let room = config.maxPacketSize - p.count - Frame.streamOverhead(id: id, offset: s.send.nextNew, length: config.maxPacketSize)
            guard room > 0, let chunk = s.send.nextChunk(maxLength: room, newCredit: peerMaxData - min(sentNewBytes, peerMaxData)) else { continue }
            if chunk.isNew { sentNewBytes += UInt64(chunk.length) }
            Frame.stream(id: id, offset: chunk.offset, data: s.send.bytes(at: chunk.offset, length: chunk.length), fin: chunk.fin)
                .encode(into: &p)
            frames.append(.stream(id: id, offset: chunk.offset, length: chunk.length, fin: chunk.fin))
            eliciting = true
        }
    }

    private func ackFrame(now: Instant) -> Frame? {
        guard !received.isEmpty else { return nil }
        let delay = largestReceivedAt.map { now - $0 } ?? .zero
        return .ack(ranges: Array(received.ranges.reversed().prefix(config.maxAckRanges)),
                    ackDelay: UInt64(max(0, delay.nanoseconds / 1000)))
    }

    private func record(_ p: SentPacket) {
        stats.packetsSent += 1
        stats.bytesSent += p.size
        if sent.isEmpty { sentBase = p.number }
        // Packet numbers are consecutive, so the array index is the number minus the base.
        while sentBase + UInt64(sent.count) < p.number { sent.append(nil) }
        if p.ackEliciting {
            sent.append(p)
            congestion.onPacketSent(bytes: p.size)
            lastAckElicitingSent = p.sentAt
            pacingTokens -= Double(p.size)
            if congestion.bytesInFlight == p.size { lastProgress = p.sentAt }
        } else {
            sent.append(nil)
        }
        trimSent()
    }

    // MARK: Closing

    private func violation(_ code: TransportErrorCode, _ reason: String) {
        guard !isClosed else { return }
        closeFrame = .connectionClose(errorCode: code.rawValue, reason: reason)
        finish("protocol error: \(reason)")
    }

    private func finish(_ reason: String) {
        guard !isClosed else { return }
        isClosed = true
        events.append(.closed(reason: reason))
        sent = []
        streams = [:]
        order = []
        pendingControl = []
    }
}
