internal import Yams

/// Turns one rule file's YAML into declarations, reporting every problem it finds on the way.
///
/// The parser never stops at the first error: each item, key and value is checked on its own, and a
/// value that is wrong is left out without further complaints about what depended on it. Checks that
/// need every file (duplicate ids, sink references) are left to `RuleCompiler`.
struct RuleFileParser {
    /// A rule as parsed: the compiled rule when it had no errors, plus what cross-file checks need.
    struct RuleDraft {
        /// The id as written (possibly malformed, which was reported).
        var id: String
        /// Where the id value is: duplicates are reported there.
        var idLocation: SourceLocation
        /// Where the item starts (its `rule:` key): "first defined at" points there.
        var location: SourceLocation
        /// The compiled rule; nil when the rule had errors.
        var rule: Rule?
        /// Sinks named in `alert: [...]`, checked once every file is read.
        var sinkReferences: [(name: String, location: SourceLocation)]
        /// List names in `allow:`, checked and expanded once every file is read.
        var listReferences: [(name: String, location: SourceLocation)] = []
        /// Where `override: true` is, when the rule says it replaces a shipped rule with its id.
        var override: SourceLocation?
    }

    /// A sink as parsed; `spec` is nil when it had errors.
    struct SinkDraft {
        /// The name as written.
        var name: String
        /// Where the name value is: duplicates are reported there.
        var nameLocation: SourceLocation
        /// Where the item starts.
        var location: SourceLocation
        /// The compiled sink; nil when it had errors.
        var spec: SinkSpec?
        /// Where `override: true` is, when the sink replaces a shipped sink with its name.
        var override: SourceLocation?
    }

    /// A named list as parsed; `items` is nil when it had errors.
    struct ListDraft {
        /// The name as written.
        var name: String
        /// Where the name value is: duplicates are reported there.
        var nameLocation: SourceLocation
        /// Where the item starts.
        var location: SourceLocation
        /// The entries; nil when the list had errors.
        var items: [String]?
        /// Where each entry is, for errors found when a rule uses the list.
        var itemLocations: [SourceLocation] = []
        /// Where `override: true` is, when the list replaces a shipped list with its name.
        var override: SourceLocation?
    }

    /// A shipped rule a local file turns off with `- disable: ID` or `- disable: [ID, ...]`.
    struct DisableDraft {
        /// The rule id named.
        var id: String
        /// Where the id is written.
        var location: SourceLocation
    }

    /// The item kinds, told apart by an item's first key.
    static let itemKinds = ["rule", "sink", "list", "disable"]
    /// Keys a rule may have.
    static let ruleKeys =
        [
            "rule", "description", "severity", "config", "file", "process", "log", "rotate", "format", "when",
            "changes", "on", "expect", "exit", "grace", "allow", "match", "caseless", "from", "count", "recursive",
            "mode", "file_mode", "dir_mode", "owner", "group", "size", "every", "keep", "max_age", "dateext",
            "olddir", "compress", "compress_level", "delaycompress", "copytruncate", "if_empty", "create",
            "postrotate", "sweep", "message", "resolved_message", "then", "enabled", "tags", "dedup", "remind",
            "pressure", "disk", "listening", "escalation", "service", "override",
        ] + pressureOnlyKeys + diskOnlyKeys + listeningOnlyKeys.filter { !processOnlyKeys.contains($0) }
        + escalationOnlyKeys + processThresholdKeys.filter { !diskOnlyKeys.contains($0) }
    /// Rule subjects available in this version. A `file:` rule with any of `permissionKeys` is a mode and
    /// owner rule.
    static let subjectKeys = [
        "config", "file", "process", "log", "rotate", "pressure", "disk", "listening", "escalation", "service",
    ]
    /// Rule kinds that are part of the language design but not implemented yet.
    static let plannedKinds: [String] = []
    /// Keys a sink may have, of any type (`sinkTypeKeys` says which type takes which).
    static let sinkKeys = [
        "sink", "type", "min_severity", "path", "timeout", "retry", "spool", "heartbeat", "socket", "facility",
        "app_name", "to", "from", "sendmail", "subject", "body", "digest", "url", "headers", "secret_file",
        "signature_header", "labels", "event_ttl", "resend", "generator_url", "override",
    ]
    /// Keys a list may have.
    static let listKeys = ["list", "items", "override"]

