/// What happened to a process, as the kernel's process events connector reports it.
///
/// The corresponding C type is `enum what` inside `struct proc_event` (linux/cn_proc.h); the raw values of
/// this Swift enum are Vigil's own and compact, `init?(what:)` maps the kernel's bit values.
public enum ProcEventKind: UInt8, Sendable, BitwiseCopyable, CaseIterable {
    /// The kernel's answer to a subscribe or unsubscribe message; carries an errno in
    /// `ProcessEventRecord.acknowledgementError`. The corresponding C constant is `PROC_EVENT_NONE`.
    case acknowledgement = 0
    /// A new process or thread was created (`fork`, `vfork`, `clone`). The C constant is `PROC_EVENT_FORK`.
    case fork
    /// A process called `execve` successfully. The corresponding C constant is `PROC_EVENT_EXEC`.
    case exec
    /// A process changed its real or effective user id. The corresponding C constant is `PROC_EVENT_UID`.
    case uid
    /// A process changed its real or effective group id. The corresponding C constant is `PROC_EVENT_GID`.
    case gid
    /// A process started a new session (`setsid`). The corresponding C constant is `PROC_EVENT_SID`.
    case sid
    /// A tracer attached to or detached from a process. The corresponding C constant is `PROC_EVENT_PTRACE`.
    case ptrace
    /// A thread changed its `comm` name (`prctl(PR_SET_NAME)`, or a write to /proc/PID/comm).
    /// The corresponding C constant is `PROC_EVENT_COMM`.
    case comm
    /// A process started dumping core (sent before its exit). The C constant is `PROC_EVENT_COREDUMP`.
    case coredump
    /// A thread exited; a process ends with the exit of its last thread. The C constant is `PROC_EVENT_EXIT`.
    case exit

    /// The kernel's `proc_event.what` bit for each kind.
    @inline(__always)
    public var what: UInt32 {
        switch self {
        case .acknowledgement: 0x0000_0000
        case .fork: 0x0000_0001
        case .exec: 0x0000_0002
        case .uid: 0x0000_0004
        case .gid: 0x0000_0040
        case .sid: 0x0000_0080
        case .ptrace: 0x0000_0100
        case .comm: 0x0000_0200
        case .coredump: 0x4000_0000
        case .exit: 0x8000_0000
        }
    }

    /// The kind for a kernel `proc_event.what` value, or nil for a value this build does not know
    /// (a newer kernel may add kinds; the decoder skips them).
    @inline(__always)
    public init?(what: UInt32) {
        switch what {
        case 0x0000_0000: self = .acknowledgement
        case 0x0000_0001: self = .fork
        case 0x0000_0002: self = .exec
        case 0x0000_0004: self = .uid
        case 0x0000_0040: self = .gid
        case 0x0000_0080: self = .sid
        case 0x0000_0100: self = .ptrace
        case 0x0000_0200: self = .comm
        case 0x4000_0000: self = .coredump
        case 0x8000_0000: self = .exit
        default: return nil
        }
    }
}

/// One process event, decoded from the kernel's bytes, as the process source routes it (C3).
///
/// A plain 80-byte record: no `String`, no class, so it travels through an `SPSCRing` and the socket
/// buffer it came from can be reused at once. Which fields are filled depends on `kind`; the others are 0.
///
/// | kind | pid/tgid | parentPid/parentTgid | other |
/// |---|---|---|---|
/// | fork | the new task | the creating process's parent for a thread (see below), else the creator | childPid/childTgid = pid/tgid |
/// | exec, sid | the process | 0 | |
/// | uid, gid | the process | 0 | realId, effectiveId |
/// | ptrace | the tracee | the tracer (0 on detach) | |
/// | comm | the thread | 0 | comm |
/// | coredump | the process | its parent | |
/// | exit | the thread | its parent (0 for a non-leader thread) | rawExitStatus, exitSignal |
///
/// Kernel behaviour measured on 6.18: for a new *thread* the fork event's parent is the `real_parent` of the
/// thread group (the process's own parent), not the thread that called `clone`; `exit.parent_pid` is filled
/// for a group leader and 0 for other threads; `timestamp_ns` is `CLOCK_MONOTONIC` (`ktime_get_ns()`), the
/// same clock as `readTime`. See linux/cn_proc.h and drivers/connector/cn_proc.c.
public struct ProcessEventRecord: BitwiseCopyable, Sendable {
    /// When the kernel generated the event, in `CLOCK_MONOTONIC` nanoseconds (despite the header's
    /// "since system boot", it is `ktime_get_ns()`, which stops during suspend).
    /// The corresponding C field is `proc_event.timestamp_ns`.
    public var timestamp: UInt64
    /// `CLOCK_MONOTONIC` nanoseconds when the source read the datagram from the socket.
    public var readTime: UInt64
    /// What happened. The corresponding C field is `proc_event.what`.
    public var kind: ProcEventKind
    /// The CPU the event was generated on. The corresponding C field is `proc_event.cpu`.
    public var cpu: UInt32
    /// The thread the event is about: the kernel's `task->pid`, which is the thread id (`gettid()`).
    /// The corresponding C field is `process_pid` (`child_pid` for fork).
    public var pid: Int32
    /// The thread group (what user space calls the process id). The corresponding C field is
    /// `process_tgid` (`child_tgid` for fork).
    public var tgid: Int32
    /// Fork, exit, coredump: the parent's thread id; ptrace: the tracer's. The corresponding C fields are
    /// `fork.parent_pid`, `exit.parent_pid`, `coredump.parent_pid`, `ptrace.tracer_pid`.
    public var parentPid: Int32
    /// Fork, exit, coredump: the parent process; ptrace: the tracer process. The corresponding C fields are
    /// `fork.parent_tgid`, `exit.parent_tgid`, `coredump.parent_tgid`, `ptrace.tracer_tgid`.
    public var parentTgid: Int32
    /// Fork: the new thread's id (equal to `pid`). The corresponding C field is `fork.child_pid`.
    public var childPid: Int32
    /// Fork: the new task's thread group (equal to `tgid`). The corresponding C field is `fork.child_tgid`.
    public var childTgid: Int32
    /// Exit: the wait status the parent's `waitpid` sees (exit code << 8, or the signal, | 0x80 for a core).
    /// Acknowledgement: the errno of the subscription (`ack.err`). The corresponding C field is
    /// `exit.exit_code`, which holds the whole wait status, not only the code.
    public var rawExitStatus: Int32
    /// Exit: the signal the kernel sends the parent (`SIGCHLD` normally, -1 for a thread), not the signal
    /// that killed the process (see `terminatingSignal`). The corresponding C field is `exit.exit_signal`.
    public var exitSignal: Int32
    /// Uid or gid events: the new real id. The corresponding C field is `id.r.ruid` / `id.r.rgid`.
    public var realId: UInt32
    /// Uid or gid events: the new effective id. The corresponding C field is `id.e.euid` / `id.e.egid`.
    public var effectiveId: UInt32
    /// Comm events: the new name, NUL-padded, at most 15 bytes. The corresponding C field is `comm.comm`.
    public var comm: InlineArray<16, UInt8>

