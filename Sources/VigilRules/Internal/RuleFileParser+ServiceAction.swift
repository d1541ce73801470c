internal import Yams

extension RuleFileParser {
    /// Keys of `restart: { … }`.
    static let restartKeys = ["unit", "command", "signal", "to", "backoff", "max_backoff", "flap", "confirm_within"]
    /// Keys of `reload: { … }`.
    static let reloadKeys = ["unit", "command", "signal", "to"]
    /// Keys of `flap:`.
    static let flapKeys = ["restarts", "within"]

    /// A `restart` or `reload` in `then:`, recorded whether or not its options parsed, so that the checks
    /// against the rule's kind run in any case.
    struct ServiceActionUse {
        /// `restart` or `reload`.
        var name: String
        /// The action's name in the file: errors about where it may be used point there.
        var location: SourceLocation
        /// The parsed options; nil when they had errors.
        var action: ServiceAction?
    }

    /// Parses the value of `restart:` or `reload:`, or of a rotate rule's `postrotate:` (which takes what
    /// `reload:` takes); empty means every default.
    mutating func parseServiceAction(_ name: String, _ value: Node, at location: SourceLocation) -> ServiceAction? {
        var action = ServiceAction(location: location)
        let mapping: Node.Mapping
        switch value {
        case .scalar(let scalar) where scalar.value == .null:
            return action
        case .mapping(let map):
            mapping = map
        default:
            let example =
                switch name {
                case "restart": "{ unit: upload-service, backoff: 1s }"
                case "postrotate":
                    "{ unit: analytics-service } or { command: [/usr/sbin/service, analytics-service, reload] }"
                default: "{ signal: HUP }"
                }
            error("'\(name)' is \(value.kindDescription); expected a map such as \(example)", at: value)
            return nil
        }
        let errorsBefore = errorCount
        let restartOnly = Self.restartKeys.filter { !Self.reloadKeys.contains($0) }
        let (keys, _) = checkKeys(
            mapping,
            allowed: name == "restart" ? Self.restartKeys : Self.reloadKeys,
            ignoring: name == "restart" ? [] : restartOnly,
            context: "\(name):"
        )
        if name != "restart" {
            for pair in mapping {
                guard let key = pair.key.scalar?.string, restartOnly.contains(key) else { continue }
                let reason =
                    name == "postrotate"
                    ? "'\(key)' does not apply to postrotate; it runs once per rotation, and a rotation that fails is alerted"
                    : "'\(key)' applies only to restart; reload runs once each time the rule fires"
                error(reason, at: pair.key)
            }
        }
        if let (_, node) = keys["unit"] { action.unit = parseUnitName(node) }
        if let (_, node) = keys["command"] { action.command = parseCommand(node) }
        if let (_, node) = keys["signal"] { action.signal = parseSignal(node, key: "signal") }
        if let (keyNode, node) = keys["to"] {
            if keys["signal"] == nil {
                error(
                    "'to' names the processes that receive signal:; add signal: (e.g. signal: HUP) or remove to:",
                    at: keyNode
                )
            } else {
                action.target = parseProcessSelector(node)
            }
        }
        if let (_, node) = keys["backoff"], let value = parseDuration(node, key: "backoff") {
            action.backoffMilliseconds = value
        }
        if let (_, node) = keys["max_backoff"], let value = parseDuration(node, key: "max_backoff") {
            action.maximumBackoffMilliseconds = value
        }
        if let (_, node) = keys["confirm_within"], let value = parseDuration(node, key: "confirm_within") {
            action.confirmMilliseconds = value
        }
        if let (_, node) = keys["flap"] { parseFlap(node, into: &action) }
        if errorCount == errorsBefore, action.maximumBackoffMilliseconds < action.backoffMilliseconds {
            if let (_, node) = keys["max_backoff"] {
                error(
                    "'max_backoff' is shorter than backoff: (\(Self.durationText(action.backoffMilliseconds))); raise max_backoff: or lower backoff:",
                    at: node
                )
            } else if let (_, node) = keys["backoff"] {
                error(
                    "'backoff' is longer than max_backoff: (\(Self.durationText(action.maximumBackoffMilliseconds)) by default); raise max_backoff: or lower backoff:",
                    at: node
                )
            }
        }
        return errorCount == errorsBefore ? action : nil
    }

    /// A duration as the docs write it: hours and minutes from 1h and 10m up (`5400000` → `90m`,
    /// `60000` → `60s`), seconds below, milliseconds when not whole seconds.
    static func durationText(_ milliseconds: Int) -> String {
        if milliseconds >= 3_600_000, milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds >= 600_000, milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// Parses `unit:` of restart/reload: one systemd unit name (see `man 5 systemd.unit`, "unit name").
    private mutating func parseUnitName(_ node: Node) -> String? {
        guard let text = parseString(node, key: "unit", expected: "a systemd unit name such as upload-service")
        else { return nil }
        let valid =
            !text.isEmpty && text.utf8.count <= 255
            && text.utf8.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || ":-_.@\\".utf8.contains(byte)
            }
        guard valid else {
            error(
                "unit '\(text)' is not a systemd unit name; use letters, digits, ':', '-', '_', '.', '@' and '\\', such as upload-service or upload-service.service",
                at: node
            )
            return nil
        }
        return text
    }

