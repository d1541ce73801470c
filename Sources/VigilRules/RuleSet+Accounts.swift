extension RuleSet {
    /// The user and group names the rules give that the server does not have, as errors at the names.
    ///
    /// Names are checked where the daemon resolves them when it starts: `owner:` and `group:` of mode and
    /// owner rules, of `create:` and of `olddir:`; `user:` of `process:` selectors and of the `to:` selectors
    /// of `restart`, `reload` and `postrotate:`. Ids are not checked (a uid needs no account). VigilRules
    /// reads no files, so the caller says which names exist and where they were looked up (`vigil check
    /// --root DIR` passes `DIR/etc/passwd` and `DIR/etc/group`).
    ///
    /// - Parameters:
    ///   - knownUser: whether the server has a user of that name.
    ///   - knownGroup: whether the server has a group of that name.
    ///   - passwdPath: the user database, as messages name it (`/etc/passwd`).
    ///   - groupPath: the group database, as messages name it (`/etc/group`).
    /// - Returns: one error per unknown name, in rule order:
    ///   `rules/a.yaml:4:10: error: user 'analytx' is not in /etc/passwd; use a user name from that file or
    ///   a uid`.
    public func accountProblems(
        knownUser: (String) -> Bool,
        knownGroup: (String) -> Bool,
        passwdPath: String,
        groupPath: String
    ) -> [RuleDiagnostic] {
        var all: [RuleDiagnostic] = []
        var problems: [RuleDiagnostic] = []
        func check(user reference: UserReference?) {
            guard case .name(let name, let location) = reference, !knownUser(name) else { return }
            problems.append(
                .error("user '\(name)' is not in \(passwdPath); use a user name from that file or a uid", at: location)
            )
        }
        func check(group reference: UserReference?) {
            guard case .name(let name, let location) = reference, !knownGroup(name) else { return }
            problems.append(
                .error("group '\(name)' is not in \(groupPath); use a group name from that file or a gid", at: location)
            )
        }
        func check(attributes: FileAttributes?) {
            check(user: attributes?.owner)
            check(group: attributes?.group)
        }
        func check(selector: ProcessSelector?) {
            for user in selector?.users ?? [] { check(user: user) }
        }
        for rule in rules {
            switch rule.subject {
            case .permissions(let subject):
                check(user: subject.owner)
                check(group: subject.group)
            case .rotate(let subject):
                check(attributes: subject.oldDirectory?.attributes)
                check(attributes: subject.create)
                check(selector: subject.postRotate?.target)
            case .process(let subject):
                check(selector: subject.selector)
            case .config, .file, .log, .pressure, .disk, .listening, .escalation:
                break
            }
            for action in rule.actions {
                switch action {
                case .restart(let service), .reload(let service): check(selector: service.target)
                case .alert, .sanitize, .chmod, .chown, .exec: break
                }
            }
            // Rules are in file order; within one, the names in the order written.
            all += problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
            problems.removeAll()
        }
        return all
    }
}