    /// The file name used in diagnostics.
    let file: String
    /// Everything reported so far, in the order found.
    var diagnostics: [RuleDiagnostic] = []
    /// Rules in file order.
    var rules: [RuleDraft] = []
    /// Sinks in file order.
    var sinks: [SinkDraft] = []
    /// Named lists in file order.
    var lists: [ListDraft] = []
    /// Shipped rules turned off, in file order.
    var disables: [DisableDraft] = []
    /// The file's lines, split at line feeds: a pattern's column offset is checked against what was written.
    var sourceLines: [Substring] = []

    /// Creates a parser for the file shown as `file` in diagnostics.
    init(file: String) {
        self.file = file
    }

    /// The number of errors reported so far (to tell whether a part added any).
    var errorCount: Int { diagnostics.count { $0.severity == .error } }

    /// Reports an error at a node.
    mutating func error(_ message: String, at node: Node) {
        diagnostics.append(.error(message, at: node.location(in: file)))
    }

    /// Reports an error at a location.
    mutating func error(_ message: String, at location: SourceLocation) {
        diagnostics.append(.error(message, at: location))
    }

    /// Reports a warning at a node.
    mutating func warning(_ message: String, at node: Node) {
        diagnostics.append(.warning(message, at: node.location(in: file)))
    }

    // MARK: Documents and items

    /// Parses the YAML text of the file.
    mutating func parse(text: String) {
        sourceLines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let root: Node?
        do {
            // No tag resolution: the parser reads every scalar itself (`ScalarValue`: only true/false are
            // booleans, quoted scalars are strings). Yams' default resolver tries five regular expressions on
            // every plain scalar, which was most of the start-up time of a 1,000-rule file.
            root = try Yams.compose(yaml: text, .basic)
        } catch let error as YamlError {
            diagnostics.append(YAMLErrorDiagnostic.make(error, file: file, text: text))
            return
        } catch {
            self.error(
                "invalid YAML: \(error); check the file's syntax",
                at: SourceLocation(file: file, line: 0, column: 0)
            )
            return
        }
        guard let root else { return }
        parse(root: root)
    }

    /// Parses a document's root node: a list of items, or nothing at all.
    mutating func parse(root: Node) {
        switch root {
        case .scalar(let scalar) where scalar.value == .null:
            return
        case .sequence(let sequence):
            for item in sequence { parse(item: item) }
        default:
            error(
                "the top level of a rule file is \(root.kindDescription); expected a list of items, each starting with '- rule:', '- sink:' or '- list:'",
                at: root
            )
        }
    }

    /// Parses one item of the top-level list, dispatching on its first key.
    mutating func parse(item: Node) {
        guard case .mapping(let mapping) = item, let first = mapping.first else {
            error(
                "item is \(item.kindDescription); expected a map starting with rule:, sink: or list:",
                at: item
            )
            return
        }
        guard let kind = first.key.scalar?.string else {
            error("item key is \(first.key.kindDescription); expected rule:, sink: or list:", at: first.key)
            return
        }
        switch kind {
        case "rule": parseRule(mapping, at: item)
        case "sink": parseSink(mapping, at: item)
        case "list": parseList(mapping, at: item)
        case "disable": parseDisable(mapping, at: item)
        default:
            let later = mapping.dropFirst().first { pair in Self.itemKinds.contains(pair.key.scalar?.string ?? "") }
            if let later, let name = later.key.scalar?.string {
                error(
                    "an item must start with rule:, sink: or list:; move '\(name):' to the first line of the item",
                    at: first.key
                )
            } else {
                error("unknown item kind '\(kind)'" + Spelling.hint(for: kind, among: Self.itemKinds), at: first.key)
            }
        }
    }

    // MARK: Keys

