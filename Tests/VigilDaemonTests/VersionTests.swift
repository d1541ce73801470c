import Testing
import VigilDaemon

@Suite struct VersionTests {
    @Test func versionIsSemantic() {
        #expect(VigilVersion.string.split(separator: ".").count == 3)
    }
}
