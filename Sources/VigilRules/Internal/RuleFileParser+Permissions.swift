internal import Yams

extension RuleFileParser {
    /// Keys that make a `file:` rule a mode and owner rule.
    static let permissionKeys = ["mode", "file_mode", "dir_mode", "owner", "group"]
    /// The permission keys that give a mode (what `chmod` restores).
    static let modeKeys = ["mode", "file_mode", "dir_mode"]
    /// Rule keys that only mode and owner rules take.
    static let permissionOnlyKeys = ["recursive"] + permissionKeys

    /// A mode and owner rule's parts as parsed.
    struct PermissionDraft {
        /// The subject; nil when any part had errors.
        var subject: PermissionSubject?
        /// Whether `mode:`, `file_mode:` or `dir_mode:` is written (also with a bad value): `chmod` needs one.
        var hasMode = false
        /// Whether `owner:` or `group:` is written (also with a bad value): `chown` needs one.
        var hasOwner = false
    }

    /// A `chmod` or `chown` in `then:`, for the checks against the rule's kind and keys.
    struct PermissionActionUse {
        /// `chmod` or `chown`.
        var name: String
        /// The action's name in the file: errors point there.
        var location: SourceLocation
    }

    /// Parses the `file:` paths, `recursive:`, the modes and the owner of a mode and owner rule.
    mutating func parsePermissionSubject(_ keys: [String: (key: Node, value: Node)]) -> PermissionDraft {
        let errorsBefore = errorCount
        var draft = PermissionDraft()
        draft.hasMode = Self.modeKeys.contains { keys[$0] != nil }
        draft.hasOwner = keys["owner"] != nil || keys["group"] != nil
        let entries = keys["file"].flatMap {
            parsePathList($0.value, key: "file", example: "/var/log/analytics", allowRecursive: true)
        }
        let explicit = keys["recursive"].flatMap { parseBool($0.value, key: "recursive") }
        var recursive = explicit ?? false
        if let entries, let starred = entries.first(where: \.recursive) {
            if explicit == false {
                error(
                    "path '\(starred.path.raw)' ends with /**, which means recursive, but the rule says recursive: false; remove /** or recursive: false",
                    at: starred.node
                )
            } else if explicit == nil, let plain = entries.first(where: { !$0.recursive }) {
                error(
                    "path '\(plain.path.raw)' has no /** but '\(starred.path.raw)' has; a rule is recursive for all its paths or for none, so add /** to every path (or write recursive: true), or split the rule",
                    at: plain.node
                )
            }
            recursive = true
        }
        let mode = keys["mode"].flatMap { parseMode($0.value, key: "mode") }
        let fileMode = keys["file_mode"].flatMap { parseMode($0.value, key: "file_mode") }
        let directoryMode = keys["dir_mode"].flatMap { parseMode($0.value, key: "dir_mode") }
        let owner = keys["owner"].flatMap { parseAccount($0.value, key: "owner") }
        let group = keys["group"].flatMap { parseAccount($0.value, key: "group") }
        guard errorCount == errorsBefore, let entries else { return draft }
        draft.subject = PermissionSubject(
            paths: entries.map(\.path),
            recursive: recursive,
            fileMode: fileMode ?? mode,
            directoryMode: directoryMode ?? mode,
            owner: owner,
            group: group
        )
        return draft
    }

