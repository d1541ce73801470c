internal import Yams

extension RuleFileParser {
    /// Every action of the language, in the order the docs list them.
    static let actionNames = ["alert", "chmod", "chown", "sanitize", "reload", "restart", "rotate", "exec"]
    /// Actions designed but not implemented in this version: none today (`rotate` is a rule kind instead;
    /// see `checkActionName`).
    static let plannedActions: [String] = []
    /// Actions available in this version.
    static let availableActions = ["alert", "chmod", "chown", "restart", "reload", "sanitize", "exec"]

    /// What `then:` used, also where an action's options had errors, for the checks that need the rest of
    /// the rule (its kind, its keys, the sinks of every file).
    struct ActionUses {
        /// Sinks named in `alert: [...]`.
        var sinkReferences: [(name: String, location: SourceLocation)] = []
        /// Every `restart` and `reload`.
        var serviceActions: [ServiceActionUse] = []
        /// Every `sanitize`.
        var sanitizeActions: [SanitizeUse] = []
        /// Every `chmod` and `chown`.
        var permissionActions: [PermissionActionUse] = []
    }

    /// Parses `then:`; records every action in `uses` for the checks against the rule and the other files.
    mutating func parseActions(_ node: Node, uses: inout ActionUses) -> [ActionSpec]? {
        let items: [Node]
        switch node {
        case .sequence(let sequence): items = Array(sequence)
        case .scalar(let scalar) where scalar.value != .null: items = [node]
        case .mapping: items = [node]
        default:
            error("'then' is \(node.kindDescription); expected a list of actions such as [alert]", at: node)
            return nil
        }
        guard !items.isEmpty else {
            error("'then' is an empty list; remove it to alert to every sink, or list the actions", at: node)
            return nil
        }
        var actions: [ActionSpec] = []
        var failed = false
        for item in items {
            if let action = parseAction(item, uses: &uses) {
                actions.append(action)
            } else {
                failed = true
            }
        }
        return failed ? nil : actions
    }

