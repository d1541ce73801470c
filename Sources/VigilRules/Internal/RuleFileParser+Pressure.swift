internal import Yams

extension RuleFileParser {
    /// Keys of `pressure:` rules besides `pressure:` itself.
    static let pressureOnlyKeys: [String] = ["scope", "stall", "within", "cgroup"]

    /// The kernel's shortest and longest trigger windows, in milliseconds (`WINDOW_MIN_US`, `WINDOW_MAX_US`
    /// in kernel/sched/psi.c).
    static let pressureWindowRange = 500...10_000

    /// Parses a `pressure:` rule's subject and its own keys; nil after reporting errors.
    ///
    /// What the kernel will accept of this host (triggers at all, windows that are not multiples of 2 s
    /// without `CAP_SYS_RESOURCE`) is decided at start-up by the daemon, not here: a rule file is checked
    /// the same on every host.
    mutating func parsePressureSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> PressureSubject? {
        let errorsBefore = errorCount
        var resource: PressureResourceName?
        if let (_, node) = keys["pressure"] {
            let names = PressureResourceName.allCases.map(\.rawValue)
            if let text = parseString(node, key: "pressure", expected: "one of: \(names.joined(separator: ", "))") {
                resource = PressureResourceName(rawValue: text)
                if resource == nil {
                    error("pressure '\(text)' is not a resource" + Spelling.hint(for: text, among: names), at: node)
                }
            }
        }
        var scope = PressureScope.some
        if let (_, node) = keys["scope"] {
            let names = PressureScope.allCases.map(\.rawValue)
            if let text = parseString(node, key: "scope", expected: "one of: \(names.joined(separator: ", "))") {
                if let parsed = PressureScope(rawValue: text) {
                    scope = parsed
                } else {
                    error("scope '\(text)' is not known" + Spelling.hint(for: text, among: names), at: node)
                }
            }
        }
        var windowMilliseconds: Int? = 2000
        if let (_, node) = keys["within"] {
            windowMilliseconds = parseDuration(node, key: "within", within: Self.pressureWindowRange)
        }
        var stallMicroseconds: Int?
        if let (_, node) = keys["stall"] {
            if let window = windowMilliseconds { stallMicroseconds = parseStall(node, windowMilliseconds: window) }
        } else {
            error(
                "pressure \(context) has no stall:; add stall: with the stalled share of the window (such as 10%) or a duration (such as 150ms)",
                at: location
            )
        }
        var cgroup: String?
        if let (_, node) = keys["cgroup"] { cgroup = parseCgroup(node) }
        guard errorCount == errorsBefore, let resource, let windowMilliseconds, let stallMicroseconds else {
            return nil
        }
        return PressureSubject(
            resource: resource,
            scope: scope,
            stallMicroseconds: stallMicroseconds,
            windowMicroseconds: windowMilliseconds * 1000,
            cgroup: cgroup
        )
    }

    /// `stall:` in microseconds: a share of the window (`10%`, `2.5%`) or a duration (`150ms`); it must be
    /// above zero and below the window, as the kernel requires.
    private mutating func parseStall(_ node: Node, windowMilliseconds: Int) -> Int? {
        let expected = "a share of the window such as 10%, or a duration such as 150ms"
        guard let text = parseString(node, key: "stall", expected: expected) else { return nil }
        let window = Self.boundText(windowMilliseconds)
        let microseconds: Int
        if text.hasSuffix("%") {
            guard let percent = DecimalNumber.parse(text.dropLast()), percent > 0, percent < 100 else {
                error(
                    "'stall' is '\(text)'; expected a share of the window above 0% and below 100%, such as 10%",
                    at: node
                )
                return nil
            }
            microseconds = Int((Double(windowMilliseconds) * 1000 * percent / 100).rounded())
        } else {
            guard let milliseconds = RuleDuration.milliseconds(text) else {
                error("'stall' is '\(text)'; expected \(expected)", at: node)
                return nil
            }
            microseconds = milliseconds * 1000
        }
        guard microseconds > 0 else {
            error("'stall' is \(text), no time at all; expected a stall longer than zero, such as 10%", at: node)
            return nil
        }
        guard microseconds < windowMilliseconds * 1000 else {
            error(
                "'stall' is \(text), not shorter than the window of \(window) (within:); the kernel needs a stall below the window, such as 10% or a longer within:",
                at: node
            )
            return nil
        }
        return microseconds
    }

    /// `cgroup:`: an absolute cgroup v2 path below the cgroup root, normalised (no trailing `/`).
    private mutating func parseCgroup(_ node: Node) -> String? {
        let example = "/system.slice/analytics-service.service"
        guard let raw = parseString(node, key: "cgroup", expected: "a cgroup path such as \(example)") else {
            return nil
        }
        guard raw.hasPrefix("/") else {
            error(
                "cgroup '\(raw)' is not absolute; write it from the cgroup root, as /proc/PID/cgroup shows it, such as '/\(raw)'",
                at: node
            )
            return nil
        }
        let components = raw.split(separator: "/").filter { $0 != "." }
        if components.contains("..") {
            error("cgroup '\(raw)' contains '..'; write the path without it", at: node)
            return nil
        }
        return "/" + components.joined(separator: "/")
    }
}
