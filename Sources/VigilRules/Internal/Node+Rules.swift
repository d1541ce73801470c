internal import Yams

extension Node {
    /// How a node is named in a type error: "a list", "a map", "a string", "a number", "a boolean", "empty".
    var kindDescription: String {
        switch self {
        case .mapping: return "a map"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            switch scalar.value {
            case .null: return "empty"
            case .bool: return "a boolean"
            case .number: return "a number"
            case .string: return "a string"
            }
        }
    }

    /// The node's position in `file` (1-based line and column, as Yams reports them).
    func location(in file: String) -> SourceLocation {
        let mark = self.mark
        return SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
    }
}

extension Node.Scalar {
    /// The scalar's meaning under Vigil's rules (see `ScalarValue`).
    var value: ScalarValue {
        guard style == .plain || style == .any else { return .string(string) }
        switch string {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        default:
            if let number = DecimalNumber.parse(string) { return .number(number) }
            return .string(string)
        }
    }

    /// True for unquoted `yes`/`no`/`on`/`off` (any case), which YAML 1.1 reads as booleans and Vigil does not.
    var isYAML11Boolean: Bool {
        guard style == .plain else { return false }
        return ["yes", "no", "on", "off", "y", "n"].contains(string.lowercased())
    }
}
