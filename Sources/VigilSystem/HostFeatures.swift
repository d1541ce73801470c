import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// The running kernel's release from `uname(2)`, for messages only: Vigil detects features, it never
/// compares versions (S6).
public struct KernelRelease: Sendable, Equatable, CustomStringConvertible {
    /// The whole release string, e.g. `6.18.44-fc-v669` (`utsname.release`).
    public let release: String
    /// The leading numbers of the release, 0 where missing.
    public let major: Int
    public let minor: Int
    public let patch: Int

    /// Parses `release`: the numbers before the first character that is neither a digit nor a dot.
    public init(_ release: String) {
        self.release = release
        let numbers = release.prefix(while: { $0.isNumber || $0 == "." }).split(separator: ".").map { Int($0) ?? 0 }
        major = numbers.count > 0 ? numbers[0] : 0
        minor = numbers.count > 1 ? numbers[1] : 0
        patch = numbers.count > 2 ? numbers[2] : 0
    }

    /// `uname(2)` of the running kernel.
    public static func current() -> KernelRelease {
        var name = utsname()
        guard uname(&name) == 0 else { return KernelRelease("unknown") }
        let release = withUnsafeBytes(of: name.release) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return KernelRelease(release)
    }

    /// `major.minor.patch`, e.g. `6.18.44`.
    public var description: String { "\(major).\(minor).\(patch)" }
}

/// What this host offers, detected by trying it (S6): the service manager, inotify limits, pressure stall
/// information, the pid range. Cold path, for start-up and `vigil probe`.
public enum HostFeatures {
    /// Whether systemd is the service manager: `/run/systemd/system` is a directory (the `sd_booted(3)`
    /// convention). When false, `reload`/`restart` signal the process or run a configured command.
    public static var systemdIsRunning: Bool {
        var info = stat()
        return lstat("/run/systemd/system", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The inotify limits of `/proc/sys/fs/inotify/` (nil where unreadable). See `man 7 inotify`.
    public struct InotifyLimits: Sendable, Equatable {
        /// `max_user_watches`: watches per user, across all instances.
        public var maxUserWatches: Int?
        /// `max_user_instances`: inotify instances per user.
        public var maxUserInstances: Int?
        /// `max_queued_events`: events queued per instance before `IN_Q_OVERFLOW`.
        public var maxQueuedEvents: Int?
    }

    /// Reads the inotify limits.
    public static func inotifyLimits(root: String = "/proc") -> InotifyLimits {
        InotifyLimits(
            maxUserWatches: ProcFile.readInteger("\(root)/sys/fs/inotify/max_user_watches"),
            maxUserInstances: ProcFile.readInteger("\(root)/sys/fs/inotify/max_user_instances"),
            maxQueuedEvents: ProcFile.readInteger("\(root)/sys/fs/inotify/max_queued_events")
        )
    }

    /// `/proc/sys/kernel/pid_max`: pids wrap around after it (nil where unreadable).
    public static func pidMax(root: String = "/proc") -> Int? {
        ProcFile.readInteger("\(root)/sys/kernel/pid_max")
    }

    /// A resource with pressure stall information, `/proc/pressure/<name>`: the module's
    /// `PressureResource`, under the name `vigil probe` has used.
    public typealias PressureResource = VigilSystem.PressureResource

    /// Whether `/proc/pressure/<resource>` can be read: the kernel has `CONFIG_PSI` and it is not disabled
    /// (`psi=0` makes reads fail with `EOPNOTSUPP`).
    public static func pressureAvailable(_ resource: PressureResource, root: String = "/proc") -> Bool {
        guard let text = ProcFile.readText("\(root)/pressure/\(resource.rawValue)", limit: 512) else { return false }
        return text.hasPrefix("some ")
    }

    /// What kind of PSI trigger this process may create (`poll(POLLPRI)` on a written trigger; see the
    /// kernel's Documentation/accounting/psi.rst).
    public enum PressureTriggers: Sendable, Equatable {
        /// Any window from 0.5 s to 10 s: `CAP_SYS_RESOURCE` is held (or the kernel asks for no privilege).
        case anyWindow
        /// Only windows that are whole multiples of 2 s: the unprivileged triggers kernels have had since
        /// 6.5, without `CAP_SYS_RESOURCE`.
        case twoSecondMultiples
        /// None: the write was refused with this errno (`EPERM` before 6.5 without `CAP_SYS_RESOURCE`,
        /// `EACCES` when the file is not writable, `EOPNOTSUPP` without PSI).
        case unavailable(Errno)

        /// Whether triggers were refused for want of privilege (`EPERM`: `CAP_SYS_RESOURCE` on kernels before
        /// 6.5), rather than because the file is missing or not writable.
        public var refusedForPrivilege: Bool {
            if case .unavailable(let error) = self { return error == .notPermitted }
            return false
        }
    }

    /// Detects trigger support by creating a trigger (and removing it by closing the descriptor): first
    /// with a 1 s window, which needs `CAP_SYS_RESOURCE`, then with a 2 s one, which since 6.5 does not.
    public static func pressureTriggers(_ resource: PressureResource, root: String = "/proc") -> PressureTriggers {
        let path = "\(root)/pressure/\(resource.rawValue)"
        // Unprivileged on 6.5+: a window that is not a multiple of 2 s is EINVAL. Before 6.5, opening the file
        // for writing without CAP_SYS_RESOURCE is EPERM, whatever the window.
        guard tryTrigger(path, "some 100000 1000000") != nil else { return .anyWindow }
        if let error = tryTrigger(path, "some 150000 2000000") { return .unavailable(error) }
        return .twoSecondMultiples
    }

    /// Writes one trigger to a fresh descriptor; nil when the kernel accepted it. The kernel replaces the
    /// last byte written with a NUL, so the terminator is written too.
    private static func tryTrigger(_ path: String, _ trigger: String) -> Errno? {
        let fd = path.withCString { CVigilLinux_open($0, O_RDWR | O_NONBLOCK | O_CLOEXEC, 0) }
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { Syscall.close(fd) }
        let written = trigger.withCString { Glibc.write(fd, $0, strlen($0) + 1) }
        return written < 0 ? Errno(rawValue: errno) : nil
    }
}
