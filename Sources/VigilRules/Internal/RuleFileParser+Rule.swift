internal import Yams

extension RuleFileParser {
    /// The subject kind of a rule, once known; the raw value is its subject key.
    enum RuleKind: String {
        /// `config:`
        case config
        /// `file:` without mode or owner keys
        case file
        /// `process:`
        case process
        /// `log:`
        case log
        /// `file:` with `mode:`, `file_mode:`, `dir_mode:`, `owner:` or `group:`
        case permissions
        /// `rotate:`
        case rotate
        /// `pressure:`
        case pressure
        /// `disk:`
        case disk
        /// `listening:`
        case listening
        /// `escalation:`
        case escalation
        /// `service:` — an expected process rule about one service (by its systemd unit where systemd runs)
        case service

        /// How errors name the kind ("config rules", "mode and owner rules").
        var name: String { self == .permissions ? "mode and owner" : rawValue }
    }

    /// Parses a `- rule:` item.
    mutating func parseRule(_ mapping: Node.Mapping, at item: Node) {
        let errorsBefore = errorCount
        let location = item.location(in: file)
        let idNode = mapping.first!.value
        let id = parseName(idNode, label: "rule id")
        let context = Self.describe("rule", id)
        let (keys, suggestions) = checkKeys(
            mapping,
            allowed: Self.ruleKeys,
            planned: Self.plannedKinds,
            context: context
        )

        var severity = Severity.warning
        if let (_, node) = keys["severity"], let text = parseString(node, key: "severity") {
            if let parsed = Severity(rawValue: text) {
                severity = parsed
            } else {
                let expected = Severity.allCases.map(\.rawValue).joined(separator: ", ")
                error("severity '\(text)' is not known; expected one of: \(expected)", at: node)
            }
        }
        let description = keys["description"].flatMap { parseString($0.value, key: "description") }
        let enabled = keys["enabled"].flatMap { parseBool($0.value, key: "enabled") } ?? true
        let tags = keys["tags"].flatMap { parseStringList($0.value, key: "tags", allowEmpty: true) }?.map(\.0) ?? []

        // The subject: exactly one of config:/file:/process:/log:/rotate:, a file: with a mode or owner key
        // being a mode and owner rule; planned kinds were reported by checkKeys.
        let subjects = mapping.compactMap { pair -> (String, Node)? in
            guard let name = pair.key.scalar?.string, Self.subjectKeys.contains(name) else { return nil }
            return (name, pair.key)
        }
        let hasPlannedKind = Self.plannedKinds.contains { keys[$0] != nil }
        var kind: RuleKind?
        if subjects.count > 1 {
            error(
                "\(context) has both \(subjects[0].0): and \(subjects[1].0):; a rule watches one subject, so split it into two rules",
                at: subjects[1].1
            )
        } else if let (name, _) = subjects.first {
            kind = RuleKind(rawValue: name)
            if kind == .file && Self.permissionKeys.contains(where: { keys[$0] != nil }) { kind = .permissions }
        } else if !hasPlannedKind && !suggestions.contains(where: Self.subjectKeys.contains) {
            var message = "\(context) has no subject; expected one of: \(Self.subjectKeys.joined(separator: ", "))"
            if let name = Self.permissionKeys.first(where: { keys[$0] != nil }) {
                message += " (\(name): needs file: with the paths it applies to)"
            }
            error(message, at: location)
        }

        // Parse every part that is present, whatever the kind, so all errors show at once.
        var path: PathPattern?
        if kind == .file, case .sequence = keys["file"]!.value {
            error(
                "'file' is a list, but only mode and owner rules take several paths; write one file: rule per path, or add mode:, owner: or group:",
                at: keys["file"]!.value
            )
        } else if kind == .config || kind == .file {
            path = parsePath(keys[subjects[0].0]!.value, key: subjects[0].0, allowGlob: true)
        }
        let permissions = kind == .permissions ? parsePermissionSubject(keys) : PermissionDraft()
        let rotation = kind == .rotate ? parseRotateSubject(keys, context: context, at: location) : nil
        let pressure = kind == .pressure ? parsePressureSubject(keys, context: context, at: location) : nil
        let disk = kind == .disk ? parseDiskSubject(keys, context: context, at: location) : nil
        let listening = kind == .listening ? parseListeningSubject(keys, context: context, at: location) : nil
        let escalation = kind == .escalation ? parseEscalationSubject(keys, context: context, at: location) : nil
        let service = kind == .service ? keys["service"].flatMap { parseServiceName($0.value) } : nil
        let selector = kind == .process ? keys["process"].flatMap { parseProcessSelector($0.value) } : nil
        // match:, count: and the others are log keys; on other kinds they are reported below.
        let log = kind == .log || kind == nil ? parseLogSubject(keys) : LogSubjectDraft()
        let condition = keys["when"].flatMap { parseCondition($0.value) }
        let changes = keys["changes"].flatMap { parseChanges($0.value) }
        // on: means file changes or process events depending on the kind; unknown, it is left alone.
        let changeKinds = kind == .file || kind == .config ? keys["on"].flatMap { parseChangeKinds($0.value) } : nil
        var format = ConfigFormat.ini
        if let (_, node) = keys["format"], let text = parseString(node, key: "format") {
            if let parsed = ConfigFormat(rawValue: text) {
                format = parsed
            } else {
                error("format '\(text)' is not known; expected one of: ini", at: node)
            }
        }

        var process = ProcessTriggerDraft()
        switch kind {
        case .config:
            if let (key, _) = keys["on"] {
                error(
                    "'on' does not apply to config rules; use changes: to fire when keys change, or a file: rule",
                    at: key
                )
            }
            if let (_, changesKey) = keys["changes"].map({ ($0.value, $0.key) }), keys["when"] != nil {
                error(
                    "\(context) has both when: and changes:; use when: for a state rule or changes: for an event rule, not both",
                    at: changesKey
                )
            } else if keys["when"] == nil && keys["changes"] == nil {
                error(
                    "config \(context) has neither when: nor changes:; add when: (a state rule) or changes: (an event rule)",
                    at: location
                )
            }
            reportProcessOnlyKeys(keys, kind: .config)
            reportLogOnlyKeys(keys, kind: .config)
            reportPermissionOnlyKeys(keys, kind: .config)
            reportRotateOnlyKeys(keys, kind: .config)
        case .file:
            reportConfigOnlyKeys(keys, kind: .file)
            reportProcessOnlyKeys(keys, kind: .file)
            reportLogOnlyKeys(keys, kind: .file)
            reportPermissionOnlyKeys(keys, kind: .file)
            reportRotateOnlyKeys(keys, kind: .file)
        case .permissions:
            reportConfigOnlyKeys(keys, kind: .permissions)
            if let (key, _) = keys["on"] {
                error(
                    "'on' does not apply to mode and owner rules; they check the mode and owner at start-up and on every change, so remove on: (or watch changes with a file: rule without mode:, owner: and group:)",
                    at: key
                )
            }
            reportProcessOnlyKeys(keys, kind: .permissions)
            reportLogOnlyKeys(keys, kind: .permissions)
            reportRotateOnlyKeys(keys, kind: .permissions)
        case .rotate:
            reportConfigOnlyKeys(keys, kind: .rotate)
            if let (key, _) = keys["on"] {
                error(
                    "'on' does not apply to rotate rules; a rotate rule fires on each rotation, when a log reaches size: or every: comes round",
                    at: key
                )
            }
            reportProcessOnlyKeys(keys, kind: .rotate)
            reportLogOnlyKeys(keys, kind: .rotate)
            reportPermissionOnlyKeys(keys, kind: .rotate)
        case .process:
            reportConfigOnlyKeys(keys, kind: .process)
            reportLogOnlyKeys(keys, kind: .process)
            reportPermissionOnlyKeys(keys, kind: .process)
            reportRotateOnlyKeys(keys, kind: .process)
            process = parseProcessTrigger(keys, context: context, at: location)
            if process.shape == .expect, selector?.matchesEverything == true, let (_, node) = keys["process"] {
                error(
                    "expect: needs a selector that names the process, but process: \(node.scalar?.string ?? "{}") matches every process, so the rule could never fire; write e.g. process: { name: upload-service }",
                    at: node
                )
            }
        case .log:
            reportConfigOnlyKeys(keys, kind: .log)
            if let (key, _) = keys["on"] {
                error(
                    "'on' does not apply to log rules; a log rule fires on each line that matches match: (on every line without it)",
                    at: key
                )
            }
            reportProcessOnlyKeys(keys, kind: .log)
            reportPermissionOnlyKeys(keys, kind: .log)
            reportRotateOnlyKeys(keys, kind: .log)
        case .pressure, .disk, .listening, .escalation, .service:
            reportForeignKeys(mapping, kind: kind!)
        case nil:
            break
        }
        if let kind, !Self.hostKinds.contains(kind) { reportForeignKeys(mapping, kind: kind, onlyHostKindKeys: true) }

        // Fields a message may use; nil when a log rule's capture names are not all known.
        let allowedFields: [String]?
        switch kind {
        case .config: allowedFields = MessageTemplate.configFields
        case .file: allowedFields = MessageTemplate.fileFields
        case .process, .service: allowedFields = MessageTemplate.processFields
        case .log: allowedFields = log.capturesKnown ? MessageTemplate.logFields + log.captureNames : nil
        case .permissions: allowedFields = MessageTemplate.permissionFields
        case .rotate: allowedFields = MessageTemplate.rotateFields
        case .pressure: allowedFields = MessageTemplate.pressureFields
        case .disk: allowedFields = MessageTemplate.diskFields
        case .listening: allowedFields = MessageTemplate.listeningFields
        case .escalation: allowedFields = MessageTemplate.escalationFields
        case nil:
            var union = MessageTemplate.configFields
            let others =
                MessageTemplate.fileFields + MessageTemplate.processFields + MessageTemplate.logFields
                + MessageTemplate.permissionFields + MessageTemplate.rotateFields + MessageTemplate.pressureFields
                + MessageTemplate.diskFields + MessageTemplate.listeningFields + MessageTemplate.escalationFields
                + log.captureNames
            for field in others where !union.contains(field) {
                union.append(field)
            }
            allowedFields = log.capturesKnown ? union : nil
        }
        var message: MessageTemplate?
        if let (_, node) = keys["message"] {
            message = parseTemplate(node, allowedFields: allowedFields)
        } else if kind == .process {
            message = process.trigger.flatMap { try? MessageTemplate(parsing: MessageTemplate.defaultSource(for: $0)) }
        } else if kind == .log {
            message = log.subject.flatMap { try? MessageTemplate(parsing: MessageTemplate.defaultSource(for: $0)) }
        } else if kind == .permissions {
            message = try? MessageTemplate(parsing: MessageTemplate.defaultPermissionSource)
        } else if kind == .rotate {
            message = try? MessageTemplate(parsing: MessageTemplate.defaultRotateSource)
        } else if kind == .service, let service {
            message = try? MessageTemplate(parsing: "service \(service) is not active: none of its processes runs")
        } else if let kind, let source = MessageTemplate.defaultHostSource(for: kind.rawValue) {
            message = try? MessageTemplate(parsing: source)
        } else {
            message = try? MessageTemplate(parsing: MessageTemplate.defaultSource)
        }

        // `resolved_message:` belongs to state rules, whose alerts can be resolved.
        var resolvedMessage: MessageTemplate?
        let isState: Bool?
        switch kind {
        case .config:
            // With both or neither of when:/changes: the kind of rule is unclear (and already reported).
            isState =
                keys["when"] != nil && keys["changes"] == nil
                ? true : keys["changes"] != nil && keys["when"] == nil ? false : nil
        case .file, .log, .rotate: isState = false
        case .permissions, .pressure, .disk, .listening, .escalation, .service: isState = true
        case .process: isState = process.shape?.isState
        case nil: isState = nil
        }
        if let (keyNode, node) = keys["resolved_message"] {
            if isState == true {
                resolvedMessage = parseTemplate(node, allowedFields: allowedFields)
            } else if isState == false {
                error(
                    "'resolved_message' applies only to state rules (config: with when:, process: with expect:, above: or on: [zombie], service:, mode and owner rules, pressure:, disk:, listening: and escalation:); event rules never resolve",
                    at: keyNode
                )
            }
        } else if keys["message"] == nil, let trigger = process.trigger,
            let source = MessageTemplate.defaultResolvedSource(for: trigger)
        {
            resolvedMessage = try? MessageTemplate(parsing: source)
        } else if keys["message"] == nil, kind == .permissions {
            resolvedMessage = try? MessageTemplate(parsing: MessageTemplate.defaultPermissionResolvedSource)
        } else if keys["message"] == nil, kind == .service, let service {
            resolvedMessage = try? MessageTemplate(
                parsing: "service \(service) is active again: {name} runs (pid {pid})"
            )
        } else if keys["message"] == nil, let kind,
            let source = MessageTemplate.defaultHostResolvedSource(for: kind.rawValue)
        {
            resolvedMessage = try? MessageTemplate(parsing: source)
        }

        // Noise control applies to every kind; a dedup key may use the fields of the kind's message.
        let dedup = keys["dedup"].flatMap { parseDedup($0.value, at: $0.key, messageFields: allowedFields) }
        let remind = keys["remind"].flatMap { parseRemind($0.value, at: $0.key, isState: isState) }

        var uses = ActionUses()
        let actions: [ActionSpec]?
        if let (_, node) = keys["then"] {
            actions = parseActions(node, uses: &uses)
        } else {
            actions = [.alert(sinks: nil, location: location)]
        }
        // A service rule is an expect: rule about the service's processes.
        checkServiceActions(
            uses.serviceActions,
            kind: kind == .service ? .process : kind,
            shape: kind == .service ? .expect : process.shape
        )
        checkSanitizeActions(uses.sanitizeActions, kind: kind, logPaths: log.paths)
        checkPermissionActions(uses.permissionActions, kind: kind, draft: permissions)

        var draft = RuleDraft(
            id: id ?? "",
            idLocation: idNode.location(in: file),
            location: location,
            rule: nil,
            sinkReferences: uses.sinkReferences,
            listReferences: process.listReferences,
            override: parseOverride(keys)
        )
        defer { if id != nil { rules.append(draft) } }
        guard errorCount == errorsBefore, let id, let kind, let message, let actions else { return }

        let subject: Subject
        switch kind {
        case .config:
            let trigger: ConfigTrigger
            if let condition {
                trigger = .when(condition)
            } else if let changes {
                trigger = .changes(changes)
            } else {
                return
            }
            guard let path else { return }
            subject = .config(ConfigSubject(path: path, format: format, trigger: trigger))
        case .file:
            guard let path else { return }
            subject = .file(FileSubject(path: path, on: changeKinds ?? Set(FileChangeKind.allCases)))
        case .process:
            guard let selector, let trigger = process.trigger else { return }
            subject = .process(ProcessSubject(selector: selector, trigger: trigger))
        case .log:
            guard let logSubject = log.subject else { return }
            subject = .log(logSubject)
        case .permissions:
            guard let permissionSubject = permissions.subject else { return }
            subject = .permissions(permissionSubject)
        case .rotate:
            guard let rotation else { return }
            subject = .rotate(rotation)
        case .pressure:
            guard let pressure else { return }
            subject = .pressure(pressure)
        case .disk:
            guard let disk else { return }
            subject = .disk(disk)
        case .listening:
            guard let listening else { return }
            subject = .listening(listening)
        case .escalation:
            guard let escalation else { return }
            subject = .escalation(escalation)
        case .service:
            guard let service else { return }
            subject = .process(
                ProcessSubject(
                    selector: ProcessSelector(units: [service]),
                    trigger: .expectRunning(minimum: 1),
                    service: service
                )
            )
        }
        draft.rule = Rule(
            id: id,
            location: location,
            severity: severity,
            description: description,
            message: message,
            subject: subject,
            // A service rule's restart and reload name its unit unless they say otherwise.
            actions: kind == .service ? actions.map { Self.naming(service ?? "", in: $0) } : actions,
            enabled: enabled,
            tags: tags,
            resolvedMessage: resolvedMessage
        )
        draft.rule?.dedup = dedup
        draft.rule?.remindMilliseconds = remind
    }