    /// The value of each known key, after reporting keys that are not strings or not in `allowed`.
    ///
    /// Returns the known keys in order, and the unknown keys' did-you-mean suggestions.
    /// When the map uses a planned rule kind, its other unknown keys belong to that kind's future syntax
    /// and are not reported (the planned kind's error says enough). Keys in `ignoring` are neither
    /// returned nor reported: the caller reports them with a better message.
    mutating func checkKeys(
        _ mapping: Node.Mapping,
        allowed: [String],
        planned: [String] = [],
        ignoring: [String] = [],
        context: String
    ) -> (keys: [String: (key: Node, value: Node)], suggestions: [String]) {
        var keys: [String: (key: Node, value: Node)] = [:]
        var suggestions: [String] = []
        let usesPlannedKind = mapping.contains { planned.contains($0.key.scalar?.string ?? "") }
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string else {
                error("key is \(keyNode.kindDescription); expected a key name in \(context)", at: keyNode)
                continue
            }
            if allowed.contains(name) {
                keys[name] = (keyNode, valueNode)
            } else if ignoring.contains(name) {
                continue
            } else if planned.contains(name) {
                keys[name] = (keyNode, valueNode)
                error("rule kind '\(name)' is not available in this version of vigil; see docs/rules.md", at: keyNode)
            } else if !usesPlannedKind {
                if let suggestion = Spelling.suggestion(for: name, among: allowed) { suggestions.append(suggestion) }
                error("unknown key '\(name)' in \(context)" + Spelling.hint(for: name, among: allowed), at: keyNode)
            }
        }
        return (keys, suggestions)
    }

    /// Parses `override:` (a boolean) among checked keys: where it is when true, nil otherwise.
    mutating func parseOverride(_ keys: [String: (key: Node, value: Node)]) -> SourceLocation? {
        guard let (key, value) = keys["override"], parseBool(value, key: "override") == true else { return nil }
        return key.location(in: file)
    }

    /// Parses a `- disable:` item: one rule id or a list of them, each a shipped rule to turn off.
    mutating func parseDisable(_ mapping: Node.Mapping, at item: Node) {
        guard let node = mapping.first?.value else { return }
        for (key, _) in mapping.dropFirst() {
            error(
                "unknown key '\(key.scalar?.string ?? key.kindDescription)' in disable:; a disable: item only lists rule ids, such as '- disable: [tmp-world-writable]'",
                at: key
            )
        }
        let elements: [Node]
        if case .sequence(let sequence) = node {
            elements = Array(sequence)
        } else {
            elements = [node]
        }
        if elements.isEmpty {
            error(
                "disable: is empty; list the ids of the shipped rules to turn off, such as [tmp-world-writable]",
                at: node
            )
        }
        for element in elements {
            guard let id = parseName(element, label: "rule id"), Self.isValidName(id) else { continue }
            disables.append(DisableDraft(id: id, location: element.location(in: file)))
        }
    }

    /// Whether `text` is a file mode in octal: three or four digits 0–7, e.g. `0640` or `750`.
    static func isOctalMode(_ text: String) -> Bool {
        (3...4).contains(text.utf8.count) && text.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
    }

    /// `rule 'x'`, or `this rule` when the id is not a string.
    static func describe(_ kind: String, _ name: String?) -> String {
        name.map { "\(kind) '\($0)'" } ?? "this \(kind)"
    }

    /// Whether `name` is a valid rule or sink name: `[a-z0-9][a-z0-9._-]*`.
    static func isValidName(_ name: String) -> Bool {
        guard let first = name.utf8.first, Self.isLowerAlphanumeric(first) else { return false }
        return name.utf8.allSatisfy {
            Self.isLowerAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-")
        }
    }

    /// `a`–`z` or `0`–`9`.
    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// Parses the name in `rule:`/`sink:`/`list:`; reports an empty, non-string or malformed name.
    mutating func parseName(_ node: Node, label: String) -> String? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            let example =
                label == "rule id" ? "upload-ssl-disabled" : label == "sink name" ? "alerts-file" : "trusted-binaries"
            error("\(label) is \(node.kindDescription); expected a name such as '\(example)'", at: node)
            return nil
        }
        let name = scalar.string
        if !Self.isValidName(name) {
            error(
                "\(label) '\(name)' is not valid; use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit",
                at: node
            )
        }
        return name
    }
}
