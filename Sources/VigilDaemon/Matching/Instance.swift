import VigilCore
import VigilRules
import VigilSystem

/// One watched file: a concrete path named by a rule, or found by a rule's glob. It carries what Vigil
/// last knew about the file, so that every event is judged against the previous state.
final class Instance {
    /// What Vigil knows about the file's existence.
    enum Presence: Equatable {
        /// Not looked at yet.
        case unknown
        /// Exists, in this version.
        case present(FileIdentity)
        /// Known not to exist.
        case absent
    }

    /// The path as the rules name it (inside `--root`), e.g. `/etc/analytics/upload-service.conf`.
    let serverPath: String
    /// Index of the directory plan this instance belongs to.
    let directoryPlan: Int
    /// The last path component.
    let name: String
    /// Indices of the rules that watch this file.
    var rules: [Int]
    /// True when a config rule needs the content (a plain `file:` rule needs only `stat`).
    var needsContent: Bool
    /// Canonical server path after following symlinks, when known.
    var resolvedPath: String?
    /// `resolvedPath` on the host (inside `--root`), reused while no event says the name changed.
    var resolvedHostPath: String?
    var presence: Presence = .unknown
    /// Last parsed content, for config rules. Kept while the file is missing or unreadable.
    var snapshot: ConfigSnapshot?
    /// Hash of the bytes `snapshot` was parsed from: the same bytes are not parsed again.
    var contentHash: UInt64 = 0
    /// Per rule index: is the state rule's condition true (firing)? Absent: not evaluated yet.
    var firing: [Int: Bool] = [:]
    /// The last problem logged for this file, so that one problem is logged once, not per event.
    var lastProblem: String?
    /// A deletion waiting to be confirmed (editors delete and recreate within microseconds).
    var deletionPending = false
    /// When the pending deletion was first noticed (monotonic nanoseconds).
    var deletionNoticed: UInt64 = 0
    /// How many times in a row a writer held the file open when Vigil wanted to read it.
    var busyRetries = 0
    /// Monotonic deadline of this file's pending timer (deletion settle or busy retry), 0 when none.
    var timerDeadline: UInt64 = 0
    /// Union of the inotify bits seen since the last evaluation; 0 means a rescan.
    var pendingMask: UInt32 = 0
    /// Queued for evaluation at the end of the current batch.
    var isDirty = false

    /// Alert fingerprints by rule index, computed on first use (they depend only on the rule and the path).
    private var fingerprints: [Int: String] = [:]

    /// The fingerprint of alerts of rule `rule` (whose id is `id`) about this file.
    func fingerprint(rule: Int, id: String) -> String {
        if let known = fingerprints[rule] { return known }
        let made = AlertIdentity.fingerprint(rule: id, instance: serverPath)
        fingerprints[rule] = made
        return made
    }

    init(serverPath: String, directoryPlan: Int, name: String, rules: [Int], needsContent: Bool) {
        self.serverPath = serverPath
        self.directoryPlan = directoryPlan
        self.name = name
        self.rules = rules
        self.needsContent = needsContent
    }
}

/// A directory that holds watched files: the exact names in it and the globs over its names.
struct DirectoryPlan {
    /// Server path of the directory as the rules write it.
    var serverPath: String
    /// Instances by exact file name.
    var exact: [String: Int] = [:]
    /// Glob patterns (NUL-terminated for `fnmatch`) with the rules that use them.
    var globs: [(pattern: [CChar], rules: [Int])] = []
    /// Canonical server path of the directory while it is watched directly, nil while it is missing.
    var watchedAs: String?
    /// The last problem logged for this directory.
    var lastProblem: String?
}

/// Why a watch descriptor exists.
enum WatchRole {
    /// The directory of a plan: events name its files.
    case files(plan: Int)
    /// The nearest existing ancestor of a missing plan directory: a new subdirectory may complete the path.
    case ancestor(plan: Int)
    /// The directory a symlinked file really lives in: events for `name` concern `instance`.
    case alias(instance: Int, name: String)
}

/// Key of the name index: a watch descriptor and the hash of a name in it. A hash collision only routes
/// an event to an instance that then re-reads its own file and finds nothing changed, so no byte
/// comparison is needed for correctness.
struct NameKey: Hashable {
    var watch: Int32
    var hash: UInt64
}
