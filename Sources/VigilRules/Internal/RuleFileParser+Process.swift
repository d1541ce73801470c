internal import Yams

#if canImport(Glibc)
import Glibc
#endif

extension RuleFileParser {
    /// Keys a `process:` selector may have.
    static let selectorKeys = ["name", "exe", "argv", "user", "parent", "unit", "cgroup"]
    /// What `on:` may list in a process rule.
    static let processEventNames = ["exec", "exit", "core-dump", "zombie", "root"]
    /// Rule keys that only process rules take.
    static let processOnlyKeys = ["expect", "exit", "grace", "allow"] + processThresholdKeys
    /// Keys of threshold rules (`above:` is also a `disk:` key).
    static let processThresholdKeys = ["above", "sample"]
    /// Keys of `exit:`.
    static let exitFilterKeys = ["code", "signal"]
    /// `grace:` when not given.
    static let defaultZombieGraceMilliseconds = 5000

    /// What kind of process rule the trigger keys make it, read from the keys as written (also when a value
    /// has errors), so that checks depending on it (actions, `resolved_message:`) still run.
    enum ProcessRuleShape: Equatable {
        /// `expect:`
        case expect
        /// `on:` with exec, exit and/or core-dump; `exec` tells whether exec is among them.
        case events(exec: Bool)
        /// `on: [zombie]`
        case zombie
        /// `on: [root]`
        case root
        /// `above:`
        case threshold

        /// State rules resolve; see `ProcessTrigger.isState`.
        var isState: Bool { self == .expect || self == .zombie || self == .threshold }
    }

    /// A process rule's trigger as parsed.
    struct ProcessTriggerDraft {
        /// The trigger; nil when it had errors.
        var trigger: ProcessTrigger?
        /// The kind of rule; nil when `expect:` and `on:` are both given, or neither.
        var shape: ProcessRuleShape?
        /// List names in `allow:`, checked and expanded once every file is read.
        var listReferences: [(name: String, location: SourceLocation)] = []
    }

    // MARK: Selector

