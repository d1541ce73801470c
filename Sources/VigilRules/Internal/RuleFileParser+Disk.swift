internal import Yams

extension RuleFileParser {
    /// Keys of `disk:` rules besides `disk:` itself.
    static let diskOnlyKeys: [String] = ["above", "inodes_above", "recheck"]

    /// `recheck:` bounds, in milliseconds: below a second it would be polling, above a day it is a typo.
    static let diskRecheckRange = 1000...86_400_000

    /// Parses a `disk:` rule's subject and its own keys; nil after reporting errors.
    mutating func parseDiskSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> DiskSubject? {
        let errorsBefore = errorCount
        var paths: [String]?
        if let (_, node) = keys["disk"] { paths = parseDiskPaths(node) }
        var usage: Double?
        var inodes: Double?
        if let (_, node) = keys["above"] { usage = parseDiskPercent(node, key: "above", example: "85%") }
        if let (_, node) = keys["inodes_above"] { inodes = parseDiskPercent(node, key: "inodes_above", example: "90%") }
        if keys["above"] == nil && keys["inodes_above"] == nil {
            error(
                "disk \(context) has neither above: nor inodes_above:, so it would never fire; add above: (such as 85%), inodes_above: (such as 90%), or both",
                at: location
            )
        }
        var recheck = 60_000
        if let (_, node) = keys["recheck"] {
            recheck = parseDuration(node, key: "recheck", within: Self.diskRecheckRange) ?? recheck
        }
        guard errorCount == errorsBefore, let paths else { return nil }
        return DiskSubject(paths: paths, usagePercent: usage, inodesPercent: inodes, recheckMilliseconds: recheck)
    }

    /// `disk:`: one absolute path or a list of them, normalised; `/` is allowed, globs are not (each path
    /// names the filesystem it lives on, not files).
    private mutating func parseDiskPaths(_ node: Node) -> [String]? {
        guard let entries = parseStringList(node, key: "disk") else { return nil }
        var paths: [String] = []
        var failed = false
        for (raw, element) in entries {
            guard raw.hasPrefix("/") else {
                error("path '\(raw)' is not absolute; write it from the root, such as '/\(raw)'", at: element)
                failed = true
                continue
            }
            let components = raw.split(separator: "/").filter { $0 != "." }
            if components.contains("..") {
                error("path '\(raw)' contains '..'; write the path without it", at: element)
                failed = true
                continue
            }
            if let globbed = components.first(where: { GlobPattern.hasMetacharacters(String($0)) }) {
                error(
                    "path '\(raw)' has a glob in '\(globbed)'; disk: takes paths, each naming the filesystem it lives on",
                    at: element
                )
                failed = true
                continue
            }
            let path = "/" + components.joined(separator: "/")
            if paths.contains(path) {
                error("path '\(raw)' is listed twice in disk:; remove one of them", at: element)
                failed = true
                continue
            }
            paths.append(path)
        }
        return failed ? nil : paths
    }

    /// A percentage above 0 and below 100 for `key`, written with its sign (`85%`, `92.5%`).
    private mutating func parseDiskPercent(_ node: Node, key: String, example: String) -> Double? {
        let expected = "a percentage such as \(example)"
        guard let text = parseString(node, key: key, expected: expected) else { return nil }
        guard text.hasSuffix("%"), let value = DecimalNumber.parse(text.dropLast()) else {
            let hint = DecimalNumber.parse(text) != nil ? "; write the percent sign: '\(text)%'" : ""
            error("'\(key)' is '\(text)'; expected \(expected)\(hint)", at: node)
            return nil
        }
        guard value > 0, value < 100 else {
            error("'\(key)' is \(text); expected a percentage above 0% and below 100%, such as \(example)", at: node)
            return nil
        }
        return value
    }
}
