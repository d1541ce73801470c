import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A set of Linux capabilities, one bit per capability number (`CAP_CHOWN` is bit 0). See
/// `man 7 capabilities`.
public struct CapabilitySet: OptionSet, Hashable, Sendable, CustomStringConvertible {
    /// Bit `n` is capability number `n`.
    public let rawValue: UInt64

    /// The set with these bits.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// The set holding capability `number` (0...63); empty for a number outside that range.
    public init(number: Int) {
        rawValue = (0..<64).contains(number) ? UInt64(1) << UInt64(number) : 0
    }

    /// The set of the named capabilities, e.g. `["CAP_NET_ADMIN", "cap_kill", "sys_ptrace"]`; nil when a
    /// name is unknown.
    public init?(names: some Sequence<String>) {
        var bits: UInt64 = 0
        for name in names {
            guard let number = Self.number(named: name) else { return nil }
            bits |= UInt64(1) << UInt64(number)
        }
        rawValue = bits
    }

    /// `CAP_CHOWN`: change file owners (owner rules).
    public static let chown = CapabilitySet(number: 0)
    /// `CAP_DAC_OVERRIDE`: write files regardless of their mode (sanitize, rotate).
    public static let dacOverride = CapabilitySet(number: 1)
    /// `CAP_DAC_READ_SEARCH`: read any file and search any directory (logs, configs).
    public static let dacReadSearch = CapabilitySet(number: 2)
    /// `CAP_FOWNER`: change the mode of files owned by others (mode rules).
    public static let fowner = CapabilitySet(number: 3)
    /// `CAP_KILL`: signal processes of other users (reload, restart).
    public static let kill = CapabilitySet(number: 5)
    /// `CAP_SETPCAP`: drop capabilities from the bounding set.
    public static let setpcap = CapabilitySet(number: 8)
    /// `CAP_NET_ADMIN`: bind the proc connector before Linux 6.6; `SO_RCVBUFFORCE` always.
    public static let netAdmin = CapabilitySet(number: 12)
    /// `CAP_SYS_PTRACE`: read other users' `/proc/PID/exe` and `fd`.
    public static let sysPtrace = CapabilitySet(number: 19)
    /// `CAP_SYS_ADMIN`: among much else, entering or creating namespaces.
    public static let sysAdmin = CapabilitySet(number: 21)
    /// `CAP_SYS_RESOURCE`: PSI triggers on older kernels or with windows not a multiple of 2 s.
    public static let sysResource = CapabilitySet(number: 24)
    /// `CAP_LEASE`: read leases on files owned by others (whole-file config reads).
    public static let lease = CapabilitySet(number: 28)

    /// The names of capabilities 0...40, as in linux/capability.h (Linux 5.9 to at least 6.18).
    static let knownNames: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ]

    /// The name of capability `number`, e.g. `CAP_NET_ADMIN`; `CAP_41` for one newer than this table.
    public static func name(of number: Int) -> String {
        knownNames.indices.contains(number) ? knownNames[number] : "CAP_\(number)"
    }

    /// The number of a capability named `CAP_NET_ADMIN`, `cap_net_admin` or `net_admin`; nil when unknown.
    public static func number(named name: String) -> Int? {
        var upper = name.uppercased()
        if !upper.hasPrefix("CAP_") { upper = "CAP_" + upper }
        if let index = knownNames.firstIndex(of: upper) { return index }
        if let number = Int(upper.dropFirst(4)), (0..<64).contains(number) { return number }
        return nil
    }

    /// The capability numbers in the set, ascending.
    public var numbers: [Int] { (0..<64).filter { rawValue & (UInt64(1) << UInt64($0)) != 0 } }

    /// The names in the set, ascending by number, e.g. `["CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"]`.
    public var names: [String] { numbers.map(Self.name(of:)) }

    /// The names separated by commas, or `none`.
    public var description: String { isEmpty ? "none" : names.joined(separator: ",") }

    /// Whether every capability of `other` is in the set.
    public func has(_ other: CapabilitySet) -> Bool { isSuperset(of: other) }
}

/// The calling thread's capability sets, read and reduced through libcap (`-lcap`). Capabilities belong to
/// threads: a thread's sets are copied to the threads it creates and to the programs it runs, so reduce
/// them on the main thread before starting others. See `man 7 capabilities`, `man 3 cap_get_proc`.
public enum Capabilities {
    /// The five sets of one thread.
    public struct State: Sendable, Equatable, CustomStringConvertible {
        /// What the kernel checks now. The `/proc/PID/status` line is `CapEff`.
        public var effective: CapabilitySet
        /// What the thread may raise into its effective set. `CapPrm`.
        public var permitted: CapabilitySet
        /// What survives `execve` into a program's permitted set when the file has them too. `CapInh`.
        public var inheritable: CapabilitySet
        /// The ceiling for any program run from here. `CapBnd`.
        public var bounding: CapabilitySet
        /// What survives `execve` into any non-setuid program. `CapAmb`.
        public var ambient: CapabilitySet

        /// Whether every capability of `set` is effective.
        public func has(_ set: CapabilitySet) -> Bool { effective.has(set) }