    /// Parses `command:`: a list whose first entry is the program's absolute path. Never a shell string.
    mutating func parseCommand(
        _ node: Node,
        example fallback: String = "[/usr/bin/systemctl, restart, NAME]"
    ) -> [String]? {
        if case .scalar(let scalar) = node, scalar.value != .null {
            var words = scalar.string.split(separator: " ").map { String($0) }
            if let first = words.first, !first.hasPrefix("/") { words[0] = "/usr/bin/" + first }
            let example = words.count > 1 ? "[\(words.joined(separator: ", "))]" : fallback
            error(
                "'command' is a string; write it as a list such as \(example): vigil runs the program itself, never through a shell",
                at: node
            )
            return nil
        }
        guard case .sequence = node else {
            error(
                "'command' is \(node.kindDescription); expected a list such as \(fallback)",
                at: node
            )
            return nil
        }
        guard let entries = parseStringList(node, key: "command") else { return nil }
        let (program, programNode) = entries[0]
        let base = program.split(separator: "/").last.map(String.init) ?? program
        if !program.hasPrefix("/") {
            error(
                "program '\(program)' in command: is not absolute; write its full path such as '/usr/bin/\(base)' (vigil does not search PATH)",
                at: programNode
            )
            return nil
        }
        if program.split(separator: "/").contains("..") || program.hasSuffix("/")
            || GlobPattern.hasMetacharacters(program)
        {
            error(
                "program '\(program)' in command: is not a plain path to a program; write it without '..', globs or a trailing '/'",
                at: programNode
            )
            return nil
        }
        return entries.map(\.0)
    }

    /// Parses `flap: { restarts: N, within: T }` into `action`.
    private mutating func parseFlap(_ node: Node, into action: inout ServiceAction) {
        guard case .mapping(let mapping) = node else {
            error("'flap' is \(node.kindDescription); expected a map such as { restarts: 5, within: 60s }", at: node)
            return
        }
        let (keys, _) = checkKeys(mapping, allowed: Self.flapKeys, context: "flap:")
        if let (_, value) = keys["restarts"],
            let restarts = parseWholeNumber(value, what: "flap restarts", range: 1...Int.max)
        {
            action.flapLimit = restarts
        }
        if let (_, value) = keys["within"], let within = parseDuration(value, key: "within") {
            action.flapWindowMilliseconds = within
        }
    }

    /// Reports `restart` and `reload` where they cannot do what they say.
    ///
    /// - `kind` nil: the rule's subject is unknown (already reported); nothing is checked.
    /// - `shape` nil on a process rule: its trigger is unclear (already reported); nothing is checked.
    mutating func checkServiceActions(_ uses: [ServiceActionUse], kind: RuleKind?, shape: ProcessRuleShape?) {
        guard let kind else { return }
        for use in uses {
            let name = use.name
            if kind == .rotate {
                error(
                    "action '\(name)' does not apply to rotate rules; to tell the writer to reopen its log after a rotation, use postrotate: { unit: …, command: […], signal: … }",
                    at: use.location
                )
                continue
            }
            guard kind == .process else {
                error(
                    "action '\(name)' does not apply to \(kind.name) rules; \(name) acts on processes, so use it in a process: rule",
                    at: use.location
                )
                continue
            }
            switch shape {
            case .zombie:
                error(
                    "action '\(name)' does not apply to on: [zombie] rules; a zombie has already exited, so there is nothing to \(name); alert, and fix the parent that does not reap its children",
                    at: use.location
                )
            case .root:
                let effect =
                    name == "restart"
                    ? "restarting would run the unexpected program again"
                    : "reloading leaves the unexpected program running"
                error(
                    "action '\(name)' does not apply to on: [root] rules; \(effect); alert, and stop the program by hand",
                    at: use.location
                )
            case .expect where name == "reload":
                error(
                    "action 'reload' does not apply to expect: rules; the rule fires when the process is not running, so there is nothing to reload; use restart",
                    at: use.location
                )
            case .expect:
                if let action = use.action, action.signal != nil, action.target == nil, action.unit == nil,
                    action.command == nil
                {
                    error(
                        "restart in an expect: rule has only signal:, but no process runs to receive it when the rule fires; add unit: or command:",
                        at: use.location
                    )
                }
            case .events(exec: true) where name == "restart":
                error(
                    "action 'restart' does not apply to rules with exec in on:; the restarted program's exec would fire the rule again, in a loop; restart on exit, or use expect: running",
                    at: use.location
                )
            case .threshold:
                error(
                    "action '\(name)' does not apply to above: rules; a process held above a limit is a finding to look at, not a failure a \(name) repairs; alert, or write an expect: or on: [exit] rule with \(name)",
                    at: use.location
                )
            case .events, nil:
                break
            }
        }
    }
}
