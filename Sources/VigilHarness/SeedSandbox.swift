import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A sandbox copy of the seed's server (CloudCrest's analytics-prod-03, `shared/seed/day6-process-monitoring.md`)
/// in a temporary directory, for `vigil run --root`: the upload service's config as the seed leaves it
/// (`verify_ssl = true  # FIXED…`) and the log directories with the seed's modes.
public struct SeedSandbox: Sendable {
    /// Host path of the sandbox root (stands for `/`).
    public let root: String
    /// The sandbox's `/dev/log`, read by this process as the journal would read the host's: the shipped
    /// rules send every alert there (RFC 5424).
    public let journal: SyslogReceiver

    /// The seed's config after Fatima's fix.
    public static let fixedConfig = """
        # API Connection Settings
        api_url = https://api.analytics-partner.com
        metrics_url = https://metrics.analytics-partner.com
        verify_ssl = true  # FIXED: SSL verification enabled for security

        """

    /// The seed's config as Fatima found it.
    public static let insecureConfig = """
        # API Connection Settings
        api_url = https://api.analytics-partner.com
        metrics_url = https://metrics.analytics-partner.com
        verify_ssl = false  # TODO: Enable for production

        """

    /// Server path of the upload service's config.
    public static let configPath = "/etc/analytics/upload-service.conf"

