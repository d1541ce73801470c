import Testing
import VigilCore

@Suite struct DeadlineHeapTests {
    @Test func popsInDeadlineOrderAndOnlyWhenDue() {
        var heap = DeadlineHeap<Int>()
        var generator = SystemRandomNumberGenerator()
        var deadlines: [UInt64] = []
        for i in 0..<1000 {
            let deadline = UInt64.random(in: 1...10_000, using: &generator)
            deadlines.append(deadline)
            heap.push(deadline, i)
        }
        #expect(heap.earliest == deadlines.min())
        #expect(heap.popDue(now: deadlines.min()! - 1) == nil)
        var popped: [UInt64] = []
        while let entry = heap.popDue(now: 5000) { popped.append(entry.deadline) }
        #expect(popped == deadlines.filter { $0 <= 5000 }.sorted())
        while let entry = heap.popDue(now: .max) { popped.append(entry.deadline) }
        #expect(popped == deadlines.sorted())
        #expect(heap.isEmpty)
    }
}
