/// Decodes the datagrams `recv(2)` returns from a `NETLINK_CONNECTOR` socket subscribed to `CN_IDX_PROC`
/// into `ProcessEventRecord`s.
///
/// A datagram holds one or more netlink messages, each `struct nlmsghdr` (16 bytes) + `struct cn_msg`
/// (20 bytes) + `struct proc_event` (40 bytes); see `man 7 netlink`, linux/connector.h, linux/cn_proc.h.
/// VigilCore cannot import the C shim, so the decoder reads fields at fixed byte offsets, in host byte
/// order (netlink is host-endian). Every offset below is pinned by a `_Static_assert` in
/// `Sources/CVigilLinux/shims.c`: a kernel header that moved one is a build error, not a wrong alert.
/// The `proc_event` follows 36 bytes of headers, so its 8-byte timestamp is not 8-aligned: every read
/// is `loadUnaligned`.
///
/// Hot path: no allocation, no throwing, no `String`. Every length is checked, so a truncated or corrupt
/// datagram ends decoding instead of reading past it, and is counted.
public enum ProcEventDecoder {
    /// `NLMSG_HDRLEN`: the netlink header.
    public static let netlinkHeaderSize = 16
    /// `sizeof(struct cn_msg)`: the connector header.
    public static let connectorHeaderSize = 20
    /// `sizeof(struct proc_event)`: what the kernel sends (`cn_msg.len`) for every event.
    public static let procEventSize = 40
    /// One whole event message: 16 + 20 + 40 bytes.
    public static let messageSize = netlinkHeaderSize + connectorHeaderSize + procEventSize

    /// `NLMSG_NOOP`: a message to skip.
    static let messageNoop: UInt16 = 1
    /// `NLMSG_ERROR`: a `struct nlmsgerr` reply.
    static let messageError: UInt16 = 2
    /// `NLMSG_DONE`. The connector sends *every* event as one `NLMSG_DONE` message (the kernel's
    /// `cn_netlink_send_mult` uses that type), so here it carries data rather than ending a dump.
    static let messageDone: UInt16 = 3
    /// `NLMSG_OVERRUN`: defined by the kernel headers, never sent.
    static let messageOverrun: UInt16 = 4
    /// `CN_IDX_PROC` and `CN_VAL_PROC`: the connector id of process events.
    static let connectorProcIndex: UInt32 = 1
    static let connectorProcValue: UInt32 = 1

    /// What one `decode` call found, for the source's counters.
    public struct DecodeOutcome: Sendable, Equatable {
        /// Records passed to `body` (acknowledgements included).
        public var events: Int
        /// Messages that could not be read: a netlink or connector length that runs past the datagram (a
        /// truncated read) or is too short for its header or its event kind. Decoding stops at a bad
        /// netlink length, since the next message cannot be found.
        public var malformed: Int
        /// Well-formed messages that are not process events: `NLMSG_NOOP`, another connector id, or a
        /// `proc_event.what` this build does not know.
        public var ignored: Int
        /// `NLMSG_ERROR` messages (the connector sends none unless asked for acknowledgements).
        public var errors: Int

        /// An outcome with the given counts.
        public init(events: Int = 0, malformed: Int = 0, ignored: Int = 0, errors: Int = 0) {
            self.events = events
            self.malformed = malformed
            self.ignored = ignored
            self.errors = errors
        }
    }

