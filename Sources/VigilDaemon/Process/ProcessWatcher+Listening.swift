import Logging
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A `ListenerPattern` ready to test sockets: the protocol as the kernel's, executables placed inside
/// `--root` as process rules' `exe:` are (see `CompiledSelector`).
struct CompiledListenerPattern {
    let proto: ListeningSocket.Proto?
    let address: String?
    let ports: ClosedRange<Int>?
    let executables: [CompiledSelector.Glob]

    init(_ pattern: ListenerPattern, root: RootedPath) {
        proto = pattern.proto.map { $0 == .tcp ? .tcp : .udp }
        address = pattern.address
        ports = pattern.ports
        // The same compilation as a process selector's exe: (root prefix, literal paths resolved).
        var unused: [String] = []
        executables =
            CompiledSelector(
                ProcessSelector(executables: pattern.executables),
                root: root,
                users: UserDatabase(root: "/nonexistent"),
                unknownUsers: &unused
            ).executables
    }

    /// Whether the socket's protocol, address and port fit (the owner is not looked at).
    func matchesSocket(_ socket: ListeningSocket) -> Bool {
        if let proto, proto != socket.proto { return false }
        if let address, address != socket.address { return false }
        if let ports, !ports.contains(Int(socket.port)) { return false }
        return true
    }

    /// Whether the socket fits and, when the pattern names executables, one of its owners runs one. An
    /// owner that could not be found runs nothing the pattern names (the safe side for `allow:`).
    func matches(_ socket: ListeningSocket, owners: [ProcessEntry]) -> Bool {
        guard matchesSocket(socket) else { return false }
        guard !executables.isEmpty else { return true }
        return owners.contains { owner in
            !owner.executable.isEmpty && executables.contains { $0.matches(owner.executable) }
        }
    }
}

/// A `listening:` rule ready to run.
struct CompiledListeningRule {
    let rule: Rule
    let scope: CompiledListenerPattern
    /// nil for `expect: listening`.
    let allow: [CompiledListenerPattern]?
    /// The scope as text, for `{expected}` and expect messages (`tcp 127.0.0.1:5432`).
    let expected: String
    let sinkMask: UInt64
    let labels: [String: String]
}

/// A socket's identity across reads: the same address and port reopened is another socket (another inode).
struct ListenerKey: Hashable {
    let proto: ListeningSocket.Proto
    let family: Int32
    let address: String
    let port: UInt16
    let inode: UInt64

    init(_ socket: ListeningSocket) {
        proto = socket.proto
        family = socket.family
        address = socket.address
        port = socket.port
        inode = socket.inode
    }
}

/// What the watcher knows about one listening socket: found when it was first seen, kept until it closes.
struct KnownListener {
    let socket: ListeningSocket
    /// The processes that held it when it was first seen (ascending pids for a full search); empty when
    /// none was found (gone already, or in another pid namespace).
    let owners: [ProcessEntry]
}

/// The `listening:` rules' state, owned by the vigil-proc thread. Empty (and never read) when no such rule
/// is loaded: then no socket is opened and no timer armed.
struct ListeningState {
    var rules: [CompiledListeningRule] = []
    /// Opened once at start-up and reused for every read.
    var diag: SocketDiag?
    var known: [ListenerKey: KnownListener] = [:]
    /// Per `allow:` rule: the listeners it fires for (resolved when they close).
    var firing: [Int: Set<ListenerKey>] = [:]
    /// Per `expect:` rule: whether it fires (none in scope).
    var expectFiring: [Int: Bool] = [:]
    /// Pids that ran or forked lately, with when: searched first for a new listener's owner.
    var recent: [(pid: Int32, time: UInt64)] = []
    /// Pids that own a known listener: their exit is a cue to read again.
    var ownerPids: Set<Int32> = []
    var cueScheduled = false
    var followUpScheduled = false
    /// A failed read is logged once until reads work again.
    var failing = false

    var isActive: Bool { !rules.isEmpty }

    /// Compiles the `listening:` rules among `rules`.
    init(rules: [Rule], root: RootedPath, masks: SinkMasks) {
        for rule in rules {
            guard case .listening(let subject) = rule.subject else { continue }
            var allow: [CompiledListenerPattern]?
            if case .allow(let patterns) = subject.trigger {
                allow = patterns.map { CompiledListenerPattern($0, root: root) }
            }
            self.rules.append(
                CompiledListeningRule(
                    rule: rule,
                    scope: CompiledListenerPattern(subject.scope, root: root),
                    allow: allow,
                    expected: Self.describe(subject.scope),
                    sinkMask: masks.mask(for: rule),
                    labels: rule.tagLabels
                )
            )
        }
    }