        /// One line per set, like `/proc/PID/status`.
        public var description: String {
            "effective=\(effective) permitted=\(permitted) inheritable=\(inheritable) bounding=\(bounding) "
                + "ambient=\(ambient)"
        }
    }

    /// The capabilities the running kernel knows: numbers 0 up to `/proc/sys/kernel/cap_last_cap`
    /// (libcap's `cap_max_bits()`).
    public static var supported: CapabilitySet {
        let bits = Int(cap_max_bits())
        return bits >= 64
            ? CapabilitySet(rawValue: .max) : CapabilitySet(rawValue: (UInt64(1) << UInt64(max(bits, 0))) - 1)
    }

    /// The calling thread's sets: `cap_get_proc(3)` for effective, permitted and inheritable,
    /// `cap_get_bound(3)` (`PR_CAPBSET_READ`) and `cap_get_ambient(3)` (`PR_CAP_AMBIENT_IS_SET`) per number.
    @inline(never)
    public static func current() -> State {
        var state = State(effective: [], permitted: [], inheritable: [], bounding: [], ambient: [])
        let numbers = supported.numbers
        if let caps = cap_get_proc() {
            defer { cap_free(UnsafeMutableRawPointer(caps)) }
            for number in numbers {
                let value = cap_value_t(number)
                if flag(caps, value, CAP_EFFECTIVE) { state.effective.insert(CapabilitySet(number: number)) }
                if flag(caps, value, CAP_PERMITTED) { state.permitted.insert(CapabilitySet(number: number)) }
                if flag(caps, value, CAP_INHERITABLE) { state.inheritable.insert(CapabilitySet(number: number)) }
            }
        }
        for number in numbers {
            if cap_get_bound(cap_value_t(number)) == 1 { state.bounding.insert(CapabilitySet(number: number)) }
            if cap_get_ambient(cap_value_t(number)) == 1 { state.ambient.insert(CapabilitySet(number: number)) }
        }
        return state
    }

    /// Whether every capability of `set` is in the calling thread's effective set.
    public static func has(_ set: CapabilitySet) -> Bool { current().has(set) }

    /// Reduces the calling thread to `keep`: effective = permitted = `keep` ∩ permitted; inheritable and
    /// ambient cleared; when `dropBounding` and `CAP_SETPCAP` is effective, everything else is also dropped from the bounding set
    /// (best effort: a failure there leaves the bounding set larger, never the thread more privileged).
    /// Returns the set kept. Irreversible: a capability gone from the permitted set cannot come back.
    @inline(never)
    @discardableResult
    public static func restrict(
        to keep: CapabilitySet,
        dropBounding: Bool = true
    ) throws(CapabilityError)
        -> CapabilitySet
    {
        let before = current()
        let kept = keep.intersection(before.permitted)
        // Programs started later regain up to the bounding set when they run as root; keep it for programs
        // that must (a restart command), drop it otherwise.
        if dropBounding && before.effective.has(.setpcap) {
            // PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set: drop the bounding set first.
            for number in before.bounding.subtracting(kept).numbers {
                _ = cap_drop_bound(cap_value_t(number))
            }
        }
        if cap_reset_ambient() != 0 && !before.ambient.isEmpty {
            throw CapabilityError(operation: "clear the ambient capability set", errno: Errno(rawValue: errno))
        }
        guard let caps = cap_init() else {
            throw CapabilityError(operation: "allocate a capability state", errno: Errno(rawValue: errno))
        }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        var values = kept.numbers.map { cap_value_t($0) }
        if !values.isEmpty {
            let count = CInt(values.count)
            let ok = values.withUnsafeMutableBufferPointer { list in
                cap_set_flag(caps, CAP_EFFECTIVE, count, list.baseAddress, CAP_SET) == 0
                    && cap_set_flag(caps, CAP_PERMITTED, count, list.baseAddress, CAP_SET) == 0
            }
            guard ok else {
                throw CapabilityError(operation: "build the capability state", errno: Errno(rawValue: errno))
            }
        }
        if cap_set_proc(caps) != 0 {
            throw CapabilityError(operation: "set the capabilities \(kept)", errno: Errno(rawValue: errno))
        }
        return kept
    }

    private static func flag(_ caps: cap_t, _ value: cap_value_t, _ which: cap_flag_t) -> Bool {
        var result = CAP_CLEAR
        return cap_get_flag(caps, value, which, &result) == 0 && result == CAP_SET
    }
}

/// Why changing capabilities failed.
public struct CapabilityError: Error, Sendable, CustomStringConvertible {
    /// What was being done, e.g. "set the capabilities CAP_NET_ADMIN".
    public let operation: String
    /// The errno libcap reported.
    public let errno: Errno

    /// Creates the error.
    public init(operation: String, errno: Errno) {
        self.operation = operation
        self.errno = errno
    }

    /// One line: what failed, the cause, what to do (E2).
    public var description: String {
        "Failed to \(operation): \(errno). Run 'vigil probe' to see the capabilities vigil holds, and grant the "
            + "missing ones with 'CapabilityBoundingSet=' in vigil.service"
    }
}