    /// Calls `body` for each process event in `datagram`, in order, and returns the counts.
    ///
    /// - Parameters:
    ///   - datagram: the bytes one `recv` returned (pass exactly the received length).
    ///   - readTime: `CLOCK_MONOTONIC` nanoseconds when the datagram was read; copied into every record.
    @inline(__always)
    public static func decode(
        _ datagram: UnsafeRawBufferPointer,
        readTime: UInt64,
        _ body: (ProcessEventRecord) -> Void
    ) -> DecodeOutcome {
        var outcome = DecodeOutcome()
        var offset = 0
        let total = datagram.count
        // NLMSG_OK: a whole header fits, and the message's own length covers the header and fits.
        while total - offset >= netlinkHeaderSize {
            let length = Int(datagram.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let type = datagram.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
            guard length >= netlinkHeaderSize, length <= total - offset else {
                outcome.malformed += 1
                return outcome
            }
            let payload = offset + netlinkHeaderSize
            let payloadLength = length - netlinkHeaderSize
            switch type {
            case messageNoop, messageOverrun:
                outcome.ignored += 1
            case messageError:
                outcome.errors += 1
            default:
                decodeConnector(datagram, at: payload, length: payloadLength, readTime: readTime, &outcome, body)
            }
            // NLMSG_NEXT: messages start on 4-byte boundaries.
            offset += (length + 3) & ~3
        }
        if offset < total {
            outcome.malformed += 1  // bytes left over that cannot hold a netlink header
        }
        return outcome
    }

    /// Decodes one `cn_msg` + `proc_event` payload of `length` bytes at `start`.
    @inline(__always)
    static func decodeConnector(
        _ datagram: UnsafeRawBufferPointer,
        at start: Int,
        length: Int,
        readTime: UInt64,
        _ outcome: inout DecodeOutcome,
        _ body: (ProcessEventRecord) -> Void
    ) {
        guard length >= connectorHeaderSize else {
            outcome.malformed += 1
            return
        }
        let index = datagram.loadUnaligned(fromByteOffset: start, as: UInt32.self)  // cn_msg.id.idx
        let value = datagram.loadUnaligned(fromByteOffset: start + 4, as: UInt32.self)  // cn_msg.id.val
        guard index == connectorProcIndex, value == connectorProcValue else {
            outcome.ignored += 1
            return
        }
        let dataLength = Int(datagram.loadUnaligned(fromByteOffset: start + 16, as: UInt16.self))  // cn_msg.len
        guard dataLength <= length - connectorHeaderSize, dataLength >= 16 else {
            outcome.malformed += 1
            return
        }
        let event = start + connectorHeaderSize
        let what = datagram.loadUnaligned(fromByteOffset: event, as: UInt32.self)
        guard let kind = ProcEventKind(what: what) else {
            outcome.ignored += 1
            return
        }
        guard dataLength >= 16 + payloadSize(kind) else {
            outcome.malformed += 1
            return
        }
        var record = ProcessEventRecord(
            kind: kind,
            cpu: datagram.loadUnaligned(fromByteOffset: event + 4, as: UInt32.self),
            timestamp: datagram.loadUnaligned(fromByteOffset: event + 8, as: UInt64.self),
            readTime: readTime
        )
        let data = event + 16  // proc_event.event_data
        @inline(__always) func int32(_ at: Int) -> Int32 {
            datagram.loadUnaligned(fromByteOffset: data + at, as: Int32.self)
        }
        @inline(__always) func uint32(_ at: Int) -> UInt32 {
            datagram.loadUnaligned(fromByteOffset: data + at, as: UInt32.self)
        }
        switch kind {
        case .acknowledgement:
            record.rawExitStatus = int32(0)  // ack.err
        case .fork:
            record.parentPid = int32(0)
            record.parentTgid = int32(4)
            record.childPid = int32(8)
            record.childTgid = int32(12)
            record.pid = record.childPid
            record.tgid = record.childTgid
        case .exec, .sid:
            record.pid = int32(0)
            record.tgid = int32(4)
        case .uid, .gid:
            record.pid = int32(0)
            record.tgid = int32(4)
            record.realId = uint32(8)
            record.effectiveId = uint32(12)
        case .ptrace:
            record.pid = int32(0)
            record.tgid = int32(4)
            record.parentPid = int32(8)  // tracer_pid
            record.parentTgid = int32(12)  // tracer_tgid
        case .comm:
            record.pid = int32(0)
            record.tgid = int32(4)
            for i in 0..<16 { record.comm[i] = datagram[data + 8 + i] }
            record.comm[15] = 0  // the kernel always terminates it; a forged one must not run on
        case .coredump:
            record.pid = int32(0)
            record.tgid = int32(4)
            record.parentPid = int32(8)
            record.parentTgid = int32(12)
        case .exit:
            record.pid = int32(0)
            record.tgid = int32(4)
            record.rawExitStatus = int32(8)
            record.exitSignal = int32(12)
            record.parentPid = int32(16)
            record.parentTgid = int32(20)
        }
        outcome.events += 1
        body(record)
    }

    /// The bytes of `event_data` each kind needs (its member of the union).
    @inline(__always)
    static func payloadSize(_ kind: ProcEventKind) -> Int {
        switch kind {
        case .acknowledgement: 4
        case .exec, .sid: 8
        case .fork, .uid, .gid, .ptrace, .coredump: 16
        case .comm, .exit: 24
        }
    }
}
