/// One problem found while compiling rule files, printed like a compiler error.
///
/// `description` is one line: `file:line:col: error: MESSAGE`, or `file: error: MESSAGE` when no line
/// applies (a file that cannot be read, a directory without rule files). Messages say what is wrong,
/// then `; expected …` or how to fix it.
public struct RuleDiagnostic: Sendable, Equatable, CustomStringConvertible {
    /// Whether a diagnostic stops the rule set from loading.
    public enum Level: String, Sendable, Equatable {
        /// The rule set is rejected.
        case error
        /// Worth fixing; the rule set still loads.
        case warning
    }

    /// Where the problem is. `line` and `column` are 1-based; both are 0 when the whole file is meant.
    public var location: SourceLocation
    /// Error or warning.
    public var severity: Level
    /// What is wrong and what to do, without the location prefix.
    public var message: String

    /// Creates a diagnostic.
    public init(location: SourceLocation, severity: Level, message: String) {
        self.location = location
        self.severity = severity
        self.message = message
    }

    /// Creates an error diagnostic.
    public static func error(_ message: String, at location: SourceLocation) -> RuleDiagnostic {
        RuleDiagnostic(location: location, severity: .error, message: message)
    }

    /// Creates a warning diagnostic.
    public static func warning(_ message: String, at location: SourceLocation) -> RuleDiagnostic {
        RuleDiagnostic(location: location, severity: .warning, message: message)
    }

    /// `file:line:col: error: MESSAGE`, or `file: error: MESSAGE` for whole-file problems.
    public var description: String {
        if location.line > 0 {
            return "\(location): \(severity.rawValue): \(message)"
        }
        return "\(location.file): \(severity.rawValue): \(message)"
    }
}
