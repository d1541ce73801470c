import VigilCore
internal import Yams

extension RuleFileParser {
    /// A scalar's text for `key`; reports lists, maps and empty values.
    mutating func parseString(_ node: Node, key: String, expected: String = "a string") -> String? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected \(expected)", at: node)
            return nil
        }
        return scalar.string
    }

    /// `true` or `false` for `key`; reports anything else (including `yes`/`no`).
    mutating func parseBool(_ node: Node, key: String) -> Bool? {
        if case .scalar(let scalar) = node, case .bool(let value) = scalar.value {
            return value
        }
        if case .scalar(let scalar) = node {
            error("'\(key)' is '\(scalar.string)'; expected true or false", at: node)
        } else {
            error("'\(key)' is \(node.kindDescription); expected true or false", at: node)
        }
        return nil
    }

    /// A list of scalars for `key` (a single scalar counts as a list of one), with each element's node.
    ///
    /// Reports maps, nested lists, empty elements and, unless `allowEmpty`, an empty list.
    mutating func parseStringList(_ node: Node, key: String, allowEmpty: Bool = false) -> [(String, Node)]? {
        let elements: [Node]
        switch node {
        case .sequence(let sequence): elements = Array(sequence)
        case .scalar(let scalar) where scalar.value != .null: elements = [node]
        default:
            error("'\(key)' is \(node.kindDescription); expected a list of strings", at: node)
            return nil
        }
        if elements.isEmpty && !allowEmpty {
            error("'\(key)' is an empty list; expected at least one entry", at: node)
            return nil
        }
        var values: [(String, Node)] = []
        var failed = false
        for element in elements {
            guard case .scalar(let scalar) = element, scalar.value != .null else {
                error("an entry of '\(key)' is \(element.kindDescription); expected a string", at: element)
                failed = true
                continue
            }
            values.append((scalar.string, element))
        }
        return failed ? nil : values
    }

    /// An absolute, normalised path whose last component may be a glob (when `allowGlob`).
    ///
    /// `//` collapses, `.` components and a trailing `/` are dropped; `..` is refused rather than
    /// resolved, since rule paths are resolved again inside `--root`.
    mutating func parsePath(_ node: Node, key: String, allowGlob: Bool) -> PathPattern? {
        parsePath(node, key: key, allowGlob: allowGlob, allowRecursive: false)?.path
    }

    /// `parsePath`, and with `allowRecursive` a last component `**` (`DIR/**`: the directory and everything
    /// below it), which is dropped from the pattern and returned as `recursive`. `raw` stays as written.
    mutating func parsePath(
        _ node: Node,
        key: String,
        allowGlob: Bool,
        allowRecursive: Bool
    ) -> (path: PathPattern, recursive: Bool)? {
        guard let raw = parseString(node, key: key, expected: "an absolute path such as /etc/app.conf") else {
            return nil
        }
        guard raw.hasPrefix("/") else {
            error("path '\(raw)' is not absolute; write it from the root, such as '/\(raw)'", at: node)
            return nil
        }
        var components = raw.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        if components.contains("..") {
            error("path '\(raw)' contains '..'; write the path without it", at: node)
            return nil
        }
        let recursive = allowRecursive && components.last == "**"
        if recursive { components.removeLast() }
        guard let last = components.last else {
            let example = recursive ? "such as /var/log/analytics/**" : "such as /etc/app.conf"
            error("path '\(raw)' names no file; expected a file path \(example)", at: node)
            return nil
        }
        if let globbed = components.dropLast().first(where: { GlobPattern.hasMetacharacters(String($0)) }) {
            error(
                "path '\(raw)' has a glob in the directory '\(globbed)'; globs are allowed only in the last path component",
                at: node
            )
            return nil
        }
        let directory = "/" + components.dropLast().joined(separator: "/")
        let name = String(last)
        guard GlobPattern.hasMetacharacters(name) else {
            return (PathPattern(raw: raw, directory: directory, name: .exact(name)), recursive)
        }
        guard allowGlob else {
            error("path '\(raw)' contains a glob; a \(key) must name one file", at: node)
            return nil
        }
        if case .failure(let reason) = GlobPattern.parse(name) {
            error("path '\(raw)': \(reason.reason)", at: node)
            return nil
        }
        return (PathPattern(raw: raw, directory: directory, name: .glob(name)), recursive)
    }

    /// Parses a subject that takes one absolute path or a list of them (`log:`, `rotate:`, the `file:` of a
    /// mode and owner rule); the last component of each may be a glob, and with `allowRecursive` it may be
    /// `**` (see `parsePath`). A path listed twice is an error. Returns each path with its node.
    mutating func parsePathList(
        _ node: Node,
        key: String,
        example: String,
        allowRecursive: Bool = false
    ) -> [(path: PathPattern, recursive: Bool, node: Node)]? {
        let elements: [Node]
        switch node {
        case .sequence(let sequence): elements = Array(sequence)
        case .scalar(let scalar) where scalar.value != .null: elements = [node]
        default:
            error(
                "'\(key)' is \(node.kindDescription); expected an absolute path such as \(example), or a list of them",
                at: node
            )
            return nil
        }
        guard !elements.isEmpty else {
            error("'\(key)' is an empty list; expected at least one absolute path such as \(example)", at: node)
            return nil
        }
        var paths: [(path: PathPattern, recursive: Bool, node: Node)] = []
        var failed = false
        for element in elements {
            guard case .scalar(let scalar) = element, scalar.value != .null else {
                error(
                    "an entry of '\(key)' is \(element.kindDescription); expected an absolute path such as \(example)",
                    at: element
                )
                failed = true
                continue
            }
            guard let (path, recursive) = parsePath(element, key: key, allowGlob: true, allowRecursive: allowRecursive)
            else {
                failed = true
                continue
            }
            if paths.contains(where: { $0.path.normalised == path.normalised }) {
                error("path '\(path.raw)' is listed twice in \(key):; remove one of them", at: element)
                failed = true
                continue
            }
            paths.append((path, recursive, element))
        }
        return failed ? nil : paths
    }
}

