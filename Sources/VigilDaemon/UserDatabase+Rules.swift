import VigilRules
import VigilSystem

extension UserDatabase {
    /// The uid a rule's `owner:` (or `user:`) names; an unknown name adds an error at its position to
    /// `problems` and gives nil. The wording is `RuleSet.accountProblems`' (what `vigil check` prints).
    func uid(_ reference: UserReference?, problems: inout [String]) -> UInt32? {
        switch reference {
        case nil: return nil
        case .id(let uid): return uid
        case .name(let name, let location):
            if let uid = uids[name] { return uid }
            problems.append(
                "\(location): error: user '\(name)' is not in \(passwdPath); use a user name from that file or a uid"
            )
            return nil
        }
    }

    /// The gid a rule's `group:` names; an unknown name adds an error at its position to `problems`.
    func gid(_ reference: UserReference?, problems: inout [String]) -> UInt32? {
        switch reference {
        case nil: return nil
        case .id(let gid): return gid
        case .name(let name, let location):
            if let gid = gids[name] { return gid }
            problems.append(
                "\(location): error: group '\(name)' is not in \(groupPath); use a group name from that file or a gid"
            )
            return nil
        }
    }
}
