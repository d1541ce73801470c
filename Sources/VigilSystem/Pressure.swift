import CVigilLinux
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A resource with pressure stall information, `/proc/pressure/<name>` (`CONFIG_PSI`, Linux 4.20). See the
/// kernel's Documentation/accounting/psi.rst.
public enum PressureResource: String, Sendable, CaseIterable {
    case cpu, memory, io
}

/// Which stall a PSI line or trigger counts.
public enum PressureKind: String, Sendable {
    /// At least one runnable task was stalled on the resource.
    case some
    /// Every non-idle task was stalled at once (for `cpu`, reported since Linux 5.13; older kernels refuse
    /// a `full` cpu trigger with `EINVAL`).
    case full
}

/// One line of a `/proc/pressure` file: `some avg10=1.99 avg60=0.47 avg300=9.11 total=7670161258`.
public struct PressureTotals: Sendable, Equatable {
    /// The share of wall time stalled over the last 10 s, in percent (0...100).
    public var avg10: Double
    /// The same over the last 60 s.
    public var avg60: Double
    /// The same over the last 300 s.
    public var avg300: Double
    /// Microseconds stalled since boot; only grows.
    public var total: UInt64

    /// Creates the totals.
    public init(avg10: Double, avg60: Double, avg300: Double, total: UInt64) {
        self.avg10 = avg10
        self.avg60 = avg60
        self.avg300 = avg300
        self.total = total
    }
}

/// What the kernel accepts from this process, found by `Pressure.support()`.
public struct PressureSupport: Sendable, Equatable {
    /// `/proc/pressure/` can be read: the kernel has `CONFIG_PSI` and it was not turned off with `psi=0`.
    public let present: Bool
    /// A trigger could be created here.
    public let triggersAllowed: Bool
    /// 2 000 000 when only whole multiples of 2 s are accepted as windows (no `CAP_SYS_RESOURCE`, Linux 6.5
    /// or later); nil when any window from 0.5 s to 10 s is, or when no trigger is.
    public let windowMultipleMicroseconds: Int?
    /// One line when triggers are not allowed: what failed and the fix.
    public let reason: String?

    /// Creates the description.
    public init(present: Bool, triggersAllowed: Bool, windowMultipleMicroseconds: Int?, reason: String?) {
        self.present = present
        self.triggersAllowed = triggersAllowed
        self.windowMultipleMicroseconds = windowMultipleMicroseconds
        self.reason = reason
    }
}

/// Pressure stall information: the averages of `/proc/pressure/*` and what triggers this process may create.
/// Cold path. See the kernel's Documentation/accounting/psi.rst.
public enum Pressure {
    /// The shortest trigger window the kernel accepts, 500 ms (`WINDOW_MIN_US` in kernel/sched/psi.c).
    public static let minimumWindowMicroseconds = 500_000
    /// The longest trigger window the kernel accepts, 10 s (`WINDOW_MAX_US`).
    public static let maximumWindowMicroseconds = 10_000_000
    /// Without `CAP_SYS_RESOURCE` a window must be a whole multiple of this, 2 s: unprivileged triggers are
    /// checked by the kernel's 2 s averaging work instead of a dedicated real-time thread (Linux 6.5).
    public static let unprivilegedWindowMultipleMicroseconds = 2_000_000

    /// Reads `/proc/pressure/<resource>`: the `some` and `full` lines (`full` nil when absent: cpu before
    /// Linux 5.13).
    public static func read(
        _ resource: PressureResource,
        root: String = "/proc"
    ) -> Result<(some: PressureTotals, full: PressureTotals?), PressureError> {
        read(path: "\(root)/pressure/\(resource.rawValue)")
    }