extension RuleFileParser {
    /// A duration for `key` in milliseconds (see `RuleDuration`); reports zero, too long and malformed ones.
    mutating func parseDuration(_ node: Node, key: String) -> Int? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected \(RuleDuration.expectedForms)", at: node)
            return nil
        }
        let text = scalar.string
        guard let milliseconds = RuleDuration.milliseconds(text) else {
            error("'\(key)' is '\(text)'; expected \(RuleDuration.expectedForms)", at: node)
            return nil
        }
        if milliseconds == 0 {
            error("'\(key)' is \(text); expected a duration longer than zero, such as 5s", at: node)
            return nil
        }
        if milliseconds > RuleDuration.longestMilliseconds {
            error("'\(key)' is \(text), longer than the limit of 24h; write a shorter duration", at: node)
            return nil
        }
        return milliseconds
    }

    /// An age for `key` in milliseconds (see `RuleAge`: `max_age:`, `after:`, `delete_after:`); reports
    /// zero, too long, unitless, ambiguous and malformed ones.
    mutating func parseAge(_ node: Node, key: String) -> Int? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected \(RuleAge.expectedForms)", at: node)
            return nil
        }
        let text = scalar.string
        switch RuleAge.milliseconds(text) {
        case .success(let milliseconds):
            return milliseconds
        case .failure(.malformed):
            error("'\(key)' is '\(text)'; expected \(RuleAge.expectedForms)", at: node)
        case .failure(.bareNumber):
            error(
                "'\(key)' is \(text), a number without a unit; write the unit, such as \(text)d for \(text) days",
                at: node
            )
        case .failure(.ambiguousMinutes):
            let number = Int(text.dropLast()) ?? 1
            error(
                "'\(key)' is \(text), and m could mean minutes or months; write months as days, such as \(number * 30)d, or minutes as seconds, such as \(number * 60)s",
                at: node
            )
        case .failure(.zero):
            error("'\(key)' is \(text); expected an age longer than zero, such as 30d", at: node)
        case .failure(.tooLong):
            error("'\(key)' is \(text), longer than the limit of 3650d (ten years); write a shorter age", at: node)
        }
        return nil
    }

    /// A whole number (quoted or not) within `range`; `what` names it in errors ("exit code", "'running'").
    mutating func parseWholeNumber(_ node: Node, what: String, range: ClosedRange<Int>) -> Int? {
        let rangeText =
            range.upperBound == Int.max
            ? "of at least \(range.lowerBound)" : "from \(range.lowerBound) to \(range.upperBound)"
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("\(what) is \(node.kindDescription); expected a whole number \(rangeText)", at: node)
            return nil
        }
        let text = scalar.string
        guard let number = DecimalNumber.parse(text) else {
            error("\(what) '\(text)' is not a number; expected a whole number \(rangeText)", at: node)
            return nil
        }
        guard number == number.rounded(), abs(number) < 1e15 else {
            error("\(what) \(text) is not a whole number; expected a whole number \(rangeText)", at: node)
            return nil
        }
        let value = Int(number)
        guard range.contains(value) else {
            error("\(what) \(text) is out of range; expected a whole number \(rangeText)", at: node)
            return nil
        }
        return value
    }

    /// A signal name or number (see `SignalNames`); `any` is not accepted here.
    mutating func parseSignal(_ node: Node, key: String) -> Int32? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected \(SignalNames.expectedForms)", at: node)
            return nil
        }
        let text = scalar.string
        if let number = SignalNames.number(text) { return number }
        if let suggestion = SignalNames.suggestion(for: text) {
            error(
                "signal '\(text)' is not known; did you mean '\(suggestion)'? (expected \(SignalNames.expectedForms))",
                at: node
            )
        } else if Int(text) != nil {
            error("signal \(text) is out of range; Linux signals are numbered from 1 to 64", at: node)
        } else {
            error("signal '\(text)' is not known; expected \(SignalNames.expectedForms)", at: node)
        }
        return nil
    }
}