    /// Parses one action: `alert`, `chmod`, `chown`, `restart`, `reload`, `sanitize`, or a one-key map such as
    /// `alert: [sink]`, `restart: { … }`, `sanitize: { … }` or `exec: { command: [...] }`.
    private mutating func parseAction(_ node: Node, uses: inout ActionUses) -> ActionSpec? {
        let location = node.location(in: file)
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            let name = scalar.string
            guard checkActionName(name, at: node) else { return nil }
            switch name {
            case "restart", "reload":
                let action = ServiceAction(location: location)
                uses.serviceActions.append(ServiceActionUse(name: name, location: location, action: action))
                return name == "restart" ? .restart(action) : .reload(action)
            case "sanitize":
                let spec = SanitizeSpec(location: location)
                uses.sanitizeActions.append(SanitizeUse(location: location, spec: spec))
                return .sanitize(spec)
            case "chmod", "chown":
                uses.permissionActions.append(PermissionActionUse(name: name, location: location))
                return name == "chmod" ? .chmod(location) : .chown(location)
            case "exec":
                error(
                    "action 'exec' needs the program to run; write exec: { command: [/absolute/program, arguments...] }",
                    at: node
                )
                return nil
            default:
                return .alert(sinks: nil, location: location)
            }
        case .mapping(let mapping) where mapping.count == 1:
            let (keyNode, value) = mapping.first!
            guard let name = keyNode.scalar?.string else {
                error("action key is \(keyNode.kindDescription); expected an action name such as alert", at: keyNode)
                return nil
            }
            guard checkActionName(name, at: keyNode) else { return nil }
            switch name {
            case "restart", "reload":
                let action = parseServiceAction(name, value, at: location)
                uses.serviceActions.append(
                    ServiceActionUse(name: name, location: keyNode.location(in: file), action: action)
                )
                guard let action else { return nil }
                return name == "restart" ? .restart(action) : .reload(action)
            case "sanitize":
                var use = SanitizeUse(location: keyNode.location(in: file))
                use.spec = parseSanitize(value, at: location, copyNode: &use.copyNode)
                uses.sanitizeActions.append(use)
                return use.spec.map(ActionSpec.sanitize)
            case "chmod", "chown":
                uses.permissionActions.append(PermissionActionUse(name: name, location: keyNode.location(in: file)))
                if case .scalar(let scalar) = value, scalar.value == .null {
                    return name == "chmod" ? .chmod(location) : .chown(location)
                }
                let keys = name == "chmod" ? "mode:, file_mode: and dir_mode:" : "owner: and group:"
                error(
                    "action '\(name)' takes no options; it restores what the rule's \(keys) say, so write \(name) on its own",
                    at: value
                )
                return nil
            case "exec":
                return parseExec(value, at: keyNode.location(in: file)).map(ActionSpec.exec)
            default:
                guard let sinks = parseStringList(value, key: "alert") else { return nil }
                for (sink, element) in sinks { uses.sinkReferences.append((sink, element.location(in: file))) }
                return .alert(sinks: sinks.map(\.0), location: location)
            }
        case .mapping(let mapping) where mapping.count > 1:
            if let first = mapping.first?.key.scalar?.string, let option = mapping[1].key.scalar?.string,
                (first == "restart" || first == "reload") && Self.restartKeys.contains(option)
                    || first == "sanitize" && Self.sanitizeKeys.contains(option)
                    || first == "exec" && Self.execKeys.contains(option)
            {
                error(
                    "'\(option)' is beside '\(first)', not under it; indent the options below \(first): or write \(first): { \(option): … }",
                    at: mapping[1].key
                )
                return nil
            }
            let names = mapping.map { "'\($0.key.scalar?.string ?? "?")'" }.joined(separator: " and ")
            error("action has several keys (\(names)); write each action as its own list item", at: mapping[1].key)
            return nil
        default:
            error("action is \(node.kindDescription); expected an action such as alert or { alert: [sink] }", at: node)
            return nil
        }
    }

    /// Reports unknown and planned actions; true for the available ones.
    private mutating func checkActionName(_ name: String, at node: Node) -> Bool {
        if Self.availableActions.contains(name) { return true }
        if name == "rotate" {
            error(
                "action 'rotate' does not exist; rotation is a rule kind of its own, so write a rule with rotate: PATH and size: or every: (see docs/rules.md#rotation-rules)",
                at: node
            )
        } else if Self.plannedActions.contains(name) {
            error(
                "action '\(name)' is not available in this version of vigil; it is planned — see docs/rules.md",
                at: node
            )
        } else {
            error("unknown action '\(name)'; expected one of: \(Self.actionNames.joined(separator: ", "))", at: node)
        }
        return false
    }

    /// Parses `message:` and checks its fields against those of the rule kind; `allowedFields` nil: the
    /// fields are not all known (a log rule whose `match:` could not be read), so only the syntax is checked.
    mutating func parseTemplate(_ node: Node, allowedFields: [String]?) -> MessageTemplate? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'message' is \(node.kindDescription); expected a string such as \"{rule}: {path}\"", at: node)
            return nil
        }
        return parseTemplateText(scalar, node: node, allowedFields: allowedFields, context: "message")
    }

    /// Parses a template scalar (`message:`, `by:`), reporting unknown fields and syntax errors at their
    /// columns; `context` names it in errors.
    mutating func parseTemplateText(
        _ scalar: Node.Scalar,
        node: Node,
        allowedFields: [String]?,
        context: String
    ) -> MessageTemplate? {
        let source = scalar.string
        let parsed = TemplateParser.parse(source, context: context)
        var failed = false
        for located in parsed.segments {
            guard case .field(let name) = located.segment, let allowedFields, !allowedFields.contains(name) else {
                continue
            }
            error(
                "unknown field '{\(name)}' in \(context)" + Spelling.hint(for: name, among: allowedFields),
                at: templateLocation(scalar, node: node, offset: located.offset)
            )
            failed = true
        }
        if let problem = parsed.error {
            error(problem.message, at: templateLocation(scalar, node: node, offset: problem.offset))
            failed = true
        }
        return failed ? nil : MessageTemplate(segments: parsed.segments.map(\.segment), source: source)
    }

    /// The column of scalar offset `offset` inside a message, when the scalar sits on one line as written.
    ///
    /// Quoted scalars start one column after their quote; multi-line and block scalars point at the start.
    /// Escapes in double-quoted strings (`\"`) are counted as one column, which may shift the column by a little.
    func templateLocation(_ scalar: Node.Scalar, node: Node, offset: Int) -> SourceLocation {
        var location = node.location(in: file)
        guard !scalar.string.contains("\n") else { return location }
        switch scalar.style {
        case .plain, .any: location.column += offset
        case .singleQuoted, .doubleQuoted: location.column += offset + 1
        case .literal, .folded: break
        }
        return location
    }

    // MARK: Lists

    /// Parses a `- list:` item.
    mutating func parseList(_ mapping: Node.Mapping, at item: Node) {
        let errorsBefore = errorCount
        let location = item.location(in: file)
        let nameNode = mapping.first!.value
        let name = parseName(nameNode, label: "list name")
        let context = Self.describe("list", name)
        let (keys, _) = checkKeys(mapping, allowed: Self.listKeys, context: context)
        var items: [String]?
        var itemLocations: [SourceLocation] = []
        if let (_, node) = keys["items"], let entries = parseStringList(node, key: "items", allowEmpty: true) {
            items = entries.map(\.0)
            itemLocations = entries.map { $0.1.location(in: file) }
        } else if keys["items"] == nil {
            error("\(context) has no items:; add items: [...]", at: location)
        }
        guard let name else { return }
        lists.append(
            ListDraft(
                name: name,
                nameLocation: nameNode.location(in: file),
                location: location,
                items: errorCount == errorsBefore ? items : nil,
                itemLocations: itemLocations,
                override: parseOverride(keys)
            )
        )
    }
}