    /// Parses `service:`: a unit name (`upload-service` or `upload-service.service`).
    mutating func parseServiceName(_ node: Node) -> String? {
        guard let text = parseString(node, key: "service") else { return nil }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.@-\\")
        guard !text.isEmpty, text.allSatisfy(allowed.contains), !text.hasPrefix("-") else {
            error(
                "service '\(text)' is not a unit name; write the service's unit name as systemctl shows it, such as upload-service or upload-service.service",
                at: node
            )
            return nil
        }
        return text
    }

    /// `restart`/`reload` of a service rule with no `unit:` of its own get the service's unit.
    static func naming(_ service: String, in action: ActionSpec) -> ActionSpec {
        switch action {
        case .restart(var spec) where spec.unit == nil:
            spec.unit = service
            return .restart(spec)
        case .reload(var spec) where spec.unit == nil:
            spec.unit = service
            return .reload(spec)
        default:
            return action
        }
    }

    /// The kinds that watch the host as a whole; their keys are checked by `reportForeignKeys`.
    static let hostKinds: [RuleKind] = [.pressure, .disk, .listening, .escalation]

    /// Every kind's own keys (besides the keys every rule may have).
    static var kindKeys: [(kind: RuleKind, keys: [String])] {
        [
            (.config, ["config", "format", "when", "changes", "on"]),
            (.file, ["file", "on"]),
            (.process, ["process", "on"] + processOnlyKeys),
            (.log, ["log"] + logOnlyKeys),
            (.permissions, ["file"] + permissionOnlyKeys),
            (.rotate, ["rotate"] + rotateOnlyKeys),
            (.pressure, ["pressure"] + pressureOnlyKeys),
            (.disk, ["disk"] + diskOnlyKeys),
            (.listening, ["listening"] + listeningOnlyKeys),
            (.escalation, ["escalation"] + escalationOnlyKeys),
            (.service, ["service"]),
        ]
    }