extension RuleFileParser {
    /// A size for `key` (`size:` of rotate rules, `spool:` of sinks): bytes, or a number followed by
    /// `k`/`K`, `M` or `G` (1024-based, as logrotate). `example` is the size errors suggest.
    mutating func parseSize(_ node: Node, key: String, example: String = "100M") -> UInt64? {
        let expected =
            "a number of bytes, or a number followed by k, M or G (1024-based, as in logrotate), such as \(example)"
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected \(expected)", at: node)
            return nil
        }
        let text = scalar.string
        let factors: [Character: UInt64] = ["k": 1 << 10, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text)
        var factor: UInt64 = 1
        if let last = text.last, let unit = factors[last] {
            digits = digits.dropLast()
            factor = unit
        }
        guard !digits.isEmpty, digits.utf8.count <= 15,
            digits.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let number = UInt64(digits)
        else {
            if let suggestion = Self.sizeSuggestion(text) {
                error("\(key) '\(text)' is not a size; did you mean '\(suggestion)'? (expected \(expected))", at: node)
            } else {
                error("\(key) '\(text)' is not a size; expected \(expected)", at: node)
            }
            return nil
        }
        let (bytes, overflow) = number.multipliedReportingOverflow(by: factor)
        guard number > 0 else {
            error("\(key) is \(text); expected a size larger than zero, such as \(example)", at: node)
            return nil
        }
        guard !overflow, bytes <= UInt64(Int64.max) else {
            error("\(key) \(text) is too large; expected a size such as \(example) or 10G", at: node)
            return nil
        }
        return bytes
    }

    /// `100M` for `100MB`, `100m`, `100MiB` and the like; nil when `text` is not such a near miss.
    private static func sizeSuggestion(_ text: String) -> String? {
        var rest = Substring(text)
        for suffix in ["iB", "ib", "B", "b"] where rest.hasSuffix(suffix) {
            rest = rest.dropLast(suffix.count)
            break
        }
        guard let last = rest.last, "kKmMgG".contains(last) else { return nil }
        let digits = rest.dropLast()
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        let suggestion = String(digits) + (last == "k" ? "k" : last.uppercased())
        return suggestion == text ? nil : suggestion
    }

    /// A duration for `key` (see `parseDuration`) that must also lie within `range` milliseconds: delivery
    /// timers below their floor would spin, and above their ceiling would look like a hang.
    mutating func parseDuration(_ node: Node, key: String, within range: ClosedRange<Int>) -> Int? {
        guard let milliseconds = parseDuration(node, key: key) else { return nil }
        let text = node.scalar?.string ?? ""
        let bounds =
            range.upperBound >= RuleDuration.longestMilliseconds
            ? "of at least \(Self.boundText(range.lowerBound))"
            : "from \(Self.boundText(range.lowerBound)) to \(Self.boundText(range.upperBound))"
        if milliseconds < range.lowerBound {
            error(
                "'\(key)' is \(text), shorter than the minimum of \(Self.boundText(range.lowerBound)); expected a duration \(bounds)",
                at: node
            )
            return nil
        }
        if milliseconds > range.upperBound {
            error(
                "'\(key)' is \(text), longer than the maximum of \(Self.boundText(range.upperBound)); expected a duration \(bounds)",
                at: node
            )
            return nil
        }
        return milliseconds
    }

    /// A bound of a duration range as the docs write it: `5m`, not `durationText`'s `300s`.
    static func boundText(_ milliseconds: Int) -> String {
        if milliseconds >= 3_600_000, milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds >= 60_000, milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        return durationText(milliseconds)
    }
}
