internal import Yams

/// Turns a Yams error into one positioned diagnostic (never a dump of the document or a stack trace).
enum YAMLErrorDiagnostic {
    /// The diagnostic for `error`, raised while composing `text` of `file`.
    static func make(_ error: YamlError, file: String, text: String) -> RuleDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _),
            .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            if problem == "but found another document" {
                return .error(
                    "a rule file holds one YAML document, but another one starts here; remove the '---' line or split the file",
                    at: SourceLocation(file: file, line: mark.line, column: mark.column)
                )
            }
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
            }
            message += "; check the indentation and quoting here"
            return .error(message, at: SourceLocation(file: file, line: mark.line, column: mark.column))
        case .reader(let problem, let offset, _, _):
            let (line, column) = position(ofCharacter: offset ?? 0, in: text)
            return .error(
                "invalid YAML: \(problem); remove the character or save the file as UTF-8 text",
                at: SourceLocation(file: file, line: line, column: column)
            )
        case .duplicatedKeysInMapping(let duplicates, let context):
            let names = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return .error(
                "duplicate \(noun) \(names) in a map; each key may appear once, so remove or rename the repeat",
                at: SourceLocation(file: file, line: context.mark.line, column: context.mark.column)
            )
        default:
            return .error("invalid YAML: \(error)", at: SourceLocation(file: file, line: 0, column: 0))
        }
    }

    /// 1-based line and column (in Unicode scalars) of the `offset`-th character of `text`.
    static func position(ofCharacter offset: Int, in text: String) -> (line: Int, column: Int) {
        var line = 1
        var column = 1
        for character in text.prefix(offset) {
            if character == "\n" || character == "\r\n" {
                line += 1
                column = 1
            } else {
                column += character.unicodeScalars.count
            }
        }
        return (line, column)
    }
}