    /// Parses `process:`: `any`, a name, or a map of selector keys.
    mutating func parseProcessSelector(_ node: Node) -> ProcessSelector? {
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            let text = scalar.string
            if text == "any" { return ProcessSelector() }
            return checkSelectorEntry(text, key: "name", at: node) ? ProcessSelector(names: [text]) : nil
        case .mapping(let mapping):
            let errorsBefore = errorCount
            let (keys, _) = checkKeys(mapping, allowed: Self.selectorKeys, context: "process:")
            let selector = ProcessSelector(
                names: parseSelectorEntries(keys["name"]?.value, key: "name"),
                executables: parseSelectorEntries(keys["exe"]?.value, key: "exe"),
                commandLines: parseSelectorEntries(keys["argv"]?.value, key: "argv"),
                users: parseUsers(keys["user"]?.value),
                parents: parseSelectorEntries(keys["parent"]?.value, key: "parent"),
                units: parseSelectorEntries(keys["unit"]?.value, key: "unit"),
                cgroups: parseSelectorEntries(keys["cgroup"]?.value, key: "cgroup")
            )
            return errorCount == errorsBefore ? selector : nil
        default:
            var message =
                "'process' is \(node.kindDescription); expected a process name, a map such as { name: upload-service }, or any"
            if case .sequence = node { message += " (write { name: [a, b] } to match any of several names)" }
            error(message, at: node)
            return nil
        }
    }

    /// The entries of one text selector key, each checked; reports and leaves out bad ones.
    private mutating func parseSelectorEntries(_ value: Node?, key: String) -> [String] {
        guard let value, let entries = parseStringList(value, key: key) else { return [] }
        var texts: [String] = []
        for (text, element) in entries where checkSelectorEntry(text, key: key, at: element) {
            texts.append(text)
        }
        return texts
    }

    /// Checks one entry of a text selector key; true when it is usable.
    private mutating func checkSelectorEntry(_ text: String, key: String, at node: Node) -> Bool {
        let problem: String?
        if text.isEmpty {
            problem = "an entry of '\(key)' is an empty string; write what to match, or remove the entry"
        } else {
            switch key {
            case "name":
                problem =
                    text.contains("/")
                    ? "process name '\(text)' contains '/'; name: matches names, not paths, so use exe: with the program's absolute path"
                    : Self.globProblem(text, what: "process name")
            case "parent":
                problem =
                    text.contains("/")
                    ? "parent '\(text)' contains '/'; parent: matches the parent's name, not its path, so write a name such as 'cron'"
                    : Self.globProblem(text, what: "parent")
            case "exe": problem = Self.executableProblem(text, anyDirectoryHint: true)
            case "unit":
                problem =
                    text.contains("/")
                    ? "unit '\(text)' contains '/'; write a unit name such as upload-service.service (use cgroup: for a cgroup path)"
                    : Self.globProblem(text, what: "unit")
            case "cgroup": problem = Self.cgroupProblem(text)
            default: problem = Self.globProblem(text, what: "argv pattern")
            }
        }
        guard let problem else { return true }
        error(problem, at: node)
        return false
    }

    /// Why `text` is not a usable glob, as a whole message; nil when it is fine.
    static func globProblem(_ text: String, what: String) -> String? {
        guard case .failure(let reason) = GlobPattern.parse(text) else { return nil }
        return "\(what) '\(text)': \(reason.reason)"
    }

    /// Why `text` is not an absolute executable path or glob (for `exe:` and `allow:`); nil when it is one.
    static func executableProblem(_ text: String, anyDirectoryHint: Bool) -> String? {
        let base = text.split(separator: "/").last.map(String.init) ?? text
        guard text.hasPrefix("/") else {
            var message = "executable '\(text)' is not absolute; write it from the root, such as '/usr/bin/\(base)'"
            if anyDirectoryHint { message += ", or '/*/\(base)' for any directory" }
            return message
        }
        if text.split(separator: "/").contains("..") {
            return "executable '\(text)' contains '..'; write the path without it"
        }
        if text.hasSuffix("/") {
            return
                "executable '\(text)' ends with '/'; name the program, or write '\(text)*' for every program in that directory"
        }
        return globProblem(text, what: "executable")
    }

    /// Why `text` is not an absolute cgroup path or glob; nil when it is one.
    private static func cgroupProblem(_ text: String) -> String? {
        guard text.hasPrefix("/") else {
            return
                "cgroup '\(text)' is not absolute; write the path as /proc/PID/cgroup shows it, such as '/\(text)'"
        }
        if text.split(separator: "/").contains("..") {
            return "cgroup '\(text)' contains '..'; write the path without it"
        }
        return globProblem(text, what: "cgroup")
    }

    /// Parses `user:`: names (checked as POSIX user names) and numbers (uids).
    private mutating func parseUsers(_ value: Node?) -> [UserReference] {
        guard let value, let entries = parseStringList(value, key: "user") else { return [] }
        return entries.compactMap { text, element in accountReference(text, at: element, key: "user") }
    }

    /// A user (`user:`, `owner:`) or group (`group:`) named in a rule: a number is an id, anything else a
    /// name, checked by `accountNameProblem`. Reports and returns nil for what is neither.
    mutating func accountReference(_ text: String, at node: Node, key: String) -> UserReference? {
        if !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            // uid_t and gid_t are 32 bits; -1 means "no change" to chown and "no user" to the kernel (see
            // `man 2 chown`, `man 2 setreuid`).
            guard let id = UInt32(text), id != UInt32.max else {
                let (account, idName) = key == "group" ? ("group", "gid") : ("user", "uid")
                error("\(account) id \(text) is out of range; expected a \(idName) from 0 to 4294967294", at: node)
                return nil
            }
            return .id(id)
        }
        if let problem = Self.accountNameProblem(text, key: key) {
            error(problem, at: node)
            return nil
        }
        return .name(text, node.location(in: file))
    }

    /// Why `text` is not a user name (`key` is `user` or `owner`) or group name (`key` is `group`): POSIX
    /// portable characters, not starting with `-`, optionally ending in `$` as Samba machine accounts do;
    /// nil when it is one.
    static func accountNameProblem(_ text: String, key: String) -> String? {
        let (account, idName, example) = key == "group" ? ("group", "gid", "log-readers") : ("user", "uid", "analytics")
        if text.isEmpty {
            let subject = key == "user" ? "an entry of 'user'" : "'\(key)'"
            return
                "\(subject) is an empty string; write a \(account) name such as \(example), or a \(idName) such as 1001"
        }
        if DecimalNumber.parse(text) != nil {
            return
                "\(account) id \(text) is not a whole number from 0 to 4294967294; write a \(idName) such as 1001, or a \(account) name"
        }
        if GlobPattern.hasMetacharacters(text) {
            if key == "user" {
                return
                    "user '\(text)' is a glob; users are matched exactly, so list them, such as user: [analytics, www-data]"
            }
            return "\(key) '\(text)' is a glob; write one \(account) name, such as \(key): \(example)"
        }
        let body = text.hasSuffix("$") ? text.utf8.dropLast() : text.utf8[...]
        let valid =
            !body.isEmpty && body.first != UInt8(ascii: "-")
            && body.allSatisfy { byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
        guard !valid else { return nil }
        return
            "\(key) '\(text)' is not a valid \(account) name; a \(account) name has letters, digits, '.', '_' and '-' and does not start with '-'; or write a \(idName) such as 1001"
    }

    // MARK: Trigger

    /// Parses `expect:`, `on:`, `exit:`, `grace:` and `allow:` of a process rule, with the rules of how they
    /// combine.
    mutating func parseProcessTrigger(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> ProcessTriggerDraft {
        var draft = ProcessTriggerDraft()
        if let above = keys["above"] {
            return parseThresholdTrigger(keys, above: above, context: context)
        }
        if let (key, _) = keys["sample"] {
            error("'sample' applies only to above: rules; remove it, or add above: { cpu: 80%, for: 5s }", at: key)
        }
        let expect = keys["expect"]
        let on = keys["on"]
        let minimum = expect.flatMap { parseExpect($0.value) }
        let events = on.flatMap { parseProcessEvents($0.value) }
        // What on: lists as written, typos and all: keys that belong to one event are judged by it.
        let listed = on.map { Self.scalarTexts($0.value) } ?? []
        switch (expect, on) {
        case (let expect?, let on?):
            let later = Self.isBefore(expect.key, on.key) ? on.key : expect.key
            error(
                "\(context) has both expect: and on:; use expect: for a state rule (the process must run) or on: for an event rule, not both",
                at: later
            )
        case (nil, nil):
            error(
                "process \(context) has neither expect: nor on:; add expect: running (a state rule), on: with exec, exit, core-dump, zombie or root (an event rule), or above: { cpu: 80%, for: 5s } (a threshold rule)",
                at: location
            )
        case (.some, nil):
            draft.shape = .expect
        case (nil, .some):
            if listed.contains("zombie") {
                draft.shape = .zombie
            } else if listed.contains("root") {
                draft.shape = .root
            } else {
                draft.shape = .events(exec: listed.contains("exec"))
            }
        }

        var filter: ExitFilter?
        if let (key, value) = keys["exit"] {
            if listed.contains("exit") {
                filter = parseExitFilter(value)
            } else if draft.shape == .expect {
                error(
                    "'exit' does not apply to expect: rules; remove it, or write a second rule with on: [exit] and exit:",
                    at: key
                )
            } else if draft.shape != nil {
                error("'exit' applies only to rules with exit in on:; add exit to on:, or remove exit:", at: key)
            }
        }
        var grace: Int?
        if let (key, value) = keys["grace"] {
            if draft.shape == .zombie {
                grace = parseDuration(value, key: "grace")
            } else if draft.shape != nil {
                error("'grace' applies only to on: [zombie] rules; remove it", at: key)
            }
        }
        var allow: [String]?
        if let (key, value) = keys["allow"] {
            if draft.shape == .root {
                allow = parseAllow(value, listReferences: &draft.listReferences)
            } else if draft.shape != nil {
                error("'allow' applies only to on: [root] rules; remove it", at: key)
            }
        }

        switch draft.shape {
        case .expect:
            draft.trigger = minimum.map { .expectRunning(minimum: $0) }
        case .zombie:
            draft.trigger = events.map { _ in .zombie(graceMilliseconds: grace ?? Self.defaultZombieGraceMilliseconds) }
        case .root:
            draft.trigger = events.map { _ in .root(allow: allow ?? []) }
        case .threshold:
            break  // parsed by parseThresholdTrigger
        case .events:
            draft.trigger = events.map { .events(Set($0.compactMap(ProcessEventKind.init(rawValue:))), exit: filter) }
        case nil:
            break
        }
        return draft
    }

    /// The texts of a scalar or of a list's scalars, unchecked.
    private static func scalarTexts(_ node: Node) -> [String] {
        switch node {
        case .scalar(let scalar): [scalar.string]
        case .sequence(let sequence): sequence.compactMap { $0.scalar?.string }
        default: []
        }
    }

    /// Whether `lhs` comes before `rhs` in the file.
    private static func isBefore(_ lhs: Node, _ rhs: Node) -> Bool {
        let left = (lhs.mark?.line ?? 0, lhs.mark?.column ?? 0)
        let right = (rhs.mark?.line ?? 0, rhs.mark?.column ?? 0)
        return left < right
    }

    /// Parses `expect:`: `running`, or `{ running: N }`; returns the minimum count.
    private mutating func parseExpect(_ node: Node) -> Int? {
        let expected = "expected running, or { running: N } for at least N processes"
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            let text = scalar.string
            if text == "running" { return 1 }
            if let suggestion = Spelling.suggestion(for: text, among: ["running"]) {
                error("expect '\(text)' is not known; did you mean '\(suggestion)'? (\(expected))", at: node)
            } else {
                error("expect '\(text)' is not known; \(expected)", at: node)
            }
            return nil
        case .mapping(let mapping):
            let errorsBefore = errorCount
            let (keys, _) = checkKeys(mapping, allowed: ["running"], context: "expect:")
            guard let (_, value) = keys["running"] else {
                if errorCount == errorsBefore { error("'expect' is an empty map; \(expected)", at: node) }
                return nil
            }
            let minimum = parseWholeNumber(value, what: "running count", range: 1...Int.max)
            return errorCount == errorsBefore ? minimum : nil
        default:
            error("'expect' is \(node.kindDescription); \(expected)", at: node)
            return nil
        }
    }

    /// Parses a process rule's `on:`; zombie and root must stand alone.
    private mutating func parseProcessEvents(_ node: Node) -> [String]? {
        guard let entries = parseStringList(node, key: "on") else { return nil }
        var names: [String] = []
        var nodes: [String: Node] = [:]
        var failed = false
        for (text, element) in entries {
            if Self.processEventNames.contains(text) {
                if nodes[text] == nil {
                    names.append(text)
                    nodes[text] = element
                }
            } else {
                error(
                    "unknown process event '\(text)'" + Spelling.hint(for: text, among: Self.processEventNames),
                    at: element
                )
                failed = true
            }
        }
        for alone in ["zombie", "root"] where names.contains(alone) && names.count > 1 {
            let others = names.filter { $0 != alone }
            let list = others.map { "'\($0)'" }.joined(separator: ", ")
            error(
                "'\(alone)' must stand alone in on:, but on: also lists \(list); move \(list) to \(others.count == 1 ? "a rule of its own" : "another rule")",
                at: nodes[alone]!
            )
            failed = true
            break
        }
        return failed ? nil : names
    }

    /// Parses `exit: { code: …, signal: … }`.
    private mutating func parseExitFilter(_ node: Node) -> ExitFilter? {
        guard case .mapping(let mapping) = node else {
            error("'exit' is \(node.kindDescription); expected a map such as { code: nonzero, signal: any }", at: node)
            return nil
        }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.exitFilterKeys, context: "exit:")
        if keys.isEmpty {
            if errorCount == errorsBefore {
                error(
                    "'exit' is an empty map, which no exit matches; give code:, signal: or both, such as { code: nonzero, signal: any }",
                    at: node
                )
            }
            return nil
        }
        let codes = keys["code"].flatMap { parseExitCodes($0.value) }
        let signals = keys["signal"].flatMap { parseExitSignals($0.value) }
        guard errorCount == errorsBefore else { return nil }
        return ExitFilter(codes: codes, signals: signals)
    }

    /// Parses `code:`: a number, a list of numbers, `nonzero` or `any`.
    private mutating func parseExitCodes(_ node: Node) -> ExitFilter.Codes? {
        let expected = "expected a number from 0 to 255, a list of them, nonzero or any"
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            let text = scalar.string
            switch text {
            case "any": return .any
            case "nonzero": return .nonzero
            default:
                if DecimalNumber.parse(text) != nil {
                    return parseWholeNumber(node, what: "exit code", range: 0...255).map { .list([Int32($0)]) }
                }
                if let suggestion = Spelling.suggestion(for: text, among: ["nonzero", "any"]) {
                    error("code '\(text)' is not known; did you mean '\(suggestion)'? (\(expected))", at: node)
                } else {
                    error("code '\(text)' is not known; \(expected)", at: node)
                }
                return nil
            }
        case .sequence(let sequence):
            guard !sequence.isEmpty else {
                error("'code' is an empty list; \(expected)", at: node)
                return nil
            }
            var codes: [Int32] = []
            var failed = false
            for element in sequence {
                if let text = element.scalar?.string, text == "any" || text == "nonzero" {
                    error("'\(text)' cannot be in a list of codes; write code: \(text) on its own", at: element)
                    failed = true
                } else if let code = parseWholeNumber(element, what: "exit code", range: 0...255) {
                    codes.append(Int32(code))
                } else {
                    failed = true
                }
            }
            return failed ? nil : .list(codes)
        default:
            error("'code' is \(node.kindDescription); \(expected)", at: node)
            return nil
        }
    }

    /// Parses `signal:` of `exit:`: a signal, a list of signals, or `any`.
    private mutating func parseExitSignals(_ node: Node) -> ExitFilter.Signals? {
        switch node {
        case .scalar(let scalar) where scalar.string == "any" && scalar.value != .null:
            return .any
        case .sequence(let sequence):
            guard !sequence.isEmpty else {
                error("'signal' is an empty list; expected signals such as [KILL, SEGV], or any", at: node)
                return nil
            }
            var signals: [Int32] = []
            var failed = false
            for element in sequence {
                if element.scalar?.string == "any" {
                    error("'any' cannot be in a list of signals; write signal: any on its own", at: element)
                    failed = true
                } else if let signal = parseSignal(element, key: "signal") {
                    signals.append(signal)
                } else {
                    failed = true
                }
            }
            return failed ? nil : .list(signals)
        default:
            return parseSignal(node, key: "signal").map { .list([$0]) }
        }
    }

    /// Parses `allow:`: absolute executable paths or globs, and names of lists (expanded by the compiler).
    private mutating func parseAllow(
        _ node: Node,
        listReferences: inout [(name: String, location: SourceLocation)]
    ) -> [String]? {
        guard let entries = parseStringList(node, key: "allow") else { return nil }
        var allow: [String] = []
        var failed = false
        for (text, element) in entries {
            if text.hasPrefix("/") {
                if let problem = Self.executableProblem(text, anyDirectoryHint: false) {
                    error(problem, at: element)
                    failed = true
                }
            } else if Self.isValidName(text) {
                listReferences.append((text, element.location(in: file)))
            } else {
                error(
                    "allow entry '\(text)' is neither an absolute executable path nor a list name; write a path such as /usr/sbin/sshd, or the name of a '- list:' item",
                    at: element
                )
                failed = true
            }
            allow.append(text)
        }
        return failed ? nil : allow
    }
}

