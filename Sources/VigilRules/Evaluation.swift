public import VigilCore

extension Condition {
    /// Whether the condition holds for one snapshot of a config file.
    ///
    /// A key that is absent makes every test false except `missing` (so `is_not` on an absent key is
    /// false too); `not:` inverts whatever its inner condition gives, absent keys included. A bare key that
    /// appears only inside sections is tested in each; the test holds when it holds for any of them.
    public func evaluate(_ snapshot: ConfigSnapshot) -> Bool {
        switch self {
        case .all(let conditions):
            return conditions.allSatisfy { $0.evaluate(snapshot) }
        case .any(let conditions):
            return conditions.contains { $0.evaluate(snapshot) }
        case .not(let condition):
            return !condition.evaluate(snapshot)
        case .key(let test, _):
            // A bare key may name the setting in several sections: the test holds when it holds for any.
            let values = snapshot.values(forKey: test.key)
            return values.isEmpty ? test.evaluate(nil) : values.contains { test.evaluate($0) }
        }
    }

    /// Every key the condition reads, in order of first mention (for filtering an alert's diff).
    public func keysMentioned() -> [String] {
        var seen: Set<String> = []
        var keys: [String] = []
        collectKeys(into: &keys, seen: &seen)
        return keys
    }

    /// Depth-first walk for `keysMentioned()`.
    private func collectKeys(into keys: inout [String], seen: inout Set<String>) {
        switch self {
        case .all(let conditions), .any(let conditions):
            for condition in conditions { condition.collectKeys(into: &keys, seen: &seen) }
        case .not(let condition):
            condition.collectKeys(into: &keys, seen: &seen)
        case .key(let test, _):
            if seen.insert(test.key).inserted { keys.append(test.key) }
        }
    }
}

extension KeyCondition {
    /// Applies the test to a key's value, or to nil when the key is absent.
    public func evaluate(_ value: String?) -> Bool {
        guard let value else {
            if case .missing = test { return true }
            return false
        }
        switch test {
        case .equals(let literal): return literal.matches(configValue: value)
        case .notEquals(let literal): return !literal.matches(configValue: value)
        case .oneOf(let literals): return literals.contains { $0.matches(configValue: value) }
        case .greaterThan(let bound): return Self.number(value).map { $0 > bound } ?? false
        case .greaterOrEqual(let bound): return Self.number(value).map { $0 >= bound } ?? false
        case .lessThan(let bound): return Self.number(value).map { $0 < bound } ?? false
        case .lessOrEqual(let bound): return Self.number(value).map { $0 <= bound } ?? false
        case .present: return true
        case .missing: return false
        }
    }

    /// A config value as a number (blanks around it ignored), or nil when it is not one.
    private static func number(_ value: String) -> Double? {
        DecimalNumber.parse(ConfigLiteral.trimmed(value))
    }
}

extension ConfigLiteral {
    /// The config values that count as true, compared after trimming and lowercasing.
    public static let trueSpellings: Set<String> = ["true", "yes", "on", "1"]
    /// The config values that count as false, compared after trimming and lowercasing.
    public static let falseSpellings: Set<String> = ["false", "no", "off", "0"]

    /// Whether a config value equals this literal.
    ///
    /// - `.bool(false)` matches `false`, `no`, `off`, `0` in any case, blanks around ignored; `.bool(true)`
    ///   matches `true`, `yes`, `on`, `1`. Any other value matches neither.
    /// - `.number` parses the trimmed value as a decimal number (`80`, `-1`, `2.50`) and compares
    ///   numerically; a value that is not a number never matches.
    /// - `.string` compares exactly (case and blanks count).
    public func matches(configValue: String) -> Bool {
        switch self {
        case .bool(let expected):
            let spelled = String(Self.trimmed(configValue)).lowercased()
            return (expected ? Self.trueSpellings : Self.falseSpellings).contains(spelled)
        case .number(let expected):
            return DecimalNumber.parse(Self.trimmed(configValue)) == expected
        case .string(let expected):
            return configValue == expected
        }
    }

    /// `value` without leading and trailing spaces and tabs.
    static func trimmed(_ value: String) -> Substring {
        var slice = value[...]
        while let first = slice.first, first == " " || first == "\t" { slice.removeFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice.removeLast() }
        return slice
    }
}

extension ConfigTrigger {
    /// Whether a change to `key` concerns this rule.
    ///
    /// For `changes:` the key is matched against each pattern with `fnmatch(3)` semantics, ignoring
    /// case (`*` matches any key, dots included). For `when:` it is one of the keys the condition reads.
    public func matchesChangedKey(_ key: String) -> Bool {
        switch self {
        case .changes(let patterns):
            return patterns.contains { pattern in
                switch GlobPattern.parse(pattern.lowercased()) {
                case .success(let glob): glob.matches(key, ignoringCase: true)
                case .failure: pattern.lowercased() == key.lowercased()
                }
            }
        case .when(let condition):
            return condition.keysMentioned().contains(key.lowercased())
        }
    }
}

extension NamePattern {
    /// Whether a directory entry's name is the watched one. Globs follow `fnmatch(3)` with `FNM_PERIOD`:
    /// a leading `.` (hidden files, editors' swap files) is matched only by a pattern that starts with `.`.
    public func matches(_ name: String) -> Bool {
        switch self {
        case .exact(let exact):
            return name == exact
        case .glob(let pattern):
            switch GlobPattern.parse(pattern) {
            case .success(let glob): return glob.matches(name, leadingPeriod: true)
            case .failure: return false
            }
        }
    }
}