    /// `tcp 127.0.0.1:5432`, `any listener`, `udp port 53 of /usr/sbin/named`.
    static func describe(_ pattern: ListenerPattern) -> String {
        var words: [String] = []
        if let proto = pattern.proto { words.append(proto.rawValue) }
        let ports = pattern.ports.map { $0.count == 1 ? String($0.lowerBound) : "\($0.lowerBound)-\($0.upperBound)" }
        switch (pattern.address, ports) {
        case (let address?, let ports?): words.append(endpoint(address, ports))
        case (let address?, nil): words.append(endpoint(address, "*"))
        case (nil, let ports?): words.append("port \(ports)")
        case (nil, nil): break
        }
        if words.isEmpty { words.append("any listener") }
        if !pattern.executables.isEmpty { words.append("of " + pattern.executables.joined(separator: ", ")) }
        return words.joined(separator: " ")
    }

    /// `0.0.0.0:8089`, `[::]:8089`.
    static func endpoint(_ address: String, _ port: String) -> String {
        address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}

// Listening sockets: read from netlink sock_diag shortly after exec events (programs bind as they start),
// once more a little later (some bind after start-up), and on a short timer while listening rules are
// loaded; each new socket's owner is looked for among the processes that ran lately before all of /proc.
extension ProcessWatcher {
    /// Delay from an exec to the read it cues: execs come in bursts (a shell script, a service start), and
    /// one read serves the whole burst.
    static let listenerCueNanoseconds: UInt64 = 75_000_000
    /// A second read after a cued one, for programs that bind a little after they start.
    static let listenerFollowUpNanoseconds: UInt64 = 400_000_000
    /// The timer that catches what no exec announced (a running daemon opening another port, a fork that
    /// listens): at most this long plus a read from `listen(2)` to the alert.
    static let listenerPeriodNanoseconds: UInt64 = 500_000_000
    /// How long a pid that ran counts as recent, and how many are kept.
    static let listenerRecentNanoseconds: UInt64 = 2_000_000_000
    static let listenerRecentLimit = 256

    /// What a timer of the listening rules is for.
    enum ListenerRead {
        case cue, followUp, periodic
    }

    /// Opens the sock_diag socket, reads what listens now (start-up alerts: listeners not allowed, expected
    /// ones missing), and starts the timer. Does nothing without listening rules.
    func startListening() {
        guard listening.isActive else { return }
        do {
            listening.diag = try SocketDiag(timeoutMilliseconds: 1000)
        } catch {
            logger.error(
                "\(error) The \(listening.rules.count) listening rule(s) do not run.",
                metadata: ["rule.name": "\(listening.rules.map(\.rule.id).joined(separator: ","))"]
            )
            return
        }
        readListeners(startUp: true)
        schedule(.listeners(.periodic), at: Clock.monotonicNanoseconds() + Self.listenerPeriodNanoseconds)
    }

    /// A process ran a program or was forked: remember it as a likely owner, and (for an exec) read the
    /// sockets soon. One check when no listening rule is loaded.
    func listenerCue(pid: Int32, executed: Bool) {
        guard listening.diag != nil else { return }
        let now = Clock.monotonicNanoseconds()
        if listening.recent.count >= Self.listenerRecentLimit { listening.recent.removeFirst() }
        listening.recent.append((pid, now))
        guard executed, !listening.cueScheduled else { return }
        listening.cueScheduled = true
        schedule(.listeners(.cue), at: now + Self.listenerCueNanoseconds)
    }

    /// A process exited: when it held a listener, read soon (an expected listener may have gone).
    func listenerOwnerExited(pid: Int32) {
        guard listening.diag != nil, listening.ownerPids.contains(pid), !listening.cueScheduled else { return }
        listening.cueScheduled = true
        schedule(.listeners(.cue), at: Clock.monotonicNanoseconds() + Self.listenerCueNanoseconds)
    }

    /// A listener timer fired.
    func listenerTimer(_ read: ListenerRead) {
        guard listening.diag != nil else { return }
        let now = Clock.monotonicNanoseconds()
        switch read {
        case .cue:
            listening.cueScheduled = false
            if !listening.followUpScheduled {
                listening.followUpScheduled = true
                schedule(.listeners(.followUp), at: now + Self.listenerFollowUpNanoseconds)
            }
        case .followUp:
            listening.followUpScheduled = false
        case .periodic:
            schedule(.listeners(.periodic), at: now + Self.listenerPeriodNanoseconds)
        }
        readListeners(startUp: false)
    }

