import VigilCore
public import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Proves that process events really arrive (S6): subscribe to the proc connector, start `/bin/true`, and
/// wait in epoll, up to a deadline, for its exec and exit events, matched by pid.
///
/// Opening the connector can succeed and still deliver nothing usable: the kernel ignores subscriptions from
/// outside the initial user and pid namespaces without an error, and inside a child pid namespace the events
/// that do arrive carry the initial namespace's pids, which match nothing there. When the child's events do
/// not come, the result names the likely cause from what was detected (namespaces, the acknowledgement, lost
/// events, `CAP_NET_ADMIN`). Cold path: start-up and `vigil probe`; it blocks the calling thread.
public enum ConnectorProbe {
    /// A duration in milliseconds.
    public struct Milliseconds: Sendable, Hashable, ExpressibleByIntegerLiteral, CustomStringConvertible {
        /// The number of milliseconds.
        public var value: Int

        /// `value` milliseconds.
        public init(_ value: Int) { self.value = value }

        /// A literal number of milliseconds.
        public init(integerLiteral value: Int) { self.value = value }

        /// E.g. `1000 ms`.
        public var description: String { "\(value) ms" }
    }

    /// What the host's namespaces look like from here; nil where it could not be read.
    public struct NamespaceFacts: Sendable, Equatable {
        /// In the initial pid namespace (the fixed inode `PROC_PID_INIT_INO`).
        public var initialPid: Bool?
        /// In the initial user namespace (the fixed inode `PROC_USER_INIT_INO`).
        public var initialUser: Bool?
        /// In the same network namespace as PID 1 (nil when `/proc/1/ns/net` cannot be read, `EACCES` when
        /// PID 1 holds capabilities this process lacks).
        public var sameNetworkAsPID1: Bool?
        /// In the same pid namespace as PID 1 (always true in a container that mounted its own /proc).
        public var samePidAsPID1: Bool?

        /// Reads the facts of the running process.
        public static func current() -> NamespaceFacts {
            func same(_ kind: Namespaces.Kind) -> Bool? {
                guard case .success(let mine) = Namespaces.inode(kind),
                    case .success(let first) = Namespaces.inode(kind, of: "1")
                else { return nil }
                return mine == first
            }
            return NamespaceFacts(
                initialPid: Namespaces.isInitial(.pid),
                initialUser: Namespaces.isInitial(.user),
                sameNetworkAsPID1: same(.net),
                samePidAsPID1: same(.pid)
            )
        }
    }

    /// What the probe saw.
    public struct Result: Sendable {
        /// How long it waited at most.
        public var timeout: Milliseconds
        /// The connector's receive buffer, or why the connector could not be opened.
        public var connector: Swift.Result<ProcConnector.ReceiveBuffer, ProcConnectorError>
        /// The kernel's acknowledgement of the subscription arrived (`PROC_EVENT_NONE`).
        public var acknowledged = false
        /// The errno the acknowledgement carried (0: accepted).
        public var acknowledgementError: UInt32 = 0
        /// The pid of the `/bin/true` started, or nil when it could not be started.
        public var child: Int32?
        /// Why `/bin/true` could not be started.
        public var spawnError: SpawnError?
        /// Why the probe itself could not wait for events (epoll), when it could not.
        public var probeError: String?
        /// The child's fork, exec and exit events arrived.
        public var sawFork = false
        public var sawExec = false
        public var sawExit = false
        /// The wait status in the child's exit event.
        public var exitStatus: Int32?
        /// Process events of any process that arrived (acknowledgements not counted).
        public var eventsReceived = 0
        /// `ENOBUFS` reports: events lost while the probe ran.
        public var lostEvents = 0
        /// From starting the child to reading its exit event, in nanoseconds.
        public var exitLatencyNanoseconds: UInt64?
        /// The namespaces this process is in.
        public var namespaces: NamespaceFacts
        /// `CAP_NET_ADMIN` is effective (needed to bind before Linux 6.6, and for `SO_RCVBUFFORCE`).
        public var netAdmin: Bool

        /// Whether process events work here: the child's exec and exit both arrived.
        public var eventsArrive: Bool { sawExec && sawExit }

        /// One line: what worked, or what did not and the likely cause.
        public var summary: String {
            switch connector {
            case .failure(let error):
                return "not available: \(error.description)"
            case .success(let buffer):
                let size = ConnectorProbe.formatBytes(buffer.effective)
                let sizing =
                    buffer.forced
                    ? "buffer \(size) (SO_RCVBUFFORCE)"
                    : "buffer \(size) (SO_RCVBUF: SO_RCVBUFFORCE refused, \(buffer.forceError.map { "\($0)" } ?? "?"))"
                if eventsArrive {
                    let latency =
                        exitLatencyNanoseconds.map { ", exit seen \(ConnectorProbe.formatDuration($0)) after spawn" }
                        ?? ""
                    let warning = caveat.map { "; but \($0)" } ?? ""
                    return "ok: bind ok, events arrive (exec and exit of /bin/true\(latency)); \(sizing)\(warning)"
                }
                return "bind ok, but \(likelyCause ?? "no events arrived"); \(sizing)"
            }
        }

        /// When events arrive although the kernel ignored the subscription (no acknowledgement: this process
        /// is outside the initial user or pid namespace), they flow only because another process subscribed
        /// from the initial namespaces; they stop when it unsubscribes. Nil otherwise.
        public var caveat: String? {
            guard eventsArrive, !acknowledged else { return nil }
            return "the kernel did not acknowledge the subscription (this process is outside the initial user or "
                + "pid namespace): events arrive only while another process subscribed from the host's namespaces"
        }

