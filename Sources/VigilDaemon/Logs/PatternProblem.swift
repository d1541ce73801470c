import VigilRules
import VigilSystem

/// Turns an engine's refusal of one pattern into a diagnostic at the pattern, with what to do about it.
enum PatternProblem {
    /// `pattern 'EXPRESSION'`, shortened when long (generated rule sets have long alternations).
    static func quote(_ pattern: LogPattern) -> String {
        let expression = pattern.expression
        guard expression.count > 80 else { return "pattern '\(expression)'" }
        return "pattern '\(expression.prefix(77))…'"
    }

    /// Compiles `compiled` alone with Vectorscan; nil when it is accepted, else the diagnostic.
    static func vectorscan(_ pattern: LogPattern, _ compiled: PatternDatabase.Pattern) -> RuleDiagnostic? {
        do {
            _ = try PatternDatabase([compiled])
            return nil
        } catch {
            return diagnostic(pattern, engineMessage: error.message)
        }
    }

    /// The diagnostic for Vectorscan's `engineMessage` about `pattern`, positioned at the index the message
    /// names, or else where PCRE2 stops, or else at the pattern's start.
    static func diagnostic(_ pattern: LogPattern, engineMessage: String) -> RuleDiagnostic {
        var message = engineMessage
        while message.hasSuffix(".") { message.removeLast() }
        // Vectorscan's text names a flag of its C API; the user needs the meaning.
        if message.hasPrefix("Pattern matches empty buffer") { message = "it matches an empty line" }
        var offset = index(in: message)
        if offset == nil, let error = pcre2Error(pattern) { offset = error.offset }
        let text = "\(quote(pattern)) cannot be compiled: \(message); \(fix(for: message))"
        return .error(text, at: pattern.location(ofOffset: min(offset ?? 0, pattern.expression.utf8.count)))
    }

    private static func pcre2Error(_ pattern: LogPattern) -> CapturePattern.CompileError? {
        do {
            _ = try CapturePattern(pattern.expression, caseless: pattern.caseless)
            return nil
        } catch {
            return error
        }
    }

    /// The N of "at index N" or "index N" in Vectorscan's message.
    static func index(in message: String) -> Int? {
        guard let range = message.firstRange(of: "index ") else { return nil }
        let digits = message[range.upperBound...].prefix(while: \.isNumber)
        return Int(digits)
    }

    /// What to do, by the kind of refusal.
    static func fix(for message: String) -> String {
        let lower = message.lowercased()
        if lower.contains("back-reference") || lower.contains("backreference") {
            return "Vectorscan does not support backreferences; write the repeated text as a pattern of its own"
                + " instead of referring to a group"
        }
        if lower.contains("zero-width assertion") || lower.contains("lookahead") || lower.contains("lookbehind") {
            return "Vectorscan does not support lookahead or lookbehind assertions; match the surrounding text"
                + " itself (a named group can pick out the part you need)"
        }
        if lower.contains("\\k") {
            return "Vectorscan does not support '\\K'; match the whole text and use a named group for the part you"
                + " need"
        }
        if lower.contains("missing close parenthesis") {
            return "close the group with ')', or write '\\(' for a literal parenthesis"
        }
        if lower.contains("unmatched parenthes") {
            return "remove the ')' or write '\\)' for a literal parenthesis"
        }
        if lower.contains("range out of order") {
            return "write the range from low to high, e.g. '[a-z]', or put '-' last for a literal dash"
        }
        if lower.contains("character class") || lower.contains("missing ]") || lower.contains("unterminated") {
            return "close the class with ']', or write '\\[' for a literal bracket"
        }
        if lower.contains("invalid repeat") || lower.contains("nothing to repeat") {
            return "write '\\' before a literal '*', '+', '?' or '{', and give bounds as {min,max} with min ≤ max"
        }
        if lower.contains("posix named class") {
            return "use a POSIX class such as '[[:alpha:]]', '[[:digit:]]' or '[[:space:]]'"
        }
        if lower.contains("unescaped \\ at end") {
            return "write '\\\\' for a literal backslash"
        }
        if lower.contains("matches empty buffer") || lower.contains("matches an empty line") {
            return "a pattern that matches an empty line matches every line: make it need at least one character,"
                + " or leave out match: to see every line"
        }
        if lower.contains("too large") || lower.contains("resource limit") {
            return "split the pattern or bound its repeats (e.g. '{1,100}' instead of a large count)"
        }
        if lower.contains("not supported") || lower.contains("unsupported") {
            return "Vectorscan does not support this construct; rewrite the pattern without it"
        }
        return "Vectorscan reads PCRE syntax without backreferences, lookaround or '\\K'; fix the pattern"
    }
}
