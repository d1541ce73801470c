import ArgumentParser
import VigilCore
import VigilDaemon
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil probe`: what this host offers Vigil, each feature detected by trying it (S6).
struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what this host supports: kernel, inotify limits, process events, PSI, capabilities.",
        discussion: """
            Every line is detected by trying, not assumed from the kernel version: the proc connector line opens \
            the connector, starts /bin/true and waits for its exec and exit events; the PSI lines create a \
            trigger and remove it. Always exits 0. See docs/troubleshooting.md for what each problem means.
            """
    )

    @Flag(name: .long, help: "Print one JSON object instead of aligned lines.")
    var json = false

    @Option(
        name: .long,
        help: ArgumentHelp("How long to wait for the probe child's process events.", valueName: "ms")
    )
    var timeout: Int = 1000

    func validate() throws {
        guard (1...60_000).contains(timeout) else {
            throw ValidationError("--timeout \(timeout) is out of range; expected 1 to 60000 milliseconds")
        }
    }

    func run() throws {
        let report = HostReport.detect(timeout: ConnectorProbe.Milliseconds(timeout))
        if json {
            print(report.json())
        } else {
            for (label, value) in report.lines() {
                print(label.padding(to: 17) + value)
            }
        }
    }
}

/// Everything `vigil probe` detects.
struct HostReport {
    var kernel: KernelRelease
    var systemd: Bool
    var capabilities: Capabilities.State
    var supported: CapabilitySet
    var connector: ConnectorProbe.Result
    var inotify: HostFeatures.InotifyLimits
    var pressure: [(HostFeatures.PressureResource, Bool, HostFeatures.PressureTriggers?)]
    var pidMax: Int?
    /// Listening sockets through netlink sock_diag (what `listening:` rules read): how many, or why not.
    var sockDiag: Result<Int, SocketDiagError>
    /// The kernel's exit records (taskstats): whether Vigil can register for them here, or why not.
    var exitRecords: Result<Void, TaskExitStats.OpenError>

    static func detect(timeout: ConnectorProbe.Milliseconds) -> HostReport {
        HostReport(
            kernel: .current(),
            systemd: HostFeatures.systemdIsRunning,
            capabilities: Capabilities.current(),
            supported: Capabilities.supported,
            connector: ConnectorProbe.run(timeout: timeout),
            inotify: HostFeatures.inotifyLimits(),
            pressure: HostFeatures.PressureResource.allCases.map { resource in
                let available = HostFeatures.pressureAvailable(resource)
                return (resource, available, available ? HostFeatures.pressureTriggers(resource) : nil)
            },
            pidMax: HostFeatures.pidMax(),
            sockDiag: Result { () throws(SocketDiagError) -> Int in
                try SocketDiag(timeoutMilliseconds: 2000).listeners().count
            },
            exitRecords: Result { () throws(TaskExitStats.OpenError) in
                try TaskExitStats(receiveBufferSize: 65536).close()
            }
        )
    }

    /// The aligned text lines: label, value.
    func lines() -> [(String, String)] {
        var lines: [(String, String)] = []
        lines.append(("kernel", kernel.release))
        lines.append(
            (
                "systemd",
                systemd
                    ? "running (/run/systemd/system exists): reload/restart go through systemctl"
                    : "not running (no /run/systemd/system): reload/restart signal the process or run a command"
            )
        )
        lines.append(("capabilities", capabilityText()))
        lines.append(("namespaces", namespaceText()))
        lines.append(("proc connector", connector.summary))
        switch exitRecords {
        case .success:
            lines.append(("taskstats", "ok: exit records name processes gone before /proc could be read at exec"))
        case .failure(let error):
            lines.append(
                ("taskstats", "unavailable: \(error); a process gone before its exec is read is not matched by name")
            )
        }
        lines.append(("inotify", inotifyText()))
        for (resource, available, triggers) in pressure {
            lines.append(("pressure \(resource.rawValue)", pressureText(available: available, triggers: triggers)))
        }
        lines.append(("pid_max", pidMax.map(String.init) ?? "unreadable"))
        switch sockDiag {
        case .success(let count):
            lines.append(
                ("sock_diag", "ok: \(count) listening sockets (TCP and UDP, IPv4 and IPv6) for listening: rules")
            )
        case .failure(let error):
            lines.append(("sock_diag", "unavailable: \(error); listening: rules cannot run"))
        }
        return lines
    }

    private func capabilityText() -> String {
        let effective = capabilities.effective
        let missing = supported.subtracting(effective)
        let names: String
        if effective.isEmpty {
            names = "none"
        } else if missing.isEmpty {
            names = "all \(supported.numbers.count)"
        } else if missing.numbers.count <= 5 && effective.numbers.count > 10 {
            names = "all except \(missing.names.joined(separator: ","))"
        } else {
            names = effective.names.joined(separator: ",")
        }
        var notes: [String] = []
        if connector.namespaces.initialUser == false {
            notes.append("inside a user namespace: they do not count for the host's kernel checks")
        }
        notes.append(effective.has(.netAdmin) ? "CAP_NET_ADMIN held" : "no CAP_NET_ADMIN: SO_RCVBUFFORCE refused")
        if !effective.has(.sysPtrace) { notes.append("no CAP_SYS_PTRACE: other users' /proc/PID/exe unreadable") }
        return "\(names) (effective); \(notes.joined(separator: "; "))"
    }

    private func namespaceText() -> String {
        let facts = connector.namespaces
        func initial(_ value: Bool?) -> String {
            switch value {
            case true?: "initial"
            case false?: "not initial"
            case nil: "unknown"
            }
        }
        let network: String
        switch facts.sameNetworkAsPID1 {
        case true?: network = "same as PID 1"
        case false?: network = "differs from PID 1"
        case nil:
            if case .failure(let error) = Namespaces.inode(.net, of: "1") {
                network = "not compared (/proc/1/ns/net: \(error))"
            } else {
                network = "not compared"
            }
        }
        return "pid \(initial(facts.initialPid)), user \(initial(facts.initialUser)), net \(network)"
    }

    private func inotifyText() -> String {
        func value(_ number: Int?) -> String { number.map(String.init) ?? "unreadable" }
        return "max_user_watches \(value(inotify.maxUserWatches)), max_user_instances "
            + "\(value(inotify.maxUserInstances)), max_queued_events \(value(inotify.maxQueuedEvents))"
    }

    private func pressureText(available: Bool, triggers: HostFeatures.PressureTriggers?) -> String {
        guard available else { return "not available (no CONFIG_PSI, or psi=0 on the kernel command line)" }
        switch triggers {
        case .anyWindow?:
            return "available; triggers with any window (CAP_SYS_RESOURCE is held)"
        case .twoSecondMultiples?:
            return "available; unprivileged triggers work, windows in whole multiples of 2 s only "
                + "(CAP_SYS_RESOURCE would allow any window)"
        case .unavailable(let error)?:
            let hint =
                triggers?.refusedForPrivilege == true
                ? ": this kernel requires CAP_SYS_RESOURCE for triggers (unprivileged ones came with 6.5)" : ""
            return "available; triggers refused ('\(error)')\(hint)"
        case nil:
            return "available"
        }
    }

    /// One JSON object with the same facts.
    func json() -> String {
        var w = JSONWriter()
        w.beginObject()
        w.key("kernel")
        w.beginObject()
        w.key("release")
        w.string(kernel.release)
        w.key("major")
        w.integer(Int64(kernel.major))
        w.key("minor")
        w.integer(Int64(kernel.minor))
        w.key("patch")
        w.integer(Int64(kernel.patch))
        w.endObject()
        w.key("systemd")
        w.bool(systemd)
        w.key("capabilities")
        w.beginObject()
        for (name, set) in [
            ("effective", capabilities.effective), ("permitted", capabilities.permitted),
            ("inheritable", capabilities.inheritable), ("bounding", capabilities.bounding),
            ("ambient", capabilities.ambient),
        ] {
            w.key(name)
            w.beginArray()
            for capability in set.names { w.string(capability) }
            w.endArray()
        }
        w.endObject()
        w.key("namespaces")
        w.beginObject()
        for (name, value) in [
            ("initialPid", connector.namespaces.initialPid), ("initialUser", connector.namespaces.initialUser),
            ("sameNetworkAsPID1", connector.namespaces.sameNetworkAsPID1),
        ] {
            w.key(name)
            if let value { w.bool(value) } else { w.null() }
        }
        w.endObject()
        w.key("procConnector")
        w.beginObject()
        switch connector.connector {
        case .success(let buffer):
            w.key("opened")
            w.bool(true)
            w.key("receiveBuffer")
            w.beginObject()
            w.key("requested")
            w.integer(Int64(buffer.requested))
            w.key("effective")
            w.integer(Int64(buffer.effective))
            w.key("forced")
            w.bool(buffer.forced)
            w.endObject()
            w.key("error")
            w.null()
        case .failure(let error):
            w.key("opened")
            w.bool(false)
            w.key("error")
            w.string(error.description)
        }
        w.key("acknowledged")
        w.bool(connector.acknowledged)
        w.key("eventsArrive")
        w.bool(connector.eventsArrive)
        w.key("exitLatencyNanoseconds")
        if let latency = connector.exitLatencyNanoseconds { w.integer(Int64(latency)) } else { w.null() }
        w.key("lostEvents")
        w.integer(Int64(connector.lostEvents))
        w.key("likelyCause")
        w.string(orNull: connector.likelyCause)
        w.endObject()
        w.key("taskstats")
        w.beginObject()
        switch exitRecords {
        case .success:
            w.key("available")
            w.bool(true)
            w.key("error")
            w.null()
        case .failure(let error):
            w.key("available")
            w.bool(false)
            w.key("error")
            w.string(error.description)
        }
        w.endObject()
        w.key("inotify")
        w.beginObject()
        for (name, value) in [
            ("maxUserWatches", inotify.maxUserWatches), ("maxUserInstances", inotify.maxUserInstances),
            ("maxQueuedEvents", inotify.maxQueuedEvents),
        ] {
            w.key(name)
            if let value { w.integer(Int64(value)) } else { w.null() }
        }
        w.endObject()
        w.key("pressure")
        w.beginObject()
        for (resource, available, triggers) in pressure {
            w.key(resource.rawValue)
            w.beginObject()
            w.key("available")
            w.bool(available)
            w.key("triggers")
            switch triggers {
            case .anyWindow?: w.string("anyWindow")
            case .twoSecondMultiples?: w.string("twoSecondMultiples")
            case .unavailable(let error)?: w.string("unavailable: \(error)")
            case nil: w.null()
            }
            w.endObject()
        }
        w.endObject()
        w.key("pidMax")
        if let pidMax { w.integer(Int64(pidMax)) } else { w.null() }
        w.key("sockDiag")
        switch sockDiag {
        case .success(let count): w.string("ok: \(count) listening sockets")
        case .failure(let error): w.string("unavailable: \(error)")
        }
        w.endObject()
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

extension String {
    /// The string followed by spaces up to `width` characters (at least one space).
    fileprivate func padding(to width: Int) -> String {
        self + String(repeating: " ", count: Swift.max(width - count, 1))
    }
}