    /// Reports, in the order written, keys that belong to other kinds of rule. With `onlyHostKindKeys`
    /// (for the older kinds, which report the others' keys with messages of their own), only keys that
    /// belong to host kinds alone.
    mutating func reportForeignKeys(_ mapping: Node.Mapping, kind: RuleKind, onlyHostKindKeys: Bool = false) {
        let table = Self.kindKeys
        let own = Set(table.first { $0.kind == kind }?.keys ?? [])
        for pair in mapping {
            guard let name = pair.key.scalar?.string, !own.contains(name), !Self.subjectKeys.contains(name) else {
                continue
            }
            let owners = table.filter { $0.keys.contains(name) }.map(\.kind)
            guard !owners.isEmpty else { continue }
            if onlyHostKindKeys && owners.contains(where: { !Self.hostKinds.contains($0) }) { continue }
            let names = owners.map { "\($0 == .permissions ? "file: (mode and owner)" : $0.rawValue + ":")" }
            error(
                "'\(name)' does not apply to \(kind.name) rules; it belongs to \(names.joined(separator: " and ")) rules",
                at: pair.key
            )
        }
    }

    /// Reports `when:`, `changes:` and `format:` on rules other than config rules.
    private mutating func reportConfigOnlyKeys(_ keys: [String: (key: Node, value: Node)], kind: RuleKind) {
        for name in ["when", "changes", "format"] {
            guard let (key, _) = keys[name] else { continue }
            error(
                "'\(name)' does not apply to \(kind.name) rules; use a config: rule to look at keys and values",
                at: key
            )
        }
    }