// MARK: Thresholds

extension RuleFileParser {
    /// Keys of `above:`: one measure and the hold.
    static let thresholdKeys = ["cpu", "memory", "rss", "for"]
    /// The shortest `sample:`: CPU time is counted in clock ticks (10 ms at 100 Hz), so a shorter period
    /// would measure mostly rounding.
    static let shortestSampleMilliseconds = 100

    /// The cores a process can keep busy here: a `cpu:` limit above 100 × this could never be exceeded.
    static var onlineCores: Int { max(1, sysconf(CInt(_SC_NPROCESSORS_ONLN))) }

    /// Parses `above:`, `sample:` and what they exclude (`expect:`, `on:` and their keys) of a process
    /// threshold rule.
    mutating func parseThresholdTrigger(
        _ keys: [String: (key: Node, value: Node)],
        above: (key: Node, value: Node),
        context: String
    ) -> ProcessTriggerDraft {
        var draft = ProcessTriggerDraft()
        draft.shape = .threshold
        for name in ["expect", "on"] {
            guard let (key, _) = keys[name] else { continue }
            error(
                "\(context) has both above: and \(name):; use above: for a threshold rule (CPU or memory held above a limit), or \(name): in a rule of its own, not both",
                at: key
            )
        }
        for name in ["exit", "grace", "allow"] {
            guard let (key, _) = keys[name] else { continue }
            error("'\(name)' does not apply to above: rules; remove it", at: key)
        }
        let errorsBefore = errorCount
        let sample =
            keys["sample"].flatMap {
                parseDuration(
                    $0.value,
                    key: "sample",
                    within: Self.shortestSampleMilliseconds...RuleDuration.longestMilliseconds
                )
            } ?? ProcessThreshold.defaultSampleMilliseconds
        let threshold = parseAbove(above.value)
        guard errorCount == errorsBefore, var threshold else { return draft }
        threshold.sampleMilliseconds = sample
        draft.trigger = .threshold(threshold)
        return draft
    }