    /// Reads a pressure file by its path: `/proc/pressure/<resource>`, or a cgroup's own
    /// `<cgroup>/<resource>.pressure` (cgroup v2, same format).
    public static func read(path: String) -> Result<(some: PressureTotals, full: PressureTotals?), PressureError> {
        let fd = path.withCString { CVigilLinux_open($0, O_RDONLY | O_CLOEXEC, 0) }
        guard fd >= 0 else { return .failure(PressureError(reading: path, errno: Errno(rawValue: errno))) }
        defer { Syscall.close(fd) }
        // Both lines together are under 140 bytes; the kernel formats the file in one read (seq_file).
        var bytes = [UInt8](repeating: 0, count: 512)
        var count = 0
        while count < bytes.count {
            let result = bytes.withUnsafeMutableBytes { raw in
                Result { () throws(Errno) in
                    try Syscall.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: raw[count...]))
                }
            }
            switch result {
            case .failure(let error): return .failure(PressureError(reading: path, errno: error))
            case .success(let n?) where n > 0: count += n
            case .success: return parse(String(decoding: bytes[0..<count], as: UTF8.self), path: path)
            }
        }
        return parse(String(decoding: bytes[0..<count], as: UTF8.self), path: path)
    }

    /// Parses the text of a pressure file: a `some` line, then an optional `full` line.
    static func parse(
        _ text: String,
        path: String
    ) -> Result<(some: PressureTotals, full: PressureTotals?), PressureError> {
        var some: PressureTotals?
        var full: PressureTotals?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard let first = fields.first else { continue }
            guard let totals = totals(fields.dropFirst()) else {
                return .failure(PressureError(malformed: path, line: String(line)))
            }
            switch first {
            case "some": some = totals
            case "full": full = totals
            default: return .failure(PressureError(malformed: path, line: String(line)))
            }
        }
        guard let some else { return .failure(PressureError(malformed: path, line: "")) }
        return .success((some: some, full: full))
    }

    /// `avg10=… avg60=… avg300=… total=…`, in that order; nil when any is missing or not a number.
    private static func totals(_ fields: ArraySlice<Substring>) -> PressureTotals? {
        var values: [Substring: Substring] = [:]
        for field in fields {
            guard let equals = field.firstIndex(of: "=") else { return nil }
            values[field[..<equals]] = field[field.index(after: equals)...]
        }
        guard let avg10 = values["avg10"].flatMap({ Double($0) }),
            let avg60 = values["avg60"].flatMap({ Double($0) }),
            let avg300 = values["avg300"].flatMap({ Double($0) }),
            let total = values["total"].flatMap({ UInt64($0) })
        else { return nil }
        return PressureTotals(avg10: avg10, avg60: avg60, avg300: avg300, total: total)
    }

    /// What the kernel will accept here, found by trying (S6): whether `/proc/pressure/memory` can be read, and
    /// whether a trigger can be created on it, first with a 1 s window (accepted only with
    /// `CAP_SYS_RESOURCE`), then with a 2 s one (accepted without it since Linux 6.5). Each probe trigger is
    /// removed by closing its descriptor. The kernel release and `CAP_SYS_RESOURCE` only word the reason.
    public static func support(root: String = "/proc") -> PressureSupport {
        let path = "\(root)/pressure/\(PressureResource.memory.rawValue)"
        guard HostFeatures.pressureAvailable(.memory, root: root) else {
            return PressureSupport(
                present: false,
                triggersAllowed: false,
                windowMultipleMicroseconds: nil,
                reason: "Failed to read pressure stall information: '\(path)' cannot be read; boot a kernel built with"
                    + " CONFIG_PSI, without 'psi=0' on its command line (CONFIG_PSI_DEFAULT_DISABLED needs 'psi=1')"
            )
        }
        switch HostFeatures.pressureTriggers(.memory, root: root) {
        case .anyWindow:
            return PressureSupport(present: true, triggersAllowed: true, windowMultipleMicroseconds: nil, reason: nil)
        case .twoSecondMultiples:
            return PressureSupport(
                present: true,
                triggersAllowed: true,
                windowMultipleMicroseconds: unprivilegedWindowMultipleMicroseconds,
                reason: nil
            )
        case .unavailable(let error):
            let reason: String
            if error == .notPermitted {
                // FIXME(kernel-baseline): before Linux 6.5 opening a pressure file for writing needs
                // CAP_SYS_RESOURCE, whatever the window.
                reason =
                    "Failed to create a PSI trigger on '\(path)': the kernel returned '\(error)'. Linux"
                    + " \(KernelRelease.current()) requires CAP_SYS_RESOURCE for triggers (kernels before 6.5 do);"
                    + " grant CAP_SYS_RESOURCE (add it to CapabilityBoundingSet= in vigil.service), or run"
                    + " Linux 6.5 or later, which allows windows of whole multiples of 2 s without it"
            } else {
                reason =
                    "Failed to create a PSI trigger on '\(path)': the kernel returned '\(error)'; make '\(path)'"
                    + " writable for vigil (a read-only /proc or a security policy refuses it), or run 'vigil probe'"
            }
            return PressureSupport(
                present: true,
                triggersAllowed: false,
                windowMultipleMicroseconds: nil,
                reason: reason
            )
        }
    }

    /// Checks a trigger's numbers as the kernel would, without asking it: nil when they are acceptable.
    static func validate(
        stallMicroseconds: Int,
        windowMicroseconds: Int,
        privileged: Bool,
        path: String
    ) -> PressureError? {
        guard (minimumWindowMicroseconds...maximumWindowMicroseconds).contains(windowMicroseconds) else {
            return PressureError(invalidWindow: windowMicroseconds, path: path)
        }
        guard stallMicroseconds > 0, stallMicroseconds < windowMicroseconds else {
            return PressureError(invalidStall: stallMicroseconds, window: windowMicroseconds, path: path)
        }
        if !privileged && windowMicroseconds % unprivilegedWindowMultipleMicroseconds != 0 {
            return PressureError(windowNeedsPrivilege: windowMicroseconds, path: path)
        }
        return nil
    }
}

