internal import Yams

extension RuleFileParser {
    /// Rule keys that only rotate rules take.
    static let rotateOnlyKeys = [
        "size", "every", "keep", "max_age", "dateext", "olddir", "compress", "compress_level", "delaycompress",
        "copytruncate", "if_empty", "create", "postrotate", "sweep",
    ]
    /// Keys of `olddir: { … }`.
    static let oldDirectoryKeys = ["path", "mode", "owner", "group"]
    /// Keys of `create: { … }`.
    static let createKeys = ["mode", "owner", "group"]
    /// Keys of `sweep: { … }`.
    static let sweepKeys = ["chmod", "after", "delete_after"]
    /// The strftime(3) conversions `dateext:` may use: each gives digits only, so a rotated name never holds
    /// a `/`, a blank or a locale's month name.
    static let dateConversions: [Character] = ["Y", "m", "d", "H", "M", "S", "s", "j"]
    /// `keep:` bounds.
    static let keepRange = 0...10_000

    /// Parses `rotate:` and the rotation keys of a rotate rule; nil when any part had errors.
    mutating func parseRotateSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> RotateSubject? {
        let errorsBefore = errorCount
        let entries = keys["rotate"].flatMap { parsePathList($0.value, key: "rotate", example: "/var/log/app.log") }
        var subject = RotateSubject(paths: entries?.map(\.path) ?? [])
        if let (_, node) = keys["size"] { subject.maximumBytes = parseSize(node, key: "size") }
        if let (_, node) = keys["every"] { subject.interval = parseInterval(node) }
        if keys["size"] == nil && keys["every"] == nil {
            error(
                "rotate \(context) has neither size: nor every:, so it would never rotate; add size: (such as 100M), every: (such as daily), or both",
                at: location
            )
        }
        if let (_, node) = keys["keep"], let keep = parseWholeNumber(node, what: "keep", range: Self.keepRange) {
            subject.keep = keep
        }
        if let (_, node) = keys["max_age"] { subject.maximumAgeMilliseconds = parseAge(node, key: "max_age") }
        if let (_, node) = keys["dateext"], let format = parseDateFormat(node) { subject.dateFormat = format }
        if let (_, node) = keys["olddir"] { subject.oldDirectory = parseOldDirectory(node) }

        if let (_, node) = keys["compress"], let compress = parseBool(node, key: "compress") {
            subject.compress = compress
        }
        if let (key, node) = keys["compress_level"] {
            if !subject.compress {
                error("'compress_level' applies only with compress: true; remove compress_level:", at: key)
            } else if let level = parseWholeNumber(node, what: "compress_level", range: 1...9) {
                subject.compressLevel = Int32(level)
            }
        }
        if let (key, node) = keys["delaycompress"], let delay = parseBool(node, key: "delaycompress") {
            if delay && !subject.compress {
                error(
                    "'delaycompress' delays compression, but compress: is false; remove delaycompress: or compress: false",
                    at: key
                )
            }
            subject.delayCompress = delay
        }
        if let (_, node) = keys["copytruncate"], let copy = parseBool(node, key: "copytruncate") {
            subject.copyTruncate = copy
        }
        if let (_, node) = keys["if_empty"], let empty = parseBool(node, key: "if_empty") {
            subject.rotateEmpty = empty
        }
        if let (key, node) = keys["create"] {
            subject.create = parseCreate(node)
            if subject.copyTruncate && subject.create != nil {
                error(
                    "'create' does not apply with copytruncate: true; the log is copied and truncated in place, so there is no new file to create; remove create: (the log keeps its mode and owner)",
                    at: key
                )
            }
        }
        if let (key, node) = keys["postrotate"] { subject.postRotate = parsePostRotate(node, at: key) }
        if let (_, node) = keys["sweep"] { subject.sweep = parseSweep(node) }

        // A glob ending in `*` matches NAME and NAME-20260127.gz alike: rotations left beside the logs would
        // be rotated again, and again.
        if let entries, subject.oldDirectory == nil {
            for entry in entries {
                guard case .glob(let glob) = entry.path.name, glob.hasSuffix("*"), !glob.hasSuffix("\\*") else {
                    continue
                }
                error(
                    "glob '\(entry.path.raw)' in rotate: ends with '*', so it also matches the rotations left beside the logs (the name, the date and .gz), which would be rotated again; end the glob with the logs' suffix such as '*.log', or move rotations away with olddir:",
                    at: entry.node
                )
            }
        }
        guard errorCount == errorsBefore, entries != nil else { return nil }
        return subject
    }

