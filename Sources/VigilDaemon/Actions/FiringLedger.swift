import SystemPackage
import VigilCore
import VigilSystem

/// The conditions that are firing now, by fingerprint, shared by every producer's outlet: what lets a
/// restart or a reload go unnoticed by the people paged.
///
/// Every firing and resolved record passes `admit` (events do not). A condition that was firing before a
/// restart (read back from `firing.state`) or before a reload rebuilt its watcher is **inherited**: the
/// first firing record of its fingerprint afterwards is the watcher finding it still true, and is not sent
/// again. An inherited condition that nothing asserts again within its rule's confirmation time cleared
/// while Vigil was not looking: `sweep` hands it back, and the daemon sends its resolution.
///
/// The file is text, one condition per line, replaced atomically:
/// ```
/// vigil-firing 1
/// <fingerprint> <since-unix-s> <rule> \t <severity> \t <kind> \t <path or -> \t <message>
/// ```
final class FiringLedger: Sendable {
    /// One firing condition.
    struct Condition: Sendable, Equatable {
        var fingerprint: String
        var rule: String
        var severity: String
        var kind: String
        var path: String?
        /// The firing record's message (already free of secrets).
        var message: String
        /// Wall-clock seconds since the epoch when it started firing.
        var sinceSeconds: Int64
    }

    private struct State {
        var firing: [String: Condition] = [:]
        /// Fingerprints carried over a restart or a reload, not asserted again yet.
        var inherited: Set<String> = []
        /// Bumped on every change, so the saver knows when to write.
        var changes: UInt64 = 0
    }

    private let state = Locked(State())
    /// Rung when the set of firing conditions changed, so the daemon's thread saves it (not the producer).
    let changed: EventFD

    init() throws(Errno) {
        changed = try EventFD()
    }

    /// False when `record` must not be sent: the first firing record of an inherited condition (still
    /// true). Notes firing and resolved records; events pass untouched.
    func admit(_ record: AlertRecord) -> Bool {
        state.withLock { state in
            switch record.state {
            case .event:
                return true
            case .firing:
                if state.inherited.remove(record.fingerprint) != nil { return false }
                if state.firing[record.fingerprint] == nil {
                    state.firing[record.fingerprint] = Condition(
                        fingerprint: record.fingerprint,
                        rule: record.rule,
                        severity: record.severity,
                        kind: record.kind,
                        path: record.path,
                        message: record.message,
                        sinceSeconds: record.timeSeconds
                    )
                    state.changes &+= 1
                    changed.ring()
                }
                return true
            case .resolved:
                state.inherited.remove(record.fingerprint)
                if state.firing.removeValue(forKey: record.fingerprint) != nil {
                    state.changes &+= 1
                    changed.ring()
                }
                return true
            }
        }
    }

    /// The conditions firing now, oldest first.
    func conditions() -> [Condition] {
        state.withLock { Array($0.firing.values) }.sorted {
            ($0.sinceSeconds, $0.fingerprint) < ($1.sinceSeconds, $1.fingerprint)
        }
    }

    /// A number that changes whenever the set of firing conditions does.
    var changeCount: UInt64 { state.withLock { $0.changes } }

    /// Takes the conditions read back from the state file at start-up: firing, and inherited.
    func restore(_ conditions: [Condition]) {
        state.withLock { state in
            for condition in conditions {
                state.firing[condition.fingerprint] = condition
                state.inherited.insert(condition.fingerprint)
            }
        }
    }

    /// Marks the firing conditions of `rules` inherited (before their watcher is rebuilt by a reload, which
    /// judges them again).
    func inherit(rules: Set<String>) {
        state.withLock { state in
            for (fingerprint, condition) in state.firing where rules.contains(condition.rule) {
                state.inherited.insert(fingerprint)
            }
        }
    }

    /// Removes and returns the inherited conditions of `rules` that nothing asserted again: they cleared
    /// while Vigil was not looking, and the caller sends their resolution.
    func sweep(rules: Set<String>) -> [Condition] {
        state.withLock { state in
            var swept: [Condition] = []
            for fingerprint in state.inherited {
                guard let condition = state.firing[fingerprint] else { continue }
                if !rules.contains(condition.rule) { continue }
                swept.append(condition)
            }
            for condition in swept {
                state.inherited.remove(condition.fingerprint)
                state.firing.removeValue(forKey: condition.fingerprint)
            }
            if !swept.isEmpty { state.changes &+= 1 }
            return swept.sorted { $0.fingerprint < $1.fingerprint }
        }
    }

    // MARK: The state file

    static let header = "vigil-firing 1"

    /// The conditions firing now, as the state file's text.
    func encoded() -> String {
        var out = Self.header + "\n"
        for condition in conditions() {
            out += "\(condition.fingerprint) \(condition.sinceSeconds) \(StateText.escape(condition.rule))\t"
            out += "\(StateText.escape(condition.severity))\t\(StateText.escape(condition.kind))\t"
            out += "\(condition.path.map(StateText.escape) ?? "-")\t\(StateText.escape(condition.message))\n"
        }
        return out
    }

    /// Parses a state file; nil when it is not one.
    static func decode(_ text: String) -> [Condition]? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard lines.popFirst() == Substring(header) else { return nil }
        var conditions: [Condition] = []
        for line in lines {
            let head = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            guard head.count == 3, let since = Int64(head[1]) else { return nil }
            let fields = head[2].split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 5 else { return nil }
            conditions.append(
                Condition(
                    fingerprint: String(head[0]),
                    rule: StateText.unescape(fields[0]),
                    severity: StateText.unescape(fields[1]),
                    kind: StateText.unescape(fields[2]),
                    path: fields[3] == "-" ? nil : StateText.unescape(fields[3]),
                    message: StateText.unescape(fields[4]),
                    sinceSeconds: since
                )
            )
        }
        return conditions
    }
}
