// The rule kinds that watch the host as a whole rather than one file or one process: pressure stall
// information, filesystem usage, listening sockets and the programs root runs. Each kind's fields, default
// messages and documentation live with its parser (RuleFileParser+KIND.swift) and in docs/rules.md.

/// A resource the kernel reports pressure stall information for (`/proc/pressure/NAME`).
public enum PressureResourceName: String, Sendable, CaseIterable, Hashable {
    case cpu, memory, io
}

/// `scope:` of a pressure rule: PSI's `some` (at least one task stalled) or `full` (all non-idle tasks
/// stalled at once).
public enum PressureScope: String, Sendable, CaseIterable, Hashable {
    case some, full
}

/// `pressure: memory` rules: a PSI trigger, waited on with POLLPRI (no sampling). State rule: fires when
/// the kernel reports `stall` of stalled time within one `within` window, resolves after a whole window
/// below it.
public struct PressureSubject: Sendable, Equatable {
    public var resource: PressureResourceName
    public var scope: PressureScope
    /// `stall:` — stalled time within the window, in microseconds (a duration, or a share of the window).
    public var stallMicroseconds: Int
    /// `within:` — the window, in microseconds.
    public var windowMicroseconds: Int
    /// `cgroup:` — a cgroup v2 path (`/system.slice/analytics-service.service`) whose own pressure files
    /// are watched; nil: the whole host.
    public var cgroup: String?

    public init(
        resource: PressureResourceName,
        scope: PressureScope,
        stallMicroseconds: Int,
        windowMicroseconds: Int,
        cgroup: String? = nil
    ) {
        self.resource = resource
        self.scope = scope
        self.stallMicroseconds = stallMicroseconds
        self.windowMicroseconds = windowMicroseconds
        self.cgroup = cgroup
    }
}

/// `disk: PATH` rules: the usage of the filesystem each path lives on. State rule per filesystem: fires
/// when usage goes above `above:` (or inode usage above `inodes_above:`), resolves when it drops below.
public struct DiskSubject: Sendable, Equatable {
    /// Absolute paths as written (resolved inside `--root`); each names the filesystem it lives on.
    public var paths: [String]
    /// `above:` — used blocks, in percent as `df` computes it (used / (used + available)).
    public var usagePercent: Double?
    /// `inodes_above:` — used inodes, in percent.
    public var inodesPercent: Double?
    /// `recheck:` — the slow timer that re-checks even without writes Vigil sees, in milliseconds.
    public var recheckMilliseconds: Int

    public init(paths: [String], usagePercent: Double?, inodesPercent: Double?, recheckMilliseconds: Int = 60_000) {
        self.paths = paths
        self.usagePercent = usagePercent
        self.inodesPercent = inodesPercent
        self.recheckMilliseconds = recheckMilliseconds
    }
}

/// A transport protocol of a listening socket.
public enum SocketProtocol: String, Sendable, CaseIterable, Hashable {
    case tcp, udp
}

/// Which listening sockets a pattern covers. Every field given must match; an absent field matches all.
public struct ListenerPattern: Sendable, Equatable {
    /// `proto:` — tcp or udp.
    public var proto: SocketProtocol?
    /// `address:` — as written, normalised: `0.0.0.0`, `::` (for `[::]` too), `127.0.0.1`, `::1`; `*`
    /// is nil (any address).
    public var address: String?
    /// `port:` — one port or a range (`8000-8099`).
    public var ports: ClosedRange<Int>?
    /// `exe:` — globs on the owning process's executable path (resolved inside `--root`).
    public var executables: [String]
    public var location: SourceLocation

    public init(
        proto: SocketProtocol? = nil,
        address: String? = nil,
        ports: ClosedRange<Int>? = nil,
        executables: [String] = [],
        location: SourceLocation
    ) {
        self.proto = proto
        self.address = address
        self.ports = ports
        self.executables = executables
        self.location = location
    }
}

/// `listening:` rules: sockets in the LISTEN state (TCP) or bound and unconnected (UDP), from netlink
/// sock_diag, with their owning processes.
public struct ListeningSubject: Sendable, Equatable {
    /// `listening:` — which listeners the rule looks at (`any`, or a pattern).
    public var scope: ListenerPattern
    public var trigger: ListeningTrigger

    public init(scope: ListenerPattern, trigger: ListeningTrigger) {
        self.scope = scope
        self.trigger = trigger
    }
}

/// When a listening rule fires. Both are state rules.
public enum ListeningTrigger: Sendable, Equatable {
    /// `allow: [...]` — fires for each listener in scope that no entry allows, resolves when it closes.
    case allow([ListenerPattern])
    /// `expect: listening` — fires while no listener in scope exists, resolves when one appears.
    case expect
}

/// Where the programs root runs are read from.
public enum EscalationSource: String, Sendable, CaseIterable, Hashable {
    /// `/etc/crontab`, `/etc/cron.d/*` and root's crontab (`/var/spool/cron/crontabs/root`).
    case cron
    /// `Exec*=` lines of system units that run as root.
    case systemd
}

/// `escalation: [cron, systemd]` rules: a program or script root runs that someone other than root can
/// write (the file, or a directory above it) is a path from that user to root. State rule per path.
public struct EscalationSubject: Sendable, Equatable {
    /// `escalation:` — where the programs root runs are read from (`any` is every source).
    public var sources: Set<EscalationSource>
    /// `also:` — absolute paths of further programs root runs that no source names (a script started by
    /// hand, by a timer Vigil does not read, by `run-parts`), checked the same way; source `also:`.
    public var also: [String]

    public init(sources: Set<EscalationSource>, also: [String] = []) {
        self.sources = sources
        self.also = also
    }
}
