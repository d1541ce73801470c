import Testing
import VigilCore
import VigilTestSupport

/// The process event decoder plays against datagrams built like the kernel's (T1).
@Suite struct ProcEventDecoderTests {
    /// Decodes `bytes` from an 8-aligned copy offset by `shift` bytes (the kernel's buffer is aligned, but
    /// the decoder must not depend on it).
    private func decode(
        _ bytes: [UInt8],
        shift: Int = 0
    ) -> ([ProcessEventRecord], ProcEventDecoder.DecodeOutcome) {
        var records: [ProcessEventRecord] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count + shift + 1, alignment: 16)
        defer { buffer.deallocate() }
        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[shift..<(shift + bytes.count)])
        slice.copyBytes(from: bytes)
        let outcome = ProcEventDecoder.decode(UnsafeRawBufferPointer(slice), readTime: 99) { records.append($0) }
        return (records, outcome)
    }

    @Test func forkOfAProcessAndOfAThread() {
        var k = KernelBytes()
        k.procFork(parentPid: 100, parentTgid: 100, childPid: 200, childTgid: 200, cpu: 1, timestamp: 5_000)
        k.procFork(parentPid: 100, parentTgid: 100, childPid: 201, childTgid: 200)
        let (records, outcome) = decode(k.bytes)
        #expect(outcome == .init(events: 2))
        #expect(records[0].kind == .fork && records[0].cpu == 1 && records[0].timestamp == 5_000)
        #expect(records[0].readTime == 99)
        #expect(records[0].parentPid == 100 && records[0].parentTgid == 100)
        #expect(records[0].childPid == 200 && records[0].childTgid == 200)
        #expect(records[0].pid == 200 && records[0].tgid == 200 && !records[0].isThread)
        #expect(records[1].isThread && records[1].pid == 201 && records[1].tgid == 200)
    }

    @Test func execSidUidGid() {
        var k = KernelBytes()
        k.procExec(pid: 300, tgid: 300, timestamp: 7)
        k.procSid(pid: 300, tgid: 300)
        k.procId(pid: 300, tgid: 300, real: 1000, effective: 0)
        k.procId(pid: 301, tgid: 300, real: 4, effective: 5, group: true)
        let (records, outcome) = decode(k.bytes, shift: 3)
        #expect(outcome.events == 4 && outcome.malformed == 0)
        #expect(records.map(\.kind) == [.exec, .sid, .uid, .gid])
        #expect(records[0].pid == 300 && records[0].tgid == 300 && records[0].timestamp == 7)
        #expect(records[2].realId == 1000 && records[2].effectiveId == 0)
        #expect(records[3].realId == 4 && records[3].effectiveId == 5 && records[3].isThread)
        #expect(records[0].exitCode == nil && records[0].terminatingSignal == nil && !records[0].coreDumped)
    }

    @Test func ptraceCommCoredumpAndAcknowledgement() {
        var k = KernelBytes()
        k.procAcknowledgement(error: 1)
        k.procPtrace(pid: 400, tgid: 400, tracerPid: 401, tracerTgid: 401)
        k.procComm(pid: 402, tgid: 400, comm: "upload-service-worker")
        k.procCoredump(pid: 400, tgid: 400, parentPid: 1, parentTgid: 1)
        let (records, outcome) = decode(k.bytes)
        #expect(outcome == .init(events: 4))
        #expect(records.map(\.kind) == [.acknowledgement, .ptrace, .comm, .coredump])
        #expect(records[0].acknowledgementError == 1)
        #expect(records[1].tracerPid == 401 && records[1].tracerTgid == 401 && records[1].pid == 400)
        #expect(records[2].commString == "upload-service-" && records[2].commLength == 15)
        #expect(records[2].isThread)
        #expect(records[3].parentTgid == 1 && records[3].pid == 400)
        #expect(records[3].tracerPid == 0 && records[3].acknowledgementError == 0)
    }

    @Test func exitWithCodeThree() {
        var k = KernelBytes()
        k.procExit(pid: 500, tgid: 500, status: KernelBytes.waitStatus(exitCode: 3), parentPid: 9, parentTgid: 9)
        let (records, _) = decode(k.bytes)
        #expect(records.count == 1)
        let exit = records[0]
        #expect(exit.kind == .exit && exit.rawExitStatus == 0x300)
        #expect(exit.exitCode == 3 && exit.terminatingSignal == nil && !exit.coreDumped)
        #expect(exit.exitSignal == 17 && exit.parentPid == 9 && exit.parentTgid == 9)
    }

    @Test func exitBySigkillAndBySigsegvWithCore() {
        var k = KernelBytes()
        k.procExit(pid: 600, tgid: 600, status: KernelBytes.waitStatus(signal: 9))
        k.procExit(pid: 601, tgid: 601, status: KernelBytes.waitStatus(signal: 11, coreDumped: true))
        let (records, outcome) = decode(k.bytes)
        #expect(outcome == .init(events: 2))
        #expect(records[0].terminatingSignal == 9 && records[0].exitCode == nil && !records[0].coreDumped)
        #expect(records[1].terminatingSignal == 11 && records[1].exitCode == nil && records[1].coreDumped)
    }

    @Test func threadExitHasPidDifferentFromTgid() {
        var k = KernelBytes()
        // As measured on 6.18: a non-leader thread exits with exit_signal -1 and no parent.
        k.procExit(pid: 701, tgid: 700, status: 0, exitSignal: -1)
        let (records, _) = decode(k.bytes)
        #expect(records.count == 1 && records[0].isThread && records[0].pid == 701 && records[0].tgid == 700)
        #expect(records[0].exitSignal == -1 && records[0].exitCode == 0 && records[0].parentPid == 0)
    }

    @Test func severalMessagesInOneDatagramKeepTheirOrder() {
        var k = KernelBytes()
        for i in Int32(0)..<50 {
            k.procFork(parentPid: 1, parentTgid: 1, childPid: 1000 + i, childTgid: 1000 + i)
            k.procExec(pid: 1000 + i, tgid: 1000 + i)
            k.procExit(pid: 1000 + i, tgid: 1000 + i, status: KernelBytes.waitStatus(exitCode: i))
        }
        let (records, outcome) = decode(k.bytes, shift: 1)
        #expect(outcome == .init(events: 150))
        #expect(records.count == 150)
        for i in 0..<50 {
            #expect(records[3 * i].kind == .fork && records[3 * i + 1].kind == .exec)
            #expect(records[3 * i + 2].exitCode == Int32(i) && records[3 * i + 2].pid == 1000 + Int32(i))
        }
    }

    @Test func truncatedDatagramDecodesTheWholeMessagesAndCountsTheCut() {
        var k = KernelBytes()
        k.procExec(pid: 1, tgid: 1)
        k.procExit(pid: 1, tgid: 1, status: 0)
        let whole = k.bytes.count
        #expect(whole == 2 * ProcEventDecoder.messageSize)
        for cut in [whole - 1, whole - 20, ProcEventDecoder.messageSize + 10, ProcEventDecoder.messageSize + 16] {
            let (records, outcome) = decode(k.truncated(to: cut))
            #expect(records.count == 1 && records[0].kind == .exec, "cut at \(cut)")
            #expect(outcome.malformed == 1 && outcome.events == 1, "cut at \(cut)")
        }
        let (none, outcome) = decode(k.truncated(to: 5))
        #expect(none.isEmpty && outcome == .init(malformed: 1))
        #expect(decode([]).1 == .init())
    }

    @Test func inconsistentLengthsAreMalformedNotRead() {
        var k = KernelBytes()
        k.procExit(pid: 1, tgid: 1, status: 0, forging: .init(connectorDataLength: 24))  // exit needs 16 + 24 bytes
        k.procExec(pid: 2, tgid: 2, forging: .init(connectorDataLength: 200))  // runs past the message
        k.netlink(type: 3, payload: [1, 0, 0, 0, 1, 0, 0, 0])  // too short for a cn_msg
        k.procExec(pid: 3, tgid: 3)
        let (records, outcome) = decode(k.bytes)
        #expect(outcome == .init(events: 1, malformed: 3))
        #expect(records.map(\.pid) == [3])

        var bad = KernelBytes()
        bad.procExec(pid: 4, tgid: 4, forging: .init(messageLength: 8))  // shorter than its own header: stop
        bad.procExec(pid: 5, tgid: 5)
        let (stopped, badOutcome) = decode(bad.bytes)
        #expect(stopped.isEmpty && badOutcome == .init(malformed: 1))
    }

    @Test func otherConnectorsNoopsErrorsAndUnknownKindsAreSkipped() {
        var k = KernelBytes()
        k.netlinkNoop()
        k.procExec(pid: 1, tgid: 1, forging: .init(connectorIndex: 2))  // CN_IDX_CIFS
        k.procExec(pid: 1, tgid: 1, forging: .init(connectorValue: 7))
        k.procEvent(what: 0x400, eventData: [])  // a kind from a newer kernel
        k.netlinkError(-1)
        k.procExec(pid: 8, tgid: 8)
        let (records, outcome) = decode(k.bytes)
        #expect(outcome == .init(events: 1, ignored: 4, errors: 1))
        #expect(records.count == 1 && records[0].pid == 8)
    }

    @Test func kindsMapTheKernelBits() {
        for kind in ProcEventKind.allCases {
            #expect(ProcEventKind(what: kind.what) == kind)
        }
        #expect(ProcEventKind(what: 0x8000_0001) == nil)
        #expect(MemoryLayout<ProcessEventRecord>.size == 80)
    }
}