    /// Parses a file mode (`mode:`, `file_mode:`, `dir_mode:`, and `chmod:` of `sweep:`): three or four octal
    /// digits, quoted or not (`0640`, `"0640"`, `750`, `2750`), with the setuid, setgid and sticky bits.
    mutating func parseMode(_ node: Node, key: String) -> UInt32? {
        let example = key == "dir_mode" ? "0750" : key == "chmod" ? "0600" : "0640"
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error(
                "'\(key)' is \(node.kindDescription); expected an octal mode, write e.g. \(key): \"\(example)\"",
                at: node
            )
            return nil
        }
        let text = scalar.string
        guard Self.isOctalMode(text), let mode = UInt32(text, radix: 8) else {
            let octal = !text.isEmpty && text.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }
            if octal {
                error(
                    "\(key) '\(text)' has \(text.utf8.count) digits; a mode has 3 or 4 octal digits, write e.g. \(key): \"\(example)\"",
                    at: node
                )
            } else {
                error("\(key) '\(text)' is not octal; write e.g. \(key): \"\(example)\"", at: node)
            }
            return nil
        }
        return mode
    }

    /// Parses `owner:` or `group:` (also of `create:` and `olddir:`): one name or id.
    mutating func parseAccount(_ node: Node, key: String) -> UserReference? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            let (account, idName, example) =
                key == "group" ? ("group", "gid", "log-readers") : ("user", "uid", "analytics")
            error(
                "'\(key)' is \(node.kindDescription); expected a \(account) name such as \(example), or a \(idName) such as 1001",
                at: node
            )
            return nil
        }
        return accountReference(scalar.string, at: node, key: key)
    }

    /// Reports `recursive:`, `mode:`, `file_mode:`, `dir_mode:`, `owner:` and `group:` on rules that are not
    /// mode and owner rules (a `file:` rule with a permission key is one, so only its `recursive:` can be
    /// reported here).
    mutating func reportPermissionOnlyKeys(_ keys: [String: (key: Node, value: Node)], kind: RuleKind) {
        for name in Self.permissionOnlyKeys {
            guard let (key, _) = keys[name] else { continue }
            switch (kind, name) {
            case (.file, _):
                error(
                    "'recursive' applies only to mode and owner rules; add mode:, owner: or group:, or remove recursive:",
                    at: key
                )
            case (.rotate, "recursive"):
                error(
                    "'recursive' does not apply to rotate rules; list the logs, or use a glob such as /var/log/app/*.log",
                    at: key
                )
            case (.rotate, _):
                let attribute = Self.modeKeys.contains(name) ? "mode" : name
                error(
                    "'\(name)' does not apply to rotate rules; write create: { \(attribute): … } for the new log (olddir: { \(attribute): … } for the archive directory), or a file: rule with \(name): for the logs",
                    at: key
                )
            default:
                error(
                    "'\(name)' does not apply to \(kind.name) rules; it belongs to mode and owner rules (file: with mode:, owner: or group:)",
                    at: key
                )
            }
        }
    }

    /// Reports `chmod` and `chown` on rules other than mode and owner rules, without the keys they restore,
    /// or listed twice.
    ///
    /// `kind` nil: the rule's subject is unknown (already reported); only the repeats are checked.
    mutating func checkPermissionActions(_ uses: [PermissionActionUse], kind: RuleKind?, draft: PermissionDraft) {
        var seen: Set<String> = []
        for use in uses where !seen.insert(use.name).inserted {
            error("action '\(use.name)' is listed twice in then:; remove one of them", at: use.location)
        }
        guard let kind else { return }
        for use in uses {
            let name = use.name
            switch kind {
            case .permissions:
                if name == "chmod" && !draft.hasMode {
                    error(
                        "action 'chmod' needs the mode to restore; add mode: (or file_mode:, dir_mode:), or remove chmod",
                        at: use.location
                    )
                } else if name == "chown" && !draft.hasOwner {
                    error(
                        "action 'chown' needs the owner to restore; add owner: or group:, or remove chown",
                        at: use.location
                    )
                }
            case .rotate:
                error(
                    "action '\(name)' does not apply to rotate rules; a rotation sets modes and owners itself: use create: { mode: …, owner: … } for the new log, olddir: for the archive directory and sweep: { chmod: … } for old archives",
                    at: use.location
                )
            default:
                let key = name == "chmod" ? "mode:" : "owner: or group:"
                error(
                    "action '\(name)' does not apply to \(kind.name) rules; \(name) restores what a mode and owner rule says, so add a rule with file: and \(key)",
                    at: use.location
                )
            }
        }
    }
}