        /// Why the child's events did not arrive, from what was detected; nil when they did.
        public var likelyCause: String? {
            if eventsArrive { return nil }
            if case .failure(let error) = connector { return error.description }
            if let spawnError { return "the probe could not start its child: \(spawnError)" }
            if let probeError { return "the probe could not wait for events: \(probeError)" }
            var causes: [String] = []
            if namespaces.initialUser == false || namespaces.initialPid == false {
                let which = [
                    namespaces.initialUser == false ? "user" : nil, namespaces.initialPid == false ? "pid" : nil,
                ]
                .compactMap { $0 }.joined(separator: " and ")
                let plural = namespaces.initialUser == false && namespaces.initialPid == false ? "s" : ""
                causes.append(
                    "this process is not in the initial \(which) namespace\(plural) (a container): the kernel ignores "
                        + "proc connector subscriptions from there"
                )
                if eventsReceived > 0 && namespaces.initialPid == false {
                    causes.append(
                        "the \(eventsReceived) events that did arrive carry the host's pids, which mean nothing in "
                            + "this pid namespace"
                    )
                }
            } else if acknowledged && acknowledgementError != 0 {
                causes.append(
                    "the kernel refused the subscription with errno \(acknowledgementError)"
                        + (netAdmin ? "" : "; CAP_NET_ADMIN is not effective, and kernels before 6.6 require it")
                )
            } else if !acknowledged {
                causes.append(
                    "the kernel did not acknowledge the subscription, as it does for listeners outside the initial "
                        + "user and pid namespaces"
                )
            }
            if lostEvents > 0 { causes.append("events were lost (ENOBUFS \(lostEvents) times)") }
            if sawExec && !sawExit { causes.append("the exec event arrived but the exit did not within \(timeout)") }
            if causes.isEmpty {
                causes.append(
                    "no event for pid \(child.map(String.init) ?? "?") arrived within \(timeout) "
                        + "(\(eventsReceived) events of other processes did)"
                )
            }
            return causes.joined(separator: "; ")
        }
    }

    /// Runs the probe; see the type's documentation. Waits at most `timeout` for the child's events.
    public static func run(timeout: Milliseconds = 1000) -> Result {
        let namespaces = NamespaceFacts.current()
        let netAdmin = Capabilities.has(.netAdmin)
        let connector: ProcConnector
        do throws(ProcConnectorError) {
            connector = try ProcConnector()
        } catch {
            return Result(timeout: timeout, connector: .failure(error), namespaces: namespaces, netAdmin: netAdmin)
        }
        defer { connector.close() }
        var result = Result(
            timeout: timeout,
            connector: .success(connector.receiveBuffer),
            namespaces: namespaces,
            netAdmin: netAdmin
        )

        let epoll: Epoll
        do {
            epoll = try Epoll()
        } catch {
            result.probeError = "creating an epoll instance returned '\(error)'"
            return result
        }
        do {
            try epoll.add(connector.descriptor, tag: 1)
        } catch {
            result.probeError = "adding the connector to epoll returned '\(error)'"
            return result
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: ProcConnector.recommendedReadSize,
            alignment: 8
        )
        defer { buffer.deallocate() }

        let started = Clock.monotonicNanoseconds()
        let deadline = started + UInt64(max(timeout.value, 0)) * 1_000_000
        let child: Int32
        do throws(SpawnError) {
            child = try Spawn.start("/bin/true", streams: .null)
        } catch {
            result.spawnError = error
            return result
        }
        result.child = child
        defer { _ = try? Spawn.wait(child, timeoutMilliseconds: 5000) }

        while !result.eventsArrive {
            drain: while true {
                switch connector.receive(into: buffer) {
                case .datagram(let n):
                    let now = Clock.monotonicNanoseconds()
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    _ = ProcEventDecoder.decode(bytes, readTime: now) { record in
                        observe(record, child: child, started: started, into: &result)
                    }
                case .lost:
                    result.lostEvents += 1
                case .wouldBlock:
                    break drain
                }
            }
            let now = Clock.monotonicNanoseconds()
            if result.eventsArrive || now >= deadline { break }
            let remaining = CInt(min((deadline - now) / 1_000_000 + 1, UInt64(CInt.max)))
            do {
                try epoll.wait(timeoutMilliseconds: remaining) { _ in }
            } catch {
                result.probeError = "epoll_wait returned '\(error)'"
                break
            }
        }
        return result
    }

    /// Records what `record` says about the probe's child.
    static func observe(_ record: ProcessEventRecord, child: Int32, started: UInt64, into result: inout Result) {
        switch record.kind {
        case .acknowledgement:
            result.acknowledged = true
            result.acknowledgementError = record.acknowledgementError
            return
        case .fork where record.childTgid == child:
            result.sawFork = true
        case .exec where record.tgid == child:
            result.sawExec = true
        case .exit where record.pid == child:
            result.sawExit = true
            result.exitStatus = record.rawExitStatus
            result.exitLatencyNanoseconds = record.readTime &- started
        default:
            break
        }
        result.eventsReceived += 1
    }

    /// `8 MiB`, `208 KiB`, `512 bytes`.
    static func formatBytes(_ count: Int) -> String {
        if count >= 1 << 20 && count % (1 << 20) == 0 { return "\(count >> 20) MiB" }
        if count >= 1 << 10 { return "\(count >> 10) KiB" }
        return "\(count) bytes"
    }

    /// `0.4 ms`, `12 µs`.
    static func formatDuration(_ nanoseconds: UInt64) -> String {
        if nanoseconds >= 1_000_000 {
            let tenths = nanoseconds / 100_000
            return "\(tenths / 10).\(tenths % 10) ms"
        }
        return "\(nanoseconds / 1000) µs"
    }
}
