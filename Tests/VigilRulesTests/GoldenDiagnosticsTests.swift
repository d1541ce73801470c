import Foundation
import Testing
import VigilRules

/// The directory holding `valid/` and `invalid/` fixtures, found from this source file's path.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

/// Reads a fixture as text; `name` is relative to `Fixtures/`, e.g. `invalid/bad-paths.yaml`.
func fixtureText(_ name: String) throws -> String {
    try String(contentsOf: fixturesDirectory.appendingPathComponent(name), encoding: .utf8)
}

/// Compiles one fixture with its relative name as the display name.
func compileFixture(_ name: String) throws -> RuleCompilation {
    RuleCompiler.compile(sources: [(file: name, text: try fixtureText(name))])
}

/// The base names of the fixtures in `Fixtures/SUBDIR/*.yaml`, sorted.
func fixtureNames(_ subdirectory: String) -> [String] {
    let directory = fixturesDirectory.appendingPathComponent(subdirectory)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
    return names.filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
}

/// Each `Fixtures/invalid/NAME.yaml` must produce exactly the lines of `NAME.expected`.
///
/// Set `VIGIL_UPDATE_GOLDEN=1` to rewrite the `.expected` files from the current output (then review the diff).
@Suite struct GoldenDiagnosticsTests {
    @Test func thereAreEnoughInvalidFixtures() {
        #expect(fixtureNames("invalid").count >= 12)
    }

    @Test(arguments: fixtureNames("invalid"))
    func invalidFixture(_ name: String) throws {
        let compilation = try compileFixture("invalid/\(name).yaml")
        let actual = compilation.diagnostics.map(\.description).joined(separator: "\n") + "\n"
        let expectedURL = fixturesDirectory.appendingPathComponent("invalid/\(name).expected")
        if ProcessInfo.processInfo.environment["VIGIL_UPDATE_GOLDEN"] == "1" {
            try actual.write(to: expectedURL, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: expectedURL, encoding: .utf8)
        #expect(actual == expected, "diagnostics for invalid/\(name).yaml differ from \(name).expected")
        #expect(compilation.ruleSet == nil)
        #expect(compilation.errorCount > 0)
    }

    @Test func threeErrorsFixtureHasExactlyThreeDistinctErrors() throws {
        let compilation = try compileFixture("invalid/three-errors.yaml")
        #expect(compilation.errorCount == 3)
        #expect(compilation.summary == "vigil: 3 errors in 'invalid/three-errors.yaml'; no rules were loaded")
        let messages = compilation.diagnostics.map(\.message)
        #expect(messages.contains { $0.hasPrefix("unknown action 'chmood'") })
        #expect(messages.contains { $0.hasPrefix("severity 'urgent' is not known") })
        #expect(messages.contains { $0.hasPrefix("unknown field '{hots}'") })
    }

    @Test func columnsCountAsAHumanDoes() throws {
        // Line 6 is `  then: [alert, chmood]`; 'chmood' starts at column 17 (1-based).
        let compilation = try compileFixture("invalid/three-errors.yaml")
        let action = try #require(compilation.diagnostics.first { $0.message.contains("chmood") })
        #expect(action.location.line == 6)
        #expect(action.location.column == 17)
        // Line 5 is `  message: "SSL verification disabled on {hots} in {path}"`: the `{` is column 42.
        let field = try #require(compilation.diagnostics.first { $0.message.contains("hots") })
        #expect(field.location.line == 5)
        #expect(field.location.column == 42)
    }
}