    /// Reports `expect:`, `exit:`, `grace:` and `allow:` on rules other than process rules.
    private mutating func reportProcessOnlyKeys(_ keys: [String: (key: Node, value: Node)], kind: RuleKind) {
        for name in Self.processOnlyKeys {
            guard let (key, _) = keys[name] else { continue }
            // above: is also a disk: key.
            let owners =
                Self.processThresholdKeys.contains(name)
                ? Self.kindKeys.filter { $0.keys.contains(name) }.map { $0.kind.rawValue + ":" } : ["process:"]
            error(
                "'\(name)' does not apply to \(kind.name) rules; it belongs to \(owners.joined(separator: " and ")) rules",
                at: key
            )
        }
    }

    /// Parses `changes:`: key names or globs, lowercased.
    mutating func parseChanges(_ node: Node) -> [String]? {
        guard let entries = parseStringList(node, key: "changes") else { return nil }
        var patterns: [String] = []
        var failed = false
        for (text, element) in entries {
            let pattern = text.lowercased()
            if case .failure(let reason) = GlobPattern.parse(pattern) {
                error("key pattern '\(text)' in changes: is malformed: \(reason.reason)", at: element)
                failed = true
            }
            patterns.append(pattern)
        }
        return failed ? nil : patterns
    }

    /// Parses `on:`: a list of file change kinds.
    mutating func parseChangeKinds(_ node: Node) -> Set<FileChangeKind>? {
        guard let entries = parseStringList(node, key: "on") else { return nil }
        var kinds: Set<FileChangeKind> = []
        var failed = false
        let names = FileChangeKind.allCases.map(\.rawValue)
        for (text, element) in entries {
            if let kind = FileChangeKind(rawValue: text) {
                kinds.insert(kind)
            } else {
                error("unknown file change '\(text)'" + Spelling.hint(for: text, among: names), at: element)
                failed = true
            }
        }
        return failed ? nil : kinds
    }
}
