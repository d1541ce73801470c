/// Users and groups read from a root's `etc/passwd` and `etc/group` (`man 5 passwd`, `man 5 group`), so
/// that rule names resolve against the server the rules describe, also under `--root`. No NSS: a host
/// with users in LDAP has them in the NSS cache, not here; rules can name such users by number.
public struct UserDatabase: Sendable {
    /// User name → uid.
    public private(set) var uids: [String: UInt32] = [:]
    /// uid → user name (the first name listed for it).
    public private(set) var userNames: [UInt32: String] = [:]
    /// Group name → gid.
    public private(set) var gids: [String: UInt32] = [:]
    /// gid → group name (the first name listed for it).
    public private(set) var groupNames: [UInt32: String] = [:]
    /// Where the users were read from, for messages.
    public let passwdPath: String
    /// Where the groups were read from, for messages.
    public let groupPath: String

    /// Reads `root/etc/passwd` and `root/etc/group`; missing files give an empty database.
    public init(root: String) {
        let base = root == "/" ? "" : root
        passwdPath = base + "/etc/passwd"
        groupPath = base + "/etc/group"
        for fields in Self.records(ProcFile.readText(passwdPath, limit: 4 << 20)) where fields.count >= 3 {
            guard let uid = UInt32(fields[2]) else { continue }
            if uids[String(fields[0])] == nil { uids[String(fields[0])] = uid }
            if userNames[uid] == nil { userNames[uid] = String(fields[0]) }
        }
        for fields in Self.records(ProcFile.readText(groupPath, limit: 4 << 20)) where fields.count >= 3 {
            guard let gid = UInt32(fields[2]) else { continue }
            if gids[String(fields[0])] == nil { gids[String(fields[0])] = gid }
            if groupNames[gid] == nil { groupNames[gid] = String(fields[0]) }
        }
    }

    /// A name for a uid: the user name, or the number.
    public func userName(_ uid: UInt32) -> String { userNames[uid] ?? String(uid) }

    /// A name for a gid: the group name, or the number.
    public func groupName(_ gid: UInt32) -> String { groupNames[gid] ?? String(gid) }

    /// Adds the users of `other` that this database lacks (the host's users behind a `--root` sandbox's,
    /// for naming the host's processes).
    public mutating func fillGaps(from other: UserDatabase) {
        for (uid, name) in other.userNames where userNames[uid] == nil { userNames[uid] = name }
    }

    private static func records(_ text: String?) -> [[Substring]] {
        guard let text else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard !line.hasPrefix("#"), !line.isEmpty else { return nil }
            return line.split(separator: ":", omittingEmptySubsequences: false)
        }
    }
}
