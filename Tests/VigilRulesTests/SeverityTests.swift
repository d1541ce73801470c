import Testing
import VigilRules

@Suite struct SeverityTests {
    @Test func criticalIsHighest() {
        #expect(Severity.allCases.max() == .critical)
        #expect(Severity.info < Severity.warning)
    }
}