    /// A record of `kind` with every other field 0.
    @inline(__always)
    public init(kind: ProcEventKind, cpu: UInt32 = 0, timestamp: UInt64 = 0, readTime: UInt64 = 0) {
        self.timestamp = timestamp
        self.readTime = readTime
        self.kind = kind
        self.cpu = cpu
        pid = 0
        tgid = 0
        parentPid = 0
        parentTgid = 0
        childPid = 0
        childTgid = 0
        rawExitStatus = 0
        exitSignal = 0
        realId = 0
        effectiveId = 0
        comm = InlineArray(repeating: 0)
    }

    /// Whether the event is about a thread other than a process's main thread (`pid != tgid`): a new thread
    /// for fork, a thread ending for exit.
    @inline(__always)
    public var isThread: Bool { pid != tgid }

    /// Exit: the code passed to `exit()` when the process ended normally (`WIFEXITED` → `WEXITSTATUS`);
    /// nil when a signal ended it, and for every other kind.
    @inline(__always)
    public var exitCode: Int32? {
        kind == .exit ? WaitStatus(rawExitStatus).exitCode : nil
    }

    /// Exit: the signal that ended the process (`WIFSIGNALED` → `WTERMSIG`); nil when it exited normally,
    /// and for every other kind.
    @inline(__always)
    public var terminatingSignal: Int32? {
        kind == .exit ? WaitStatus(rawExitStatus).terminatingSignal : nil
    }

    /// Exit: whether the process dumped core (`WCOREDUMP`, the 0x80 bit of the wait status).
    @inline(__always)
    public var coreDumped: Bool {
        kind == .exit && WaitStatus(rawExitStatus).coreDumped
    }

    /// Ptrace: the tracer thread, 0 when a tracer detached. Stored in `parentPid`.
    @inline(__always)
    public var tracerPid: Int32 { kind == .ptrace ? parentPid : 0 }

    /// Ptrace: the tracer process, 0 when a tracer detached. Stored in `parentTgid`.
    @inline(__always)
    public var tracerTgid: Int32 { kind == .ptrace ? parentTgid : 0 }

    /// Acknowledgement: the errno the kernel reported for a subscribe or unsubscribe message (0: accepted).
    /// The corresponding C field is `ack.err`. Stored in `rawExitStatus`.
    @inline(__always)
    public var acknowledgementError: UInt32 { kind == .acknowledgement ? UInt32(bitPattern: rawExitStatus) : 0 }

    /// The number of bytes of `comm` before its NUL.
    @inline(__always)
    public var commLength: Int {
        var length = 0
        while length < 16 && comm[length] != 0 { length += 1 }
        return length
    }

    /// Calls `body` with the comm bytes, without the NUL padding.
    @inline(__always)
    public func withComm<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        let length = commLength
        return withUnsafeBytes(of: comm) { raw in body(UnsafeRawBufferPointer(rebasing: raw[0..<length])) }
    }

    /// The comm name as a `String` (allocates: for logs and alerts, not the hot path).
    public var commString: String {
        withComm { String(decoding: $0, as: UTF8.self) }
    }
}