    /// Parses `above: { cpu: 80%, for: 5s }`: exactly one of `cpu:`, `memory:`, `rss:`, and `for:`.
    private mutating func parseAbove(_ node: Node) -> ProcessThreshold? {
        let expected = "expected a map such as { cpu: 80%, for: 5s }, { memory: 50% } or { rss: 2GiB, for: 1m }"
        guard case .mapping(let mapping) = node else {
            error("'above' is \(node.kindDescription); \(expected)", at: node)
            return nil
        }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.thresholdKeys, context: "above:")
        let measures = mapping.compactMap { pair -> (ProcessThreshold.Measure, Node, Node)? in
            guard let name = pair.key.scalar?.string, let measure = ProcessThreshold.Measure(rawValue: name) else {
                return nil
            }
            return (measure, pair.key, pair.value)
        }
        var hold = 0
        if let (_, value) = keys["for"] {
            // for: 0 (or 0s) is the default written out: fire at the first sample above.
            if let text = value.scalar?.string, RuleDuration.milliseconds(text) == 0 {
                hold = 0
            } else {
                hold = parseDuration(value, key: "for") ?? 0
            }
        }
        guard let (measure, _, value) = measures.first else {
            if errorCount == errorsBefore {
                error("'above' names no measure; give one of cpu:, memory: or rss:, \(expected)", at: node)
            }
            return nil
        }
        if measures.count > 1 {
            let names = measures.map { "\($0.0.rawValue):" }.joined(separator: " and ")
            error(
                "'above' has \(names); a rule watches one measure, so write one rule per measure (each fires on its own)",
                at: measures[1].1
            )
            return nil
        }
        let limit: Double?
        switch measure {
        case .cpu:
            let cores = Self.onlineCores
            limit = parsePercent(
                value,
                key: "cpu",
                maximum: Double(100 * cores),
                why: "a process on this host's \(cores) core\(cores == 1 ? "" : "s") uses at most \(100 * cores)%"
            )
        case .memory:
            limit = parsePercent(value, key: "memory", maximum: 100, why: "memory is a share of MemTotal")
        case .rss:
            limit = parseMemorySize(value).map { Double($0) }
        }
        guard errorCount == errorsBefore, let limit else { return nil }
        return ProcessThreshold(measure: measure, limit: limit, holdMilliseconds: hold)
    }

    /// Parses a percentage such as `80%` or `12.5%`, above 0 and below `maximum`.
    private mutating func parsePercent(_ node: Node, key: String, maximum: Double, why: String) -> Double? {
        let example = key == "cpu" ? "80%" : "50%"
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected a percentage such as \(example)", at: node)
            return nil
        }
        let text = scalar.string
        guard text.hasSuffix("%"), let value = DecimalNumber.parse(text.dropLast()) else {
            let hint = DecimalNumber.parse(text) != nil ? " (write \(text)%)" : ""
            error("'\(key)' is '\(text)'; expected a percentage such as \(example)\(hint)", at: node)
            return nil
        }
        guard value > 0, value < maximum else {
            let bound = maximum.rounded() == maximum ? String(Int(maximum)) : String(maximum)
            error(
                "'\(key)' is \(text); expected a percentage above 0% and below \(bound)% (\(why))",
                at: node
            )
            return nil
        }
        return value
    }

    /// Parses a memory size for `rss:`: a whole number of bytes, or a number followed by KiB, MiB, GiB or
    /// TiB (also K, M, G, T; all 1024-based).
    private mutating func parseMemorySize(_ node: Node) -> UInt64? {
        let expected = "a size such as 512MiB or 2GiB (KiB, MiB, GiB, TiB; K, M, G, T alike), or a number of bytes"
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'rss' is \(node.kindDescription); expected \(expected)", at: node)
            return nil
        }
        let text = scalar.string
        let units: [(suffix: String, factor: Double)] = [
            ("KiB", 0x400), ("MiB", 0x10_0000), ("GiB", 0x4000_0000), ("TiB", 0x100_0000_0000),
            ("K", 0x400), ("M", 0x10_0000), ("G", 0x4000_0000), ("T", 0x100_0000_0000),
        ]
        var digits = Substring(text)
        var factor = 1.0
        for unit in units where text.hasSuffix(unit.suffix) {
            digits = digits.dropLast(unit.suffix.count)
            factor = unit.factor
            break
        }
        guard let number = DecimalNumber.parse(digits), number >= 0 else {
            error("'rss' is '\(text)'; expected \(expected)", at: node)
            return nil
        }
        let bytes = number * factor
        guard bytes >= 1, bytes < 0x1p62 else {
            error("'rss' is \(text); expected a size above 0 and below 4 EiB, such as 2GiB", at: node)
            return nil
        }
        return UInt64(bytes)
    }
}
