/// Splits a message template into literal text and `{field}` references, keeping offsets for diagnostics.
enum TemplateParser {
    /// A segment and the scalar offset where it starts (for a field: the offset of its `{`).
    struct Located {
        /// The literal text or field.
        var segment: MessageTemplate.Segment
        /// Offset in Unicode scalars from the start of the template.
        var offset: Int
    }

    /// The segments parsed up to the first error, and that error if any; `context` names the template in
    /// errors ("message", "by:").
    static func parse(
        _ source: String,
        context: String = "message"
    ) -> (segments: [Located], error: MessageTemplate.ParseError?) {
        let scalars = Array(source.unicodeScalars)
        var segments: [Located] = []
        var literal = String.UnicodeScalarView()
        var literalStart = 0
        var index = 0

        func flushLiteral() {
            if !literal.isEmpty {
                segments.append(Located(segment: .literal(String(literal)), offset: literalStart))
                literal = String.UnicodeScalarView()
            }
        }

        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "{" {
                if index + 1 < scalars.count, scalars[index + 1] == "{" {
                    if literal.isEmpty { literalStart = index }
                    literal.append("{")
                    index += 2
                    continue
                }
                var end = index + 1
                while end < scalars.count, scalars[end] != "}", scalars[end] != "{" { end += 1 }
                guard end < scalars.count, scalars[end] == "}" else {
                    let error = MessageTemplate.ParseError(
                        offset: index,
                        message:
                            "unclosed '{' in \(context); close the field with '}' or write '{{' for a literal brace"
                    )
                    return (segments, error)
                }
                let name = String(String.UnicodeScalarView(scalars[(index + 1)..<end]))
                guard !name.isEmpty else {
                    let error = MessageTemplate.ParseError(
                        offset: index,
                        message: "empty field '{}' in \(context); write a field name or '{{}}' for literal braces"
                    )
                    return (segments, error)
                }
                flushLiteral()
                segments.append(Located(segment: .field(name), offset: index))
                index = end + 1
            } else if scalar == "}" {
                guard index + 1 < scalars.count, scalars[index + 1] == "}" else {
                    let error = MessageTemplate.ParseError(
                        offset: index,
                        message: "unmatched '}' in \(context); write '}}' for a literal brace"
                    )
                    return (segments, error)
                }
                if literal.isEmpty { literalStart = index }
                literal.append("}")
                index += 2
            } else {
                if literal.isEmpty { literalStart = index }
                literal.append(scalar)
                index += 1
            }
        }
        flushLiteral()
        return (segments, nil)
    }
}
