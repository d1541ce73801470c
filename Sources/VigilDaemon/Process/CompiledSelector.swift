import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A `ProcessSelector` ready to test table entries: globs as C strings, executables placed inside the
/// root, user names turned into uids. Built once at start-up.
struct CompiledSelector {
    /// A glob as a NUL-terminated C string, with the literal text for the `comm` prefix rule.
    struct Glob {
        let pattern: [CChar]
        let literal: String?

        init(_ text: String) {
            pattern = Array(text.utf8CString)
            literal = text.contains(where: { "*?[\\".contains($0) }) ? nil : text
        }

        func matches(_ text: some StringProtocol) -> Bool {
            String(text).withCString { fnmatch(pattern, $0, 0) == 0 }
        }
    }

    let names: [Glob]
    let executables: [Glob]
    let commandLines: [Glob]
    let users: Set<UInt32>
    let parents: [Glob]
    let units: [String]
    let unitGlobs: [Glob]
    let cgroups: [Glob]
    let matchesEverything: Bool

    /// Whether matching needs the command line or the cgroup (read from `/proc` only when some rule does).
    var needsCommandLine: Bool { !commandLines.isEmpty }
    var needsCgroup: Bool { !units.isEmpty || !unitGlobs.isEmpty || !cgroups.isEmpty }
    var needsUsers: Bool { !users.isEmpty }

    /// Compiles `selector`; unknown user names are returned in `unknownUsers` (the caller reports them).
    init(_ selector: ProcessSelector, root: RootedPath, users database: UserDatabase, unknownUsers: inout [String]) {
        names = selector.names.map(Glob.init)
        // The kernel reports the executable as a host path: place each pattern inside the root. A literal
        // path is also resolved (symlinks followed inside the root), because the kernel reports the target.
        var executables: [Glob] = []
        for pattern in selector.executables {
            executables.append(Glob(Self.escapeGlob(root.root) + pattern))
            if !pattern.contains(where: { "*?[\\".contains($0) }),
                let resolved = try? root.resolve(pattern), resolved.missing.isEmpty, resolved.existing != pattern
            {
                executables.append(Glob(Self.escapeGlob(root.hostPath(resolved.existing))))
            }
        }
        self.executables = executables
        commandLines = selector.commandLines.map(Glob.init)
        var uids: Set<UInt32> = []
        for user in selector.users {
            if let uid = database.uid(user, problems: &unknownUsers) { uids.insert(uid) }
        }
        users = uids
        parents = selector.parents.map(Glob.init)
        units = selector.units.filter { !$0.contains(where: { "*?[\\".contains($0) }) }
        unitGlobs = selector.units.filter { $0.contains(where: { "*?[\\".contains($0) }) }.map(Glob.init)
        cgroups = selector.cgroups.map(Glob.init)
        matchesEverything = selector.matchesEverything
    }

    /// True when `entry` matches every given field. `parent` looks up the parent's entry.
    func matches(_ entry: ProcessEntry, parent: (Int32) -> ProcessEntry?) -> Bool {
        if matchesEverything { return true }
        if !names.isEmpty && !names.contains(where: { Self.nameMatches($0, entry) }) { return false }
        if !executables.isEmpty {
            guard !entry.executable.isEmpty, executables.contains(where: { $0.matches(entry.executable) }) else {
                return false
            }
        }
        if !commandLines.isEmpty && !commandLines.contains(where: { $0.matches(entry.commandLine) }) { return false }
        if !users.isEmpty && !users.contains(entry.realUser) && !users.contains(entry.effectiveUser) { return false }
        if !parents.isEmpty {
            guard let parentEntry = parent(entry.parent), parents.contains(where: { Self.nameMatches($0, parentEntry) })
            else { return false }
        }
        if !units.isEmpty || !unitGlobs.isEmpty {
            guard let unit = entry.unit else { return false }
            let bare = unit.hasSuffix(".service") ? String(unit.dropLast(8)) : unit
            if !units.contains(where: { $0 == unit || $0 == bare }) && !unitGlobs.contains(where: { $0.matches(unit) })
            {
                return false
            }
        }
        if !cgroups.isEmpty && !cgroups.contains(where: { $0.matches(entry.cgroup) }) { return false }
        return true
    }

    /// A name matches the kernel's `comm` or the executable's base name. `comm` is cut
    /// to 15 bytes, so a longer literal name also matches a 15-byte `comm` that is its prefix (a process
    /// gone before its executable could be read still has its `comm`).
    static func nameMatches(_ glob: Glob, _ entry: ProcessEntry) -> Bool {
        if glob.matches(entry.comm) || (!entry.executableName.isEmpty && glob.matches(entry.executableName)) {
            return true
        }
        if let literal = glob.literal, literal.utf8.count > 15, entry.comm.utf8.count == 15,
            literal.utf8.starts(with: entry.comm.utf8)
        {
            return true
        }
        return false
    }

    /// Escapes glob characters in a literal path prefix.
    static func escapeGlob(_ text: String) -> String {
        var out = ""
        for character in text {
            if "*?[\\".contains(character) { out.append("\\") }
            out.append(character)
        }
        return out
    }
}
