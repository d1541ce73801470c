import Testing
import VigilTestSupport

@Suite struct TempTreeTests {
    @Test func writeReplacingLeavesOnlyTheFinalContent() {
        let tree = TempTree("temptree")
        defer { tree.remove() }
        tree.makeDirectory("etc/analytics")
        tree.write("etc/analytics/a.conf", "x = 1\n")
        tree.writeReplacing("etc/analytics/a.conf", "x = 2\n")
        #expect(tree.read("etc/analytics/a.conf") == "x = 2\n")
        #expect(tree.read("etc/analytics/a.conf.vigil-tmp") == nil)
    }
}
