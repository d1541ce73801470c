#if canImport(Glibc)
import Glibc
#endif

/// What this host's kernel and init offer, detected at run time (STYLE S6: detect, do not assume).
public enum HostFeatures {
    /// systemd is PID 1 when `/run/systemd/system` is a directory (the `sd_booted()` convention).
    public static var systemdIsRunning: Bool {
        var info = stat()
        return lstat("/run/systemd/system", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// The kernel release (`uname -r`), for messages only.
    public static var kernelRelease: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "unknown" }
        return withUnsafeBytes(of: names.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
    }

    /// `fs.inotify.*` limits; nil where unreadable.
    public static var inotifyLimits: (watches: Int?, instances: Int?, queuedEvents: Int?) {
        (
            ProcFile.readInteger("/proc/sys/fs/inotify/max_user_watches"),
            ProcFile.readInteger("/proc/sys/fs/inotify/max_user_instances"),
            ProcFile.readInteger("/proc/sys/fs/inotify/max_queued_events")
        )
    }

    /// Whether `/proc/pressure/RESOURCE` (PSI) can be read: `cpu`, `memory`, `io`.
    public static func pressureAvailable(_ resource: String) -> Bool {
        access("/proc/pressure/\(resource)", R_OK) == 0
    }

    /// Whether this process shares the initial pid and network namespaces (the proc connector reports only
    /// there); nil when it cannot tell.
    public static var inInitialNamespaces: Bool? {
        var own = stat()
        var initial = stat()
        for kind in ["pid", "net"] {
            guard stat("/proc/self/ns/\(kind)", &own) == 0, stat("/proc/1/ns/\(kind)", &initial) == 0 else {
                return nil
            }
            if own.st_ino != initial.st_ino || own.st_dev != initial.st_dev { return false }
        }
        return true
    }
}
