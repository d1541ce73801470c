import Testing
import VigilRules

@Suite struct TemplateParsingTests {
    @Test func fieldsAndLiterals() throws {
        let template = try MessageTemplate(parsing: "SSL off in {path} ({key} = {value})")
        #expect(
            template.segments == [
                .literal("SSL off in "), .field("path"), .literal(" ("), .field("key"), .literal(" = "),
                .field("value"),
                .literal(")"),
            ]
        )
        #expect(template.fieldNames == ["path", "key", "value"])
        #expect(template.source == "SSL off in {path} ({key} = {value})")
    }

    @Test func doubledBracesAreLiteral() throws {
        let template = try MessageTemplate(parsing: "{{literal}} {rule} }}{{")
        #expect(template.segments == [.literal("{literal} "), .field("rule"), .literal(" }{")])
        #expect(template.render { _ in "X" } == "{literal} X }{")
    }

    @Test func emptyAndPlainTemplates() throws {
        #expect(try MessageTemplate(parsing: "").segments == [])
        #expect(try MessageTemplate(parsing: "no fields").segments == [.literal("no fields")])
        #expect(try MessageTemplate(parsing: "{a}{b}").segments == [.field("a"), .field("b")])
    }

    @Test func renderLeavesUnknownFieldsAsWritten() throws {
        let template = try MessageTemplate(parsing: "{rule} on {host}")
        #expect(template.render { $0 == "rule" ? "r1" : nil } == "r1 on {host}")
    }

    @Test func unclosedBraceReportsItsOffset() {
        #expect(
            throws: MessageTemplate.ParseError(
                offset: 6,
                message: "unclosed '{' in message; close the field with '}' or write '{{' for a literal brace"
            )
        ) {
            try MessageTemplate(parsing: "value {key")
        }
        #expect(throws: MessageTemplate.ParseError.self) { try MessageTemplate(parsing: "{a {b}") }
    }

    @Test func loneClosingBraceAndEmptyFieldAreErrors() {
        #expect(
            throws: MessageTemplate.ParseError(
                offset: 2,
                message: "unmatched '}' in message; write '}}' for a literal brace"
            )
        ) {
            try MessageTemplate(parsing: "a } b")
        }
        #expect(throws: MessageTemplate.ParseError.self) { try MessageTemplate(parsing: "{}") }
    }

    @Test func offsetsCountUnicodeScalars() {
        #expect(
            throws: MessageTemplate.ParseError(
                offset: 3,
                message: "unclosed '{' in message; close the field with '}' or write '{{' for a literal brace"
            )
        ) {
            try MessageTemplate(parsing: "é→ {x")
        }
    }

    @Test func fieldListsPerRuleKind() {
        #expect(
            MessageTemplate.configFields == [
                "rule", "severity", "host", "path", "file", "key", "value", "old", "new", "changes",
            ]
        )
        #expect(MessageTemplate.fileFields == ["rule", "severity", "host", "path", "file", "change"])
    }

    @Test func fieldErrorsInRulesPointAtTheBrace() {
        let compilation = compileText(
            """
            - rule: x
              file: /etc/a
              message: 'in {path}: {change} {old}'
            """
        )
        #expect(
            compilation.diagnostics.map(\.description) == [
                "test.yaml:3:33: error: unknown field '{old}' in message; expected one of: rule, severity, host, path, file, change"
            ]
        )
    }
}
