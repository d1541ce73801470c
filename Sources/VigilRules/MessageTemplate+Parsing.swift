extension MessageTemplate {
    /// Why a message template could not be parsed.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Offset of the offending `{` or `}` in the template, in Unicode scalars from 0.
        public var offset: Int
        /// What is wrong and how to fix it.
        public var message: String

        /// Creates a parse error.
        public init(offset: Int, message: String) {
            self.offset = offset
            self.message = message
        }

        /// The message.
        public var description: String { message }
    }

    /// The fields a `config:` rule's message may use.
    public static let configFields = [
        "rule", "severity", "host", "path", "file", "key", "value", "old", "new", "changes",
    ]

    /// The fields a `file:` rule's message may use.
    public static let fileFields = ["rule", "severity", "host", "path", "file", "change"]

    /// The message used when a rule has no `message:`.
    public static let defaultSource = "{rule}: {path}"

    /// Parses `{field}` references; `{{` and `}}` stand for literal braces.
    ///
    /// Field names are not checked here (that depends on the rule kind, see `configFields`).
    /// Throws for an unclosed `{`, a lone `}`, or an empty `{}`.
    public init(parsing source: String) throws(ParseError) {
        let parsed = TemplateParser.parse(source)
        if let error = parsed.error { throw error }
        self.init(segments: parsed.segments.map(\.segment), source: source)
    }

    /// The field names referenced, in order of first use.
    public var fieldNames: [String] {
        var seen: Set<String> = []
        var names: [String] = []
        for case .field(let name) in segments where seen.insert(name).inserted {
            names.append(name)
        }
        return names
    }
}
