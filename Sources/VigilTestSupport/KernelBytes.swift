/// Builds the bytes the kernel returns from `read(2)` on an inotify descriptor, or from `recv(2)` on a
/// proc connector socket, so decoder tests can play the kernel (T1): records with NUL-padded names,
/// truncated buffers, overflow records; `nlmsghdr` + `cn_msg` + `proc_event` messages of every kind.
public struct KernelBytes {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Appends one `struct inotify_event` with `name` padded with NULs to a multiple of 16 bytes (as the
    /// kernel pads it; `pad: false` writes exactly one NUL).
    public mutating func inotify(wd: Int32, mask: UInt32, cookie: UInt32 = 0, name: String = "", pad: Bool = true) {
        var nameBytes = Array(name.utf8)
        if !nameBytes.isEmpty {
            nameBytes.append(0)
            if pad { while nameBytes.count % 16 != 0 { nameBytes.append(0) } }
        }
        append(UInt32(bitPattern: wd))
        append(mask)
        append(cookie)
        append(UInt32(nameBytes.count))
        bytes.append(contentsOf: nameBytes)
    }

    /// An `IN_Q_OVERFLOW` record (wd -1, no name).
    public mutating func overflow() {
        inotify(wd: -1, mask: 0x4000)
    }

    /// The first `count` bytes (a buffer cut inside a record).
    public func truncated(to count: Int) -> [UInt8] {
        Array(bytes.prefix(count))
    }

    // MARK: - Process events connector (linux/cn_proc.h)

    /// The wait status of a process that called `exit(code)`: `code << 8`.
    public static func waitStatus(exitCode: Int32) -> Int32 { (exitCode & 0xff) << 8 }

    /// The wait status of a process ended by `signal`, with the 0x80 bit when it dumped core.
    public static func waitStatus(signal: Int32, coreDumped: Bool = false) -> Int32 {
        (signal & 0x7f) | (coreDumped ? 0x80 : 0)
    }

    /// Appends one netlink message carrying a `cn_msg` with a `proc_event`, exactly as the kernel's
    /// `cn_netlink_send_mult` builds it: `nlmsghdr` of type `NLMSG_DONE` (3), `cn_msg` with id
    /// `CN_IDX_PROC`/`CN_VAL_PROC` and `len` 40, then `what`, `cpu`, `timestamp_ns` and `eventData`
    /// NUL-padded to the 24-byte union. `forged` changes headers to what the kernel never sends.
    public mutating func procEvent(
        what: UInt32,
        cpu: UInt32 = 0,
        timestamp: UInt64 = 0,
        eventData: [UInt8],
        sequence: UInt32 = 0,
        forging forged: ForgedHeaders = ForgedHeaders()
    ) {
        var event: [UInt8] = []
        append(what, to: &event)
        append(cpu, to: &event)
        append(timestamp, to: &event)
        event.append(contentsOf: eventData.prefix(24))
        while event.count < 40 { event.append(0) }
        var connector: [UInt8] = []
        append(forged.connectorIndex, to: &connector)
        append(forged.connectorValue, to: &connector)
        append(sequence, to: &connector)  // cn_msg.seq
        append(UInt32(0), to: &connector)  // cn_msg.ack
        append(forged.connectorDataLength ?? UInt16(event.count), to: &connector)
        append(UInt16(0), to: &connector)  // cn_msg.flags
        netlink(type: forged.messageType, payload: connector + event, sequence: sequence, length: forged.messageLength)
    }

    /// Appends one netlink message (`nlmsghdr` + `payload`, padded to 4 bytes). `length` overrides
    /// `nlmsg_len`.
    public mutating func netlink(type: UInt16, payload: [UInt8], sequence: UInt32 = 0, length: UInt32? = nil) {
        append(length ?? UInt32(16 + payload.count))
        append(type, to: &bytes)
        append(UInt16(0), to: &bytes)  // nlmsg_flags
        append(sequence)  // nlmsg_seq
        append(UInt32(0))  // nlmsg_pid: 0, the kernel
        bytes.append(contentsOf: payload)
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// `PROC_EVENT_FORK`: `parent` created `child` (a thread when the child's pid differs from its tgid).
    public mutating func procFork(
        parentPid: Int32,
        parentTgid: Int32,
        childPid: Int32,
        childTgid: Int32,
        cpu: UInt32 = 0,
        timestamp: UInt64 = 0
    ) {
        procEvent(
            what: 0x1,
            cpu: cpu,
            timestamp: timestamp,
            eventData: words(parentPid, parentTgid, childPid, childTgid)
        )
    }

    /// `PROC_EVENT_EXEC`.
    public mutating func procExec(
        pid: Int32,
        tgid: Int32,
        cpu: UInt32 = 0,
        timestamp: UInt64 = 0,
        forging forged: ForgedHeaders = ForgedHeaders()
    ) {
        procEvent(what: 0x2, cpu: cpu, timestamp: timestamp, eventData: words(pid, tgid), forging: forged)
    }

    /// `PROC_EVENT_EXIT` with `status` as the wait status (`exit.exit_code`, see `waitStatus`).
    public mutating func procExit(
        pid: Int32,
        tgid: Int32,
        status: Int32,
        exitSignal: Int32 = 17,
        parentPid: Int32 = 0,
        parentTgid: Int32 = 0,
        cpu: UInt32 = 0,
        timestamp: UInt64 = 0,
        forging forged: ForgedHeaders = ForgedHeaders()
    ) {
        procEvent(
            what: 0x8000_0000,
            cpu: cpu,
            timestamp: timestamp,
            eventData: words(pid, tgid, status, exitSignal, parentPid, parentTgid),
            forging: forged
        )
    }

    /// `PROC_EVENT_UID` (or `PROC_EVENT_GID` with `group: true`): new real and effective ids.
    public mutating func procId(pid: Int32, tgid: Int32, real: UInt32, effective: UInt32, group: Bool = false) {
        procEvent(
            what: group ? 0x40 : 0x4,
            eventData: words(pid, tgid, Int32(bitPattern: real), Int32(bitPattern: effective))
        )
    }

    /// `PROC_EVENT_SID`.
    public mutating func procSid(pid: Int32, tgid: Int32) {
        procEvent(what: 0x80, eventData: words(pid, tgid))
    }

    /// `PROC_EVENT_PTRACE`: `tracer` attached (0: detached).
    public mutating func procPtrace(pid: Int32, tgid: Int32, tracerPid: Int32, tracerTgid: Int32) {
        procEvent(what: 0x100, eventData: words(pid, tgid, tracerPid, tracerTgid))
    }

    /// `PROC_EVENT_COMM`: `comm` is cut to 15 bytes and NUL-padded to 16, as the kernel's `TASK_COMM_LEN`.
    public mutating func procComm(pid: Int32, tgid: Int32, comm: String) {
        var name = Array(comm.utf8.prefix(15))
        while name.count < 16 { name.append(0) }
        procEvent(what: 0x200, eventData: words(pid, tgid) + name)
    }

    /// `PROC_EVENT_COREDUMP`.
    public mutating func procCoredump(pid: Int32, tgid: Int32, parentPid: Int32, parentTgid: Int32) {
        procEvent(what: 0x4000_0000, eventData: words(pid, tgid, parentPid, parentTgid))
    }

    /// `PROC_EVENT_NONE`: the kernel's answer to a subscribe message, `ack.err` = `error`.
    public mutating func procAcknowledgement(error: UInt32 = 0) {
        procEvent(what: 0, eventData: words(Int32(bitPattern: error)))
    }

    /// `NLMSG_ERROR` with `struct nlmsgerr` (`error` is a negative errno).
    public mutating func netlinkError(_ error: Int32) {
        netlink(type: 2, payload: words(error) + [UInt8](repeating: 0, count: 16))
    }

    /// `NLMSG_NOOP` with no payload.
    public mutating func netlinkNoop() {
        netlink(type: 1, payload: [])
    }

    private func words(_ values: Int32...) -> [UInt8] {
        var out: [UInt8] = []
        for value in values { append(value, to: &out) }
        return out
    }

    /// Host byte order: netlink messages are host-endian.
    private func append<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value) { out.append(contentsOf: $0) }
    }

    private mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}

/// Header fields of a proc connector message that tests set to what the kernel never sends.
public struct ForgedHeaders: Sendable {
    /// `nlmsg_type` (the kernel sends `NLMSG_DONE`, 3).
    public var messageType: UInt16
    /// `cn_msg.id.idx` (`CN_IDX_PROC` is 1).
    public var connectorIndex: UInt32
    /// `cn_msg.id.val` (`CN_VAL_PROC` is 1).
    public var connectorValue: UInt32
    /// `cn_msg.len` (the kernel sends 40); nil: the true length.
    public var connectorDataLength: UInt16?
    /// `nlmsg_len`; nil: the true length.
    public var messageLength: UInt32?

    /// The kernel's headers, with the given fields changed.
    public init(
        messageType: UInt16 = 3,
        connectorIndex: UInt32 = 1,
        connectorValue: UInt32 = 1,
        connectorDataLength: UInt16? = nil,
        messageLength: UInt32? = nil
    ) {
        self.messageType = messageType
        self.connectorIndex = connectorIndex
        self.connectorValue = connectorValue
        self.connectorDataLength = connectorDataLength
        self.messageLength = messageLength
    }
}
