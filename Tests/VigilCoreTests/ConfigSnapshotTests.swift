import Testing
import VigilCore

@Suite struct ConfigSnapshotTests {
    @Test func lookupIsCaseInsensitive() {
        let entry = ConfigEntry(key: "verify_ssl", rawKey: "Verify_SSL", value: "false", line: 3)
        let snapshot = ConfigSnapshot(entries: ["verify_ssl": entry])
        #expect(snapshot.value(forKey: "VERIFY_SSL") == "false")
        #expect(snapshot.value(forKey: "api_url") == nil)
    }
}
