import VigilRules

#if canImport(Glibc)
import Glibc
#endif

/// Which mode and owner rule governs a path, when several rules' paths and trees overlap (the seed's
/// `/var/log/analytics` tree at 0750 and its `alerts/` subtree at 0700).
///
/// A rule *claims* the paths its `file:` entries name (an exact name or a glob in a directory) and, with
/// `recursive`, everything below them. The most specific claim wins: the deepest named path first; at the
/// same depth an exact name before a glob, and a named path before one inherited from a tree above; then the
/// rule written first. Paths are canonical server paths (symlinks of the rule paths resolved inside the
/// root at start-up), so one file has one answer.
struct PermissionClaims {
    struct Claim {
        /// Index of the rule in the watcher's compiled rules.
        let rule: Int
        /// Canonical server directory of the claimed name.
        let directory: String
        let name: NamePattern
        let recursive: Bool
        /// Components of `directory` (0 for `/`).
        let depth: Int
    }

    /// How well a claim matches: deeper first, then exact over glob over inherited, then earlier rules.
    struct Score: Comparable {
        let depth: Int
        let strength: Int
        let rule: Int

        static func < (lhs: Score, rhs: Score) -> Bool {
            if lhs.depth != rhs.depth { return lhs.depth < rhs.depth }
            if lhs.strength != rhs.strength { return lhs.strength < rhs.strength }
            return lhs.rule > rhs.rule
        }
    }

    /// What a directory's entries are governed by, computed once per watched directory.
    struct DirectoryView {
        /// Claims whose directory is this directory (exact names and globs in it).
        let direct: [Int]
        /// The best tree claim covering every entry of this directory (index into `claims`), if any.
        let inherited: Int?
        /// True when the directory itself needs a watch: it has direct claims or its entries are covered.
        var needsWatch: Bool { !direct.isEmpty || inherited != nil }
    }

    let claims: [Claim]

    init(claims: [Claim]) { self.claims = claims }

    /// Directories that claims name, deduplicated, shallowest first.
    var claimDirectories: [String] {
        var seen: Set<String> = []
        var out: [String] = []
        for claim in claims.sorted(by: { $0.depth < $1.depth }) where seen.insert(claim.directory).inserted {
            out.append(claim.directory)
        }
        return out
    }

    /// The view of directory `path` (canonical server path).
    func view(of path: String) -> DirectoryView {
        var direct: [Int] = []
        var best: (index: Int, score: Score)?
        for (index, claim) in claims.enumerated() {
            if claim.directory == path { direct.append(index) }
            guard claim.recursive, let first = Self.firstComponent(of: path, below: claim.directory) else { continue }
            guard Self.matches(claim.name, first) else { continue }
            let score = Score(depth: claim.depth + 1, strength: 0, rule: claim.rule)
            if best == nil || best!.score < score { best = (index, score) }
        }
        return DirectoryView(direct: direct, inherited: best?.index)
    }

    /// The claim governing the entry `name` of a directory with `view`, if any (index into `claims`).
    func governing(_ name: String, in view: DirectoryView, directoryDepth: Int) -> Int? {
        var best: (index: Int, score: Score)?
        for index in view.direct {
            let claim = claims[index]
            let strength: Int
            switch claim.name {
            case .exact(let exact):
                guard exact == name else { continue }
                strength = 2
            case .glob(let glob):
                guard Self.matches(.glob(glob), name) else { continue }
                strength = 1
            }
            let score = Score(depth: directoryDepth + 1, strength: strength, rule: claim.rule)
            if best == nil || best!.score < score { best = (index, score) }
        }
        return best?.index ?? view.inherited
    }

    /// The first component of `path` below `directory`, or nil when `path` is not strictly below it.
    static func firstComponent(of path: String, below directory: String) -> Substring? {
        let prefix = directory == "/" ? "/" : directory + "/"
        guard path.hasPrefix(prefix), path.utf8.count > prefix.utf8.count else { return nil }
        let rest = path.dropFirst(prefix.count)
        return rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first
    }

    static func matches(_ pattern: NamePattern, _ name: Substring) -> Bool {
        matches(pattern, String(name))
    }

    static func matches(_ pattern: NamePattern, _ name: String) -> Bool {
        switch pattern {
        case .exact(let exact): return exact == name
        // FNM_PERIOD: `*` does not match a leading dot, as the shell's globs do not.
        case .glob(let glob): return fnmatch(glob, name, FNM_PERIOD) == 0
        }
    }

    /// Components of a canonical path (`/` has none).
    static func depth(of path: String) -> Int {
        path == "/" ? 0 : path.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "/") ? 1 : 0) }
    }
}