    /// One read: the kernel's listeners compared with the known ones; new ones get owners and are judged,
    /// closed ones resolve their alerts, and `expect:` rules recount.
    func readListeners(startUp: Bool) {
        guard let diag = listening.diag else { return }
        let started = Clock.monotonicNanoseconds()
        let sockets: [ListeningSocket]
        do {
            sockets = try diag.listeners()
            if listening.failing {
                listening.failing = false
                logger.notice("Listening sockets can be read again")
            }
        } catch {
            if !listening.failing {
                listening.failing = true
                logger.error("\(error) Listening rules wait for the next read.")
            }
            return
        }
        var current: [ListenerKey: ListeningSocket] = [:]
        current.reserveCapacity(sockets.count)
        for socket in sockets { current[ListenerKey(socket)] = socket }
        let gone = listening.known.keys.filter { current[$0] == nil }
        let new = current.filter { listening.known[$0.key] == nil }
        guard startUp || !gone.isEmpty || !new.isEmpty else {
            finishRead(now: started)
            return
        }
        eventTime = started
        let owners = findOwners(of: new.values.map(\.inode), fullSearch: startUp)
        var added: [KnownListener] = []
        for (key, socket) in new {
            let listener = KnownListener(socket: socket, owners: owners[socket.inode] ?? [])
            listening.known[key] = listener
            added.append(listener)
        }
        // Deterministic order for alerts: by port, protocol, address.
        added.sort {
            ($0.socket.port, $0.socket.proto.rawValue, $0.socket.address, $0.socket.inode)
                < ($1.socket.port, $1.socket.proto.rawValue, $1.socket.address, $1.socket.inode)
        }
        var closed: [KnownListener] = []
        for key in gone {
            if let listener = listening.known.removeValue(forKey: key) { closed.append(listener) }
        }
        listening.ownerPids = Set(listening.known.values.flatMap { $0.owners.map(\.pid) })
        for index in listening.rules.indices {
            let rule = listening.rules[index]
            if let allow = rule.allow {
                for listener in closed where listening.firing[index]?.remove(ListenerKey(listener.socket)) != nil {
                    emitListener(index, state: .resolved, listener: listener, count: nil)
                }
                for listener in added
                where rule.scope.matches(listener.socket, owners: listener.owners)
                    && !allow.contains(where: { $0.matches(listener.socket, owners: listener.owners) })
                {
                    listening.firing[index, default: []].insert(ListenerKey(listener.socket))
                    emitListener(index, state: .firing, listener: listener, count: nil)
                }
            } else {
                let inScope = listening.known.values.filter { rule.scope.matches($0.socket, owners: $0.owners) }
                let firing = listening.expectFiring[index] ?? false
                if inScope.isEmpty && (startUp || !firing) {
                    listening.expectFiring[index] = true
                    emitListener(
                        index,
                        state: .firing,
                        listener: closed.first { rule.scope.matchesSocket($0.socket) },
                        count: 0
                    )
                } else if !inScope.isEmpty && (startUp || firing) {
                    listening.expectFiring[index] = false
                    let first = inScope.min { $0.socket.inode < $1.socket.inode }
                    if firing { emitListener(index, state: .resolved, listener: first, count: inScope.count) }
                }
            }
        }
        eventTime = 0
        finishRead(now: Clock.monotonicNanoseconds())
    }

    /// Ages out the recent pids; the rest stay for the follow-up read.
    private func finishRead(now: UInt64) {
        let horizon = now > Self.listenerRecentNanoseconds ? now - Self.listenerRecentNanoseconds : 0
        listening.recent.removeAll { $0.time < horizon }
    }