    /// Creates the sandbox under `$TMPDIR` (or /tmp).
    public init(label: String = "sandbox") throws(HarnessError) {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/vigil-\(label)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw HarnessError("Failed to create a sandbox under '\(base)': errno \(errno)")
        }
        root = String(cString: made)
        FileTree.makeDirectories(root + "/dev", mode: 0o755)
        journal = try SyslogReceiver(path: root + "/dev/log")
        journal.keepDraining()
        for (dir, mode) in [
            ("/etc/analytics", 0o755), ("/var/log/analytics", 0o750), ("/var/log/analytics/unified", 0o750),
            ("/var/log/analytics/reports", 0o750), ("/var/log/analytics/alerts", 0o700), ("/var/log/archive", 0o750),
            ("/var/log/vigil", 0o750), ("/run/vigil", 0o755), ("/var/lib/postgresql", 0o700),
        ] {
            try makeDirectories(dir, mode: UInt32(mode))
        }
        try write(Self.configPath, Self.fixedConfig)
        try installDeliveryStandIns()
        try write("/etc/passwd", Self.passwd)
        try write("/etc/group", Self.group)
        // The seed's hardening: `chown -R analytics:log-readers /var/log/analytics` and an archive directory
        // owned by analytics:analytics. Only root can give files away; elsewhere the tree stays the caller's.
        try write(Self.unifiedLogPath(), "")
        if geteuid() == 0 {
            for path in [
                "/var/log/analytics", "/var/log/analytics/unified", "/var/log/analytics/reports",
                "/var/log/analytics/alerts", Self.unifiedLogPath(),
            ] {
                chown(hostPath(path), Self.analyticsUser, Self.logReadersGroup)
            }
            chmod(hostPath(Self.unifiedLogPath()), 0o640)
            chown(hostPath("/var/log/archive"), Self.analyticsUser, Self.analyticsUser)
        }
        try installCrontabs()
    }

    /// Server path of Aanya's maintenance script, which the system crontab runs as root.
    public static let maintenanceScript = "/home/aanya/scripts/analytics_maintenance.sh"

    /// The seed's crontabs: `/etc/crontab` with Aanya's nightly job, and the people's own crontabs
    /// (Fatima's process_monitor.sh, Jin's log scripts), which run as their owners. The seed prints the
    /// system line as `0 2 * * * /home/aanya/scripts/analytics_maintenance.sh`; /etc/crontab's sixth field
    /// is the user, and the issue (and `ps` on day 6) say it runs as root, so the sandbox writes `root`.
    /// As root, the script and its directory belong to aanya (uid 1013), as in the seed.
    public func installCrontabs() throws(HarnessError) {
        try write(
            "/etc/crontab",
            """
            # /etc/crontab: system-wide crontab (the user field comes before the command)
            SHELL=/bin/sh
            PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin

            17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly
            0 2 * * * root /home/aanya/scripts/analytics_maintenance.sh

            """
        )
        try makeDirectories("/home/aanya/scripts", mode: 0o755)
        try write(Self.maintenanceScript, "#!/bin/sh\n# Nightly analytics maintenance (Aanya)\nexit 0\n")
        chmod(hostPath(Self.maintenanceScript), 0o755)
        try makeDirectories("/var/spool/cron/crontabs", mode: 0o730)
        try write(
            "/var/spool/cron/crontabs/fatima",
            "# Run process monitoring every 15 minutes\n*/15 * * * * /home/fatima/scripts/process_monitor.sh\n"
        )
        try write(
            "/var/spool/cron/crontabs/jin",
            """
            0 * * * * /home/jin/scripts/analytics/log_standardizer.sh
            15 * * * * /home/jin/scripts/analytics/log_analyzer.sh
            30 * * * * /home/jin/scripts/analytics/log_parity_check.sh
            0 0 * * * /home/jin/scripts/analytics/log_sanitizer.sh

            """
        )
        if geteuid() == 0 {
            for path in ["/home/aanya", "/home/aanya/scripts", Self.maintenanceScript] {
                chown(hostPath(path), Self.aanyaUser, Self.aanyaUser)
            }
        }
    }

    /// uid and gid of the sandbox's `aanya`.
    public static let aanyaUser: UInt32 = 1013

    /// uid and gid of the sandbox's `analytics` user, and gid of `log-readers`.
    public static let analyticsUser: UInt32 = 1001
    public static let logReadersGroup: UInt32 = 1002

    /// The sandbox's `etc/passwd`: the seed's service account and the people of day 6.
    public static let passwd = """
        root:x:0:0:root:/root:/bin/bash
        analytics:x:1001:1001:Analytics services:/var/lib/analytics:/usr/sbin/nologin
        postgres:x:1003:1003:PostgreSQL administrator:/var/lib/postgresql:/bin/bash
        fatima:x:1010:1010::/home/fatima:/bin/bash
        jin:x:1011:1011::/home/jin:/bin/bash
        luis:x:1012:1012::/home/luis:/bin/bash
        aanya:x:1013:1013::/home/aanya:/bin/bash
        noah:x:1014:1014::/home/noah:/bin/bash
        taylor:x:1015:1015::/home/taylor:/bin/bash

        """

    /// The sandbox's `etc/group`, with the seed's `log-readers` group.
    public static let group = """
        root:x:0:
        analytics:x:1001:
        log-readers:x:1002:fatima,jin,luis,aanya,noah,taylor
        postgres:x:1003:

        """

    /// Host path for a server path.
    public func hostPath(_ serverPath: String) -> String { root + serverPath }

    /// Writes a file in place: open with O_TRUNC, one write, close (as `echo … >` does).
    public func write(_ serverPath: String, _ content: String) throws(HarnessError) {
        try FileSaves.inPlace(hostPath(serverPath), content)
    }

    /// Saves a file the way `sed -i`, `install` and many editors do: a temporary file renamed over it.
    /// Appends `content` to a log the way an application does (one `write(2)` with `O_APPEND`).
    public func append(_ serverPath: String, _ content: String) throws(HarnessError) {
        let fd = open(hostPath(serverPath), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else {
            throw HarnessError("Failed to open '\(hostPath(serverPath))': \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(content.utf8)
        guard bytes.withUnsafeBytes({ Glibc.write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw HarnessError("Failed to append to '\(hostPath(serverPath))': \(String(cString: strerror(errno)))")
        }
    }

    /// Today's unified log, `/var/log/analytics/unified/unified_YYYYMMDD.log` (UTC), as the seed names it.
    public static func unifiedLogPath() -> String {
        var now = time(nil)
        var parts = tm()
        gmtime_r(&now, &parts)
        let day = (parts.tm_year + 1900) * 10000 + (parts.tm_mon + 1) * 100 + parts.tm_mday
        return "/var/log/analytics/unified/unified_\(day).log"
    }

    public func writeReplacing(_ serverPath: String, _ content: String) throws(HarnessError) {
        try FileSaves.replacing(hostPath(serverPath), content)
    }

    /// Saves a file the way vim does by default (rename away, write anew, delete the backup).
    public func writeLikeVim(_ serverPath: String, _ content: String) throws(HarnessError) {
        try FileSaves.likeVim(hostPath(serverPath), content)
    }

    /// `mkdir -p` inside the sandbox; the last directory gets `mode`.
    public func makeDirectories(_ serverPath: String, mode: UInt32 = 0o755) throws(HarnessError) {
        guard FileTree.makeDirectories(hostPath(serverPath), mode: mode), chmod(hostPath(serverPath), mode_t(mode)) == 0
        else {
            throw HarnessError("Failed to create '\(hostPath(serverPath))': \(String(cString: strerror(errno)))")
        }
    }

    /// The seed's services: the name `ps` shows and the executable's server path.
    public static let services: [(name: String, executable: String)] = [
        ("analytics-service", "/usr/bin/analytics-service"),
        ("upload-service", "/usr/bin/upload-service"),
        ("processing-service", "/usr/bin/processing-service"),
        ("postgres", "/usr/lib/postgresql/15/bin/postgres"),
    ]

    /// Installs stand-ins for the seed's services: a copy of /bin/sleep under each service's executable path
    /// (so the kernel reports the service's name), and a SysV-style `/etc/init.d/NAME start|stop|restart`
    /// script, the way a host without systemd starts services (Vigil's restart `command:` runs it).
    public func installServiceStandIns() throws(HarnessError) {
        for service in Self.services {
            try StandIn.install("/bin/sleep", at: hostPath(service.executable))
            let executable = hostPath(service.executable)
            let script = """
                #!/bin/sh
                # Stand-in init script for \(service.name) (Vigil's sandbox of the seed's server).
                case "$1" in
                  start) setsid \(executable) infinity </dev/null >/dev/null 2>&1 & ;;
                  stop) pkill -KILL -f '^\(executable) infinity$' ;;
                  restart) "$0" stop; "$0" start ;;
                  reload) : ;;  # the stand-in writes no log to reopen
                  *) echo "usage: $0 start|stop|restart|reload" >&2; exit 2 ;;
                esac

                """
            try makeDirectories("/etc/init.d")
            try FileSaves.inPlace(hostPath("/etc/init.d/\(service.name)"), script, mode: 0o755)
        }
    }

    /// The mailbox the sandbox's stand-in sendmail delivers to (the shipped rules mail sre-team).
    public static let mailbox = "/var/mail/sre-team"

    /// Stand-ins for the host's alert receivers, as the shipped rules' sinks expect them: `/usr/sbin/sendmail`
    /// (a script that takes `-t -oi` and appends the message to `mailbox`, as a local MTA would) and the
    /// `/dev` directory where the caller binds its syslog socket (`/dev/log`).
    public func installDeliveryStandIns() throws(HarnessError) {
        try makeDirectories("/usr/sbin")
        try makeDirectories("/var/mail")
        try makeDirectories("/dev")
        let script = """
            #!/bin/sh
            # Stand-in sendmail (Vigil's sandbox of the seed's server): takes the message on standard input,
            # as `sendmail -t -oi` does, and appends it to the sandbox's mailbox in mbox form.
            mailbox="$(dirname "$0")/../..\(Self.mailbox)"
            { echo "From vigil $(date)"; cat; echo; } >> "$mailbox"

            """
        try FileSaves.inPlace(hostPath("/usr/sbin/sendmail"), script, mode: 0o755)
    }

    /// Starts one stand-in service (the way its init script does) and returns its process.
    public func startService(_ name: String) throws(HarnessError) -> ChildProcess {
        guard let service = Self.services.first(where: { $0.name == name }) else {
            throw HarnessError("No stand-in service '\(name)'")
        }
        return try ChildProcess(executable: hostPath(service.executable), arguments: ["infinity"])
    }

    /// Kills every process running one of the stand-ins' executables (found through /proc/PID/exe).
    public func stopServiceStandIns() {
        let executables = Set(Self.services.map { hostPath($0.executable) })
        let proc = ProcFS()
        for pid in proc.pids() {
            if let exe = proc.executable(pid), executables.contains(exe.path) { kill(pid, SIGKILL) }
        }
    }

    /// Removes the sandbox (`rm -rf`, never following symlinks).
    public func remove() {
        journal.close()
        FileTree.remove(root)
    }
}