    /// Parses `every:`: hourly, daily, weekly or monthly.
    private mutating func parseInterval(_ node: Node) -> RotationInterval? {
        let names = RotationInterval.allCases.map(\.rawValue)
        guard let text = parseString(node, key: "every", expected: "one of: \(names.joined(separator: ", "))") else {
            return nil
        }
        if let interval = RotationInterval(rawValue: text) { return interval }
        error("every '\(text)' is not known" + Spelling.hint(for: text, among: names), at: node)
        return nil
    }

    /// Parses `dateext:`: a strftime(3) format with at least one of `dateConversions`, no others (`%%` is
    /// a literal `%`), and no `/`. Errors point at the offending character when the scalar is on one line.
    private mutating func parseDateFormat(_ node: Node) -> String? {
        let allowed = Self.dateConversions.map { "%\($0)" }.joined(separator: " ")
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'dateext' is \(node.kindDescription); expected a strftime format such as \"-%Y%m%d\"", at: node)
            return nil
        }
        let text = scalar.string
        let characters = Array(text.unicodeScalars)
        var conversions = 0
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "/" {
                error(
                    "dateext '\(text)' contains '/'; the date is part of the rotated file's name, so use another separator such as '-'",
                    at: templateLocation(scalar, node: node, offset: index)
                )
                return nil
            }
            guard character == "%" else {
                index += 1
                continue
            }
            guard index + 1 < characters.count else {
                error(
                    "dateext '\(text)' ends with a lone '%'; write '%%' for a percent sign, or a conversion: \(allowed)",
                    at: templateLocation(scalar, node: node, offset: index)
                )
                return nil
            }
            let conversion = Character(characters[index + 1])
            if Self.dateConversions.contains(conversion) {
                conversions += 1
            } else if conversion != "%" {
                error(
                    "dateext '\(text)' uses '%\(conversion)', which is not allowed; use \(allowed) (digits only), such as \"-%Y%m%d\"",
                    at: templateLocation(scalar, node: node, offset: index)
                )
                return nil
            }
            index += 2
        }
        guard conversions > 0 else {
            error(
                "dateext '\(text)' has no date conversion, so every rotation would get the same name; use \(allowed), such as \"-%Y%m%d\"",
                at: node
            )
            return nil
        }
        return text
    }

    /// Parses `olddir:`: an absolute directory, or `{ path:, mode:, owner:, group: }`.
    private mutating func parseOldDirectory(_ node: Node) -> ArchiveDirectory? {
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            return parseDirectory(node, key: "olddir").map { ArchiveDirectory(path: $0) }
        case .mapping(let mapping):
            let errorsBefore = errorCount
            let (keys, suggestions) = checkKeys(mapping, allowed: Self.oldDirectoryKeys, context: "olddir:")
            let path = keys["path"].flatMap { parseDirectory($0.value, key: "olddir") }
            if keys["path"] == nil && !suggestions.contains("path") {
                error(
                    "'olddir' has no path:; add path: with an absolute directory such as /var/log/archive",
                    at: node
                )
            }
            let attributes = parseAttributes(keys)
            guard errorCount == errorsBefore, let path else { return nil }
            return ArchiveDirectory(path: path, attributes: attributes)
        default:
            error(
                "'olddir' is \(node.kindDescription); expected an absolute directory such as /var/log/archive, or { path: /var/log/archive, mode: \"0750\" }",
                at: node
            )
            return nil
        }
    }

    /// Parses `create:`: true (the old file's mode and owner), false (no new file), or `{ mode:, owner:,
    /// group: }`, where a key left out is taken from the old file.
    private mutating func parseCreate(_ node: Node) -> FileAttributes? {
        switch node {
        case .scalar(let scalar) where scalar.value == .bool(true):
            return FileAttributes()
        case .scalar(let scalar) where scalar.value == .bool(false):
            return nil
        case .mapping(let mapping):
            let errorsBefore = errorCount
            let (keys, _) = checkKeys(mapping, allowed: Self.createKeys, context: "create:")
            let attributes = parseAttributes(keys)
            return errorCount == errorsBefore ? attributes : nil
        default:
            error(
                "'create' is \(node.kindDescription); expected true, false, or a map such as { mode: \"0640\", owner: analytics, group: log-readers }",
                at: node
            )
            return nil
        }
    }

    /// `mode:`, `owner:` and `group:` of `create:` or `olddir:`.
    private mutating func parseAttributes(_ keys: [String: (key: Node, value: Node)]) -> FileAttributes {
        FileAttributes(
            mode: keys["mode"].flatMap { parseMode($0.value, key: "mode") },
            owner: keys["owner"].flatMap { parseAccount($0.value, key: "owner") },
            group: keys["group"].flatMap { parseAccount($0.value, key: "group") }
        )
    }

    /// Parses `postrotate:` like `reload:` (`unit:`, `command:`, `signal:`, `to:`); it must say how to reach
    /// the writer, since a rotate rule has no processes of its own to signal.
    private mutating func parsePostRotate(_ node: Node, at key: Node) -> ServiceAction? {
        // Judged on the keys as written, so that these errors show beside those of the values.
        var written: Set<String> = []
        if case .mapping(let mapping) = node {
            for pair in mapping { if let name = pair.key.scalar?.string { written.insert(name) } }
        }
        let errorsBefore = errorCount
        let action = parseServiceAction("postrotate", node, at: key.location(in: file))
        let reachesWriter = !written.isDisjoint(with: ["unit", "command", "signal"])
        if !reachesWriter && (action != nil || errorCount == errorsBefore) {
            error(
                "'postrotate' says nothing to do; give unit: (a systemd unit to reload), command: [PROGRAM, ARGS…], or signal: with to: (the processes that get it)",
                at: node
            )
            return nil
        }
        if written.contains("signal") && written.isDisjoint(with: ["to", "unit", "command"]) {
            error(
                "postrotate has signal: but no to:; a rotate rule has no processes of its own, so add to: with the writer, such as to: { exe: /usr/bin/analytics-service }",
                at: node
            )
            return nil
        }
        return action
    }

    /// Parses `sweep: { chmod:, after:, delete_after: }`.
    private mutating func parseSweep(_ node: Node) -> ArchiveSweep? {
        guard case .mapping(let mapping) = node else {
            error(
                "'sweep' is \(node.kindDescription); expected a map such as { chmod: \"0600\", after: 30d, delete_after: 90d }",
                at: node
            )
            return nil
        }
        let errorsBefore = errorCount
        let (keys, suggestions) = checkKeys(mapping, allowed: Self.sweepKeys, context: "sweep:")
        var sweep = ArchiveSweep()
        sweep.mode = keys["chmod"].flatMap { parseMode($0.value, key: "chmod") }
        sweep.chmodAfterMilliseconds = keys["after"].flatMap { parseAge($0.value, key: "after") }
        sweep.deleteAfterMilliseconds = keys["delete_after"].flatMap { parseAge($0.value, key: "delete_after") }
        if let (key, _) = keys["chmod"], keys["after"] == nil, !suggestions.contains("after") {
            error(
                "'chmod' in sweep: needs after:, the age from which archives get the mode, such as after: 30d",
                at: key
            )
        }
        if let (key, _) = keys["after"], keys["chmod"] == nil, !suggestions.contains("chmod") {
            error(
                "'after' in sweep: says when chmod: applies; add chmod: (such as \"0600\"), or remove after:",
                at: key
            )
        }
        if keys["chmod"] == nil && keys["delete_after"] == nil && errorCount == errorsBefore {
            error("'sweep' does nothing; add chmod: with after:, delete_after:, or both", at: node)
        }
        if let after = sweep.chmodAfterMilliseconds, let delete = sweep.deleteAfterMilliseconds, delete <= after,
            let (_, value) = keys["delete_after"]
        {
            error(
                "'delete_after' (\(RuleAge.text(delete))) is not later than after: (\(RuleAge.text(after))), so archives would be deleted before chmod: applies; raise delete_after: or remove chmod:",
                at: value
            )
        }
        return errorCount == errorsBefore ? sweep : nil
    }

    /// Reports the rotation keys on rules that are not rotate rules.
    mutating func reportRotateOnlyKeys(_ keys: [String: (key: Node, value: Node)], kind: RuleKind) {
        for name in Self.rotateOnlyKeys {
            guard let (key, _) = keys[name] else { continue }
            error("'\(name)' does not apply to \(kind.name) rules; it belongs to rotate: rules", at: key)
        }
    }
}