    /// The owners of `inodes`: the recent processes' descriptors first (newest first), then, for any
    /// still unowned, every process's. Each owner is read from /proc now (with its user and unit), or taken
    /// from the table when it is gone meanwhile.
    func findOwners(of inodes: [UInt64], fullSearch: Bool) -> [UInt64: [ProcessEntry]] {
        guard !inodes.isEmpty else { return [:] }
        let wanted = Set(inodes)
        var pids: [UInt64: [Int32]] = [:]
        if !fullSearch && !listening.recent.isEmpty {
            pids = SocketOwners.owners(of: wanted, among: listening.recent.reversed().map(\.pid))
        }
        let missing = wanted.subtracting(pids.keys)
        if !missing.isEmpty {
            pids.merge(SocketOwners.owners(of: missing)) { $0 + $1 }
        }
        var result: [UInt64: [ProcessEntry]] = [:]
        for (inode, owners) in pids {
            result[inode] = owners.compactMap { pid in
                ProcessEntry.capture(pid: pid, procfs: procfs, users: true, commandLine: false, cgroup: true)
                    ?? table[pid]
            }
        }
        return result
    }

    /// A listening rule fired or resolved. `listener` is the socket the alert is about (nil for an expected
    /// one missing since start-up); `count` is the number in scope for `expect:` rules.
    private func emitListener(_ index: Int, state: AlertState, listener: KnownListener?, count: Int?) {
        let compiled = listening.rules[index]
        let rule = compiled.rule
        let owner = listener?.owners.first
        let socket = listener?.socket
        let base = fields(rule, owner ?? ProcessEntry(pid: 0, parent: 0), event: "listening", exit: nil)
        let endpoint = socket.map { ListeningState.endpoint($0.address, String($0.port)) }
        let who = owner.map { "\($0.name.isEmpty ? "pid \($0.pid)" : $0.name) (pid \($0.pid))" } ?? "an unknown process"
        let status: String
        switch (compiled.allow != nil, state, socket, endpoint) {
        case (true, .firing, let socket?, let endpoint?):
            var named = who
            if let owner, !owner.executable.isEmpty {
                named = "\(owner.name) (pid \(owner.pid), \(Self.serverPath(owner.executable, root: settings.root)))"
            }
            status = "\(named) listens on \(socket.proto.rawValue) \(endpoint), which the allow list does not cover"
        case (true, _, let socket?, let endpoint?):
            status = "\(socket.proto.rawValue) \(endpoint) of \(who) is closed"
        case (false, .firing, _, _):
            status =
                "nothing listens on \(compiled.expected)" + (socket == nil ? "" : " (the last one, of \(who), closed)")
        case (false, _, let socket?, let endpoint?):
            status = "\(who) listens on \(socket.proto.rawValue) \(endpoint)"
        default:
            status = compiled.expected
        }
        let fields: (String) -> String? = { field in
            switch field {
            case "status": status
            case "proto": socket?.proto.rawValue ?? "(none)"
            case "address": socket?.address ?? "(none)"
            case "port": socket.map { String($0.port) } ?? "(none)"
            case "endpoint": endpoint ?? "(none)"
            case "inode": socket.map { String($0.inode) } ?? "(none)"
            case "count": count.map(String.init) ?? "(none)"
            case "expected": compiled.expected
            case "pid", "name", "exe", "user", "unit":
                owner == nil ? (socket == nil ? "(none)" : "unknown") : base(field)
            default: base(field)
            }
        }
        let message = rule.renderMessage(resolved: state == .resolved, fields)
        var labels = compiled.labels
        if let socket {
            labels["proto"] = socket.proto.rawValue
            labels["address"] = socket.address
            labels["port"] = String(socket.port)
            labels["inode"] = String(socket.inode)
        }
        if let owner {
            labels["pid"] = String(owner.pid)
            labels["process"] = owner.name
            if !owner.executable.isEmpty { labels["exe"] = Self.serverPath(owner.executable, root: settings.root) }
            if owner.realUser != .max { labels["user"] = displayUsers.userName(owner.realUser) }
            if let unit = owner.unit { labels["unit"] = unit }
        } else if socket != nil {
            labels["pid"] = "unknown"
        }
        let instance: String
        if compiled.allow != nil, let socket {
            instance = "listener:\(socket.proto.rawValue):\(endpoint ?? ""):\(socket.inode)"
        } else {
            instance = "expect"
        }
        outlet.sendRuleAlert(
            host: settings.host,
            rule: rule.id,
            severity: rule.severity.rawValue,
            instance: instance,
            state: state,
            version: "\(state.rawValue):\(socket?.inode ?? 0):\(Clock.monotonicNanoseconds())",
            kind: state == .firing
                ? (compiled.allow != nil ? "listening.unexpected" : "listening.missing") : "listening.resolved",
            path: nil,
            message: message,
            labels: labels,
            sinkMask: compiled.sinkMask,
            eventTime: eventTime
        )
    }
}