/// A PSI trigger: an open descriptor that becomes `POLLPRI`-readable (`EPOLLPRI`) when the stall threshold is
/// crossed within the window, and `POLLERR` when the pressure file goes away (a removed cgroup). The kernel
/// reports a crossing at most once per window. Closing the descriptor removes the trigger. See the kernel's
/// Documentation/accounting/psi.rst.
public final class PressureTrigger: Sendable {
    /// The trigger's descriptor (`O_RDWR | O_NONBLOCK | O_CLOEXEC`): wait on it with `epollEvents`.
    public let descriptor: CInt
    /// The resource the trigger watches.
    public let resource: PressureResource
    /// Whether some or all tasks must stall.
    public let kind: PressureKind
    /// The stall, in microseconds, that fires the trigger when it accumulates within one window.
    public let stallMicroseconds: Int
    /// The window, in microseconds (0.5 s to 10 s; a whole multiple of 2 s without `CAP_SYS_RESOURCE`).
    public let windowMicroseconds: Int
    /// Whether `close()` ran: the descriptor number may belong to another file afterwards.
    private let closed = Atomic<Bool>(false)

    /// The events to register with `Epoll.add(_:tag:events:)`: `EPOLLPRI | EPOLLERR`. A trigger never polls
    /// readable (`EPOLLIN`); `EPOLLERR` is reported whether asked for or not, and named for clarity.
    public static var epollEvents: UInt32 { EPOLLPRI.rawValue | EPOLLERR.rawValue }

    /// Creates a trigger: opens `<root>/pressure/<resource>` and writes `"<kind> <stall> <window>"` to it.
    ///
    /// The numbers are checked first, with errors that say the fix: a window from 0.5 s to 10 s, a stall
    /// above 0 and below the window, and without `CAP_SYS_RESOURCE` a window that is a whole multiple of 2 s.
    /// The kernel checks the privilege of the credentials that opened the file, which are this thread's.
    public convenience init(
        resource: PressureResource,
        kind: PressureKind,
        stallMicroseconds: Int,
        windowMicroseconds: Int,
        root: String = "/proc"
    ) throws(PressureError) {
        try self.init(
            path: "\(root)/pressure/\(resource.rawValue)",
            resource: resource,
            kind: kind,
            stallMicroseconds: stallMicroseconds,
            windowMicroseconds: windowMicroseconds
        )
    }

    /// Creates a trigger on the pressure file at `path`: `/proc/pressure/<resource>`, or a cgroup v2
    /// directory's `<resource>.pressure`, which takes triggers the same way (and polls `POLLERR` once the
    /// cgroup is removed).
    public init(
        path: String,
        resource: PressureResource,
        kind: PressureKind,
        stallMicroseconds: Int,
        windowMicroseconds: Int
    ) throws(PressureError) {
        if let error = Pressure.validate(
            stallMicroseconds: stallMicroseconds,
            windowMicroseconds: windowMicroseconds,
            privileged: Capabilities.has(.sysResource),
            path: path
        ) {
            throw error
        }
        let fd = path.withCString { CVigilLinux_open($0, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) }
        guard fd >= 0 else {
            throw PressureError(creating: path, step: .open, errno: Errno(rawValue: errno), kind: kind)
        }
        // psi_write copies at most 128 bytes and overwrites the last byte it copied with a NUL, so the
        // terminator must be written too: without it "some 150000 2000000" would be read as a 200 ms window.
        let text = "\(kind.rawValue) \(stallMicroseconds) \(windowMicroseconds)"
        let written = text.withCString { pointer in
            Result { () throws(Errno) in
                try Syscall.writeAll(fd, UnsafeRawBufferPointer(start: pointer, count: strlen(pointer) + 1))
            }
        }
        if case .failure(let error) = written {
            Syscall.close(fd)
            throw PressureError(creating: path, step: .write, errno: error, kind: kind)
        }
        descriptor = fd
        self.resource = resource
        self.kind = kind
        self.stallMicroseconds = stallMicroseconds
        self.windowMicroseconds = windowMicroseconds
    }

    /// Closes the descriptor, which removes the trigger. Later calls do nothing. Remove the descriptor from
    /// any epoll set first.
    public func close() {
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { Syscall.close(descriptor) }
    }

    deinit { close() }
}
