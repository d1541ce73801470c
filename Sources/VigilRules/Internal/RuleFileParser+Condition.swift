internal import Yams

extension RuleFileParser {
    /// The tests a key condition may use.
    static let testKeys = ["is", "is_not", "in", "gt", "ge", "lt", "le", "present", "missing"]
    /// The combinators.
    static let combinatorKeys = ["all", "any", "not"]
    /// Every key a condition map may have.
    static let conditionKeys = ["key"] + testKeys + combinatorKeys

    /// Parses a `when:` condition (or a nested one); nil after reporting its errors.
    mutating func parseCondition(_ node: Node) -> Condition? {
        guard case .mapping(let mapping) = node else {
            var message =
                "condition is \(node.kindDescription); expected a map such as { key: NAME, is: VALUE }, or all:, any:, not:"
            if case .sequence = node { message += " (write all: [...] to require every condition in a list)" }
            error(message, at: node)
            return nil
        }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.conditionKeys, context: "condition")
        let unknownKeys = errorCount > errorsBefore
        let present = mapping.compactMap { pair -> (String, Node)? in
            guard let name = pair.key.scalar?.string, Self.conditionKeys.contains(name) else { return nil }
            return (name, pair.key)
        }
        let combinators = present.filter { Self.combinatorKeys.contains($0.0) }
        if let (combinator, _) = combinators.first {
            if let (other, otherKey) = present.first(where: { $0.0 != combinator }) {
                error(
                    "a condition with '\(combinator)' takes no other keys, but has '\(other)'; nest conditions instead, e.g. all: [{ key: a, is: 1 }, { any: [...] }]",
                    at: otherKey
                )
                return nil
            }
            let value = keys[combinator]!.value
            switch combinator {
            case "not":
                guard let inner = parseCondition(value) else { return nil }
                return unknownKeys ? nil : .not(inner)
            default:
                guard case .sequence(let sequence) = value, !sequence.isEmpty else {
                    let found = value.kindDescription == "a list" ? "an empty list" : value.kindDescription
                    error("'\(combinator)' is \(found); expected a list of conditions", at: value)
                    return nil
                }
                var conditions: [Condition] = []
                var failed = false
                for element in sequence {
                    if let condition = parseCondition(element) { conditions.append(condition) } else { failed = true }
                }
                guard !failed, !unknownKeys else { return nil }
                return combinator == "all" ? .all(conditions) : .any(conditions)
            }
        }

        let tests = present.filter { Self.testKeys.contains($0.0) }
        let testList = Self.testKeys.joined(separator: ", ")
        guard let (_, keyValue) = keys["key"] else {
            if let (test, _) = tests.first {
                error("condition has '\(test)' but no key:; add key: NAME to say which key to test", at: node)
            } else if !unknownKeys {
                error(
                    "condition is an empty map; expected key: plus one test (\(testList)), or all:, any:, not:",
                    at: node
                )
            }
            return nil
        }
        guard let rawKey = parseString(keyValue, key: "key", expected: "a key name such as verify_ssl or section.key")
        else {
            return nil
        }
        let key = rawKey.lowercased()
        guard let (test, _) = tests.first else {
            if !unknownKeys {
                error("condition on key '\(rawKey)' has no test; expected one of: \(testList)", at: node)
            }
            return nil
        }
        if tests.count > 1 {
            error(
                "condition on key '\(rawKey)' has two tests, '\(test)' and '\(tests[1].0)'; give one test per condition and combine them with all:",
                at: tests[1].1
            )
            return nil
        }
        guard let parsed = parseTest(test, keys[test]!.value), !unknownKeys else { return nil }
        return .key(KeyCondition(key: key, test: parsed), node.location(in: file))
    }

    /// Parses the value of one test.
    private mutating func parseTest(_ test: String, _ value: Node) -> KeyTest? {
        switch test {
        case "is": return parseLiteral(value, test: test).map(KeyTest.equals)
        case "is_not": return parseLiteral(value, test: test).map(KeyTest.notEquals)
        case "in":
            guard case .sequence(let sequence) = value, !sequence.isEmpty else {
                let found = value.kindDescription == "a list" ? "an empty list" : value.kindDescription
                error("'in' is \(found); expected a list of values such as [a, b] (use is: for one value)", at: value)
                return nil
            }
            var literals: [ConfigLiteral] = []
            var failed = false
            for element in sequence {
                if let literal = parseLiteral(element, test: test) { literals.append(literal) } else { failed = true }
            }
            return failed ? nil : .oneOf(literals)
        case "gt": return parseNumber(value, test: test).map(KeyTest.greaterThan)
        case "ge": return parseNumber(value, test: test).map(KeyTest.greaterOrEqual)
        case "lt": return parseNumber(value, test: test).map(KeyTest.lessThan)
        case "le": return parseNumber(value, test: test).map(KeyTest.lessOrEqual)
        case "present", "missing":
            guard case .scalar(let scalar) = value, scalar.value == .bool(true) else {
                let other = test == "present" ? "missing" : "present"
                error("'\(test)' takes only true; to test the opposite write \(other): true", at: value)
                return nil
            }
            return test == "present" ? .present : .missing
        default:
            return nil
        }
    }

    /// A literal for `is`, `is_not` and `in`: its YAML type decides how it compares.
    private mutating func parseLiteral(_ node: Node, test: String) -> ConfigLiteral? {
        guard case .scalar(let scalar) = node else {
            let hint = test == "in" ? "" : " (use in: for a list of values)"
            error("value of '\(test)' is \(node.kindDescription); expected a single value\(hint)", at: node)
            return nil
        }
        switch scalar.value {
        case .null:
            error(
                "'\(test)' has no value; write a value, quote it (\"\") for an empty string, or use missing: true",
                at: node
            )
            return nil
        case .bool(let value):
            return .bool(value)
        case .number(let value):
            return .number(value)
        case .string(let text):
            if scalar.isYAML11Boolean {
                warning(
                    "'\(text)' is compared as text, not as a boolean; write true or false to match every spelling (yes/no/on/off/1/0), or quote it",
                    at: node
                )
            }
            return .string(text)
        }
    }

    /// A number for `gt`, `ge`, `lt`, `le` (quoted or not).
    private mutating func parseNumber(_ node: Node, test: String) -> Double? {
        if case .scalar(let scalar) = node, let number = DecimalNumber.parse(scalar.string) {
            return number
        }
        if case .scalar(let scalar) = node, scalar.value != .null {
            error(
                "'\(test)' needs a number, but '\(scalar.string)' is not one; write a decimal number such as 80 or 0.5",
                at: node
            )
        } else {
            error("'\(test)' is \(node.kindDescription); expected a decimal number such as 80 or 0.5", at: node)
        }
        return nil
    }
}
