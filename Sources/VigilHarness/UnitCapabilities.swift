public import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Runs the daemons the tests start with exactly the privileges a systemd unit grants: the unit's
/// `CapabilityBoundingSet=` and `NoNewPrivileges=`, applied with util-linux's `setpriv` in front of the
/// command line. A capability the unit forgets then fails a test instead of a production host.
///
/// Switched on by `$VIGIL_UNIT_CAPABILITIES=UNIT-FILE` (e.g. `systemd/vigil.service`, relative to the
/// current directory); only the child is limited, the test process keeps its privileges (it mounts tmpfs and
/// makes cgroups).
public struct UnitCapabilities: Sendable, Equatable {
    /// The bounding set the unit leaves (`CapabilityBoundingSet=`; every capability when it has none).
    public let boundingSet: CapabilitySet
    /// `NoNewPrivileges=yes` in the unit.
    public let noNewPrivileges: Bool
    /// The unit file read.
    public let unitPath: String

    /// The environment variable naming the unit file.
    public static let environmentVariable = "VIGIL_UNIT_CAPABILITIES"

    /// The unit named by `$VIGIL_UNIT_CAPABILITIES`, or nil when it is unset or empty. Throws when the file
    /// cannot be read or names an unknown capability.
    public static func fromEnvironment() throws(HarnessError) -> UnitCapabilities? {
        guard let raw = getenv(environmentVariable) else { return nil }
        let path = String(cString: raw)
        return path.isEmpty ? nil : try UnitCapabilities(unitPath: path)
    }

    /// Reads `unitPath`. Several `CapabilityBoundingSet=` lines combine as systemd combines them: each adds
    /// to the set, a `~` list removes from all capabilities, an empty assignment resets.
    public init(unitPath: String) throws(HarnessError) {
        guard let text = ProcFile.readText(unitPath, limit: 1 << 20) else {
            throw HarnessError(
                "Failed to read the unit file '\(unitPath)' named by $\(Self.environmentVariable); fix the path (relative to \(Self.currentDirectory()))"
            )
        }
        var set: CapabilitySet?
        var noNewPrivileges = false
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingSpaces()
            if line.hasPrefix("NoNewPrivileges=") {
                noNewPrivileges = ["yes", "true", "1", "on"].contains(
                    line.dropFirst("NoNewPrivileges=".count).lowercased()
                )
            }
            guard line.hasPrefix("CapabilityBoundingSet=") else { continue }
            var value = Substring(line.dropFirst("CapabilityBoundingSet=".count))
            if value.isEmpty {
                set = CapabilitySet()
                continue
            }
            let inverted = value.hasPrefix("~")
            if inverted { value = value.dropFirst() }
            let names = value.split(separator: " ").map(String.init)
            guard let listed = CapabilitySet(names: names) else {
                throw HarnessError(
                    "\(unitPath):\(index + 1): unknown capability in '\(line)'; use names from capabilities(7)"
                )
            }
            // systemd's config_parse_capability_set: the first assignment sets, later ones add.
            let sum = inverted ? Self.all.subtracting(listed) : listed
            set = set.map { $0.union(sum) } ?? sum
        }
        boundingSet = set ?? Self.all
        self.noNewPrivileges = noNewPrivileges
        self.unitPath = unitPath
    }

    /// Every capability this kernel knows (`/proc/sys/kernel/cap_last_cap`).
    public static var all: CapabilitySet {
        let last = ProcFile.readInteger("/proc/sys/kernel/cap_last_cap") ?? 40
        return CapabilitySet(rawValue: last >= 63 ? .max : (UInt64(1) << UInt64(last + 1)) - 1)
    }

    /// The command prefix: `setpriv --bounding-set -all,+chown,… --inh-caps -all [--no-new-privs] --`.
    /// setpriv (util-linux) changes the bounding set and execs the command in the same process, so the
    /// daemon keeps the pid the test spawned.
    public var launcher: [String] {
        let names = boundingSet.numbers.map { "+" + CapabilitySet.name(of: $0).dropFirst(4).lowercased() }
        return ["/usr/bin/setpriv", "--bounding-set", (["-all"] + names).joined(separator: ","), "--inh-caps", "-all"]
            + (noNewPrivileges ? ["--no-new-privs"] : []) + ["--"]
    }

    /// True when setpriv is installed (Debian's util-linux).
    public static var setprivAvailable: Bool { access("/usr/bin/setpriv", X_OK) == 0 }

    private static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate func trimmingSpaces() -> Substring {
        var s = self
        while let first = s.first, first == " " || first == "\t" { s = s.dropFirst() }
        while let last = s.last, last == " " || last == "\t" { s = s.dropLast() }
        return s
    }
}
