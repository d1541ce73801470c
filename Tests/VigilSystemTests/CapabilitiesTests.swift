import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// libcap against the kernel's own account in /proc. Capabilities belong to threads, so the test that
/// restricts them does it on a throwaway thread: the test process keeps every capability it had.
@Suite struct CapabilitiesTests {
    /// The `Cap…` line of `/proc/<path>/status` (e.g. `CapEff`) as a set.
    private func statusSet(_ key: String, of path: String = "thread-self") -> CapabilitySet? {
        guard let text = ProcFile.readText("/proc/\(path)/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("\(key):") {
            let hex = line.dropFirst(key.count + 1).trimmingPrefix(while: { $0 == "\t" || $0 == " " })
            return UInt64(hex, radix: 16).map(CapabilitySet.init(rawValue:))
        }
        return nil
    }

    @Test func currentMatchesProcStatus() {
        let state = Capabilities.current()
        #expect(state.effective == statusSet("CapEff"))
        #expect(state.permitted == statusSet("CapPrm"))
        #expect(state.inheritable == statusSet("CapInh"))
        #expect(state.bounding == statusSet("CapBnd"))
        #expect(state.ambient == statusSet("CapAmb"))
        #expect(Capabilities.has(.netAdmin) == (statusSet("CapEff")?.has(.netAdmin) ?? false))
    }

    @Test func supportedMatchesCapLastCap() {
        let last = ProcFile.readInteger("/proc/sys/kernel/cap_last_cap")
        #expect(last != nil)
        #expect(Capabilities.supported.numbers == Array(0...(last ?? 0)))
    }

    @Test func namesAndNumbers() {
        #expect(CapabilitySet(names: ["CAP_NET_ADMIN", "cap_kill", "sys_ptrace"]) == [.netAdmin, .kill, .sysPtrace])
        #expect(CapabilitySet(names: ["CAP_NET_ADMIN", "CAP_NOPE"]) == nil)
        #expect(CapabilitySet(names: [String]()) == [])
        #expect(CapabilitySet.netAdmin.names == ["CAP_NET_ADMIN"])
        #expect(([.dacReadSearch, .chown] as CapabilitySet).names == ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"])
        #expect(CapabilitySet.name(of: 40) == "CAP_CHECKPOINT_RESTORE" && CapabilitySet.name(of: 41) == "CAP_41")
        #expect(CapabilitySet.number(named: "CAP_SYS_RESOURCE") == 24)
        #expect(CapabilitySet([]).description == "none")
        let all = CapabilitySet(rawValue: (1 << 41) - 1)
        for number in 0...40 { #expect(CapabilitySet.number(named: CapabilitySet.name(of: number)) == number) }
        #expect(all.numbers.count == 41)
    }

    @Test(.enabled(if: access("/usr/sbin/capsh", X_OK) == 0, "needs capsh (Debian libcap2-bin)"))
    func namesAgreeWithCapsh() throws {
        let tree = TempTree("capsh")
        defer { tree.remove() }
        let all = CapabilitySet(rawValue: (1 << 41) - 1)
        let output = tree.path("decode.txt")
        let pid = try Spawn.start(
            "/usr/sbin/capsh",
            arguments: ["--decode=0x" + String(all.rawValue, radix: 16)],
            streams: .file(output)
        )
        let status = try Spawn.wait(pid)
        #expect(status == 0)
        // "0x000001ffffffffff=cap_chown,cap_dac_override,…"
        let text = ProcFile.readText(output) ?? ""
        let listed = text.split(separator: "=").last.map { $0.split(separator: ",").map { $0.uppercased() } }
        #expect(listed?.map { Substring($0).trimmingCharacters() } == all.names)
    }

    @Test(.enabled(if: Capabilities.current().permitted.has(.netAdmin), "needs CAP_NET_ADMIN in the permitted set"))
    func restrictOnAThrowawayThreadKeepsOnlyWhatWasAsked() {
        let before = Capabilities.current()
        let leaderBefore = statusSet("CapEff", of: "self")
        let seen = Locked<(kept: CapabilitySet, state: Capabilities.State, procEff: CapabilitySet?)?>(nil)
        let thread = Threads.spawn(name: "vigil-test-caps") {
            do {
                let kept = try Capabilities.restrict(to: [.netAdmin, .sysResource, .kill])
                let state = Capabilities.current()
                let text = ProcFile.readText("/proc/thread-self/status") ?? ""
                let eff = text.split(separator: "\n").first { $0.hasPrefix("CapEff:") }
                    .flatMap { UInt64($0.dropFirst(7).trimmingPrefix(while: { $0 == "\t" }), radix: 16) }
                    .map(CapabilitySet.init(rawValue:))
                seen.withLock { $0 = (kept, state, eff) }
            } catch {
                Issue.record("restrict failed: \(error)")
            }
        }
        Threads.join(thread)
        let result = seen.withLock { $0 }
        let expected = CapabilitySet([.netAdmin, .sysResource, .kill]).intersection(before.permitted)
        #expect(result?.kept == expected, "CAP_SYS_RESOURCE is kept only where it was permitted")
        #expect(result?.state.effective == expected && result?.state.permitted == expected)
        #expect(result?.state.inheritable == [] && result?.state.ambient == [])
        #expect(result?.procEff == expected, "the kernel agrees: /proc/thread-self/status CapEff")
        if before.effective.has(.setpcap) {
            #expect(result?.state.bounding == expected, "with CAP_SETPCAP the bounding set is dropped too")
        }
        // Capabilities are per thread: this thread and the process's main thread keep theirs.
        #expect(Capabilities.current() == before)
        #expect(statusSet("CapEff", of: "self") == leaderBefore)
    }
}

extension Substring {
    /// Without leading and trailing whitespace (no Foundation).
    fileprivate func trimmingCharacters() -> String {
        String(self.trimmingPrefix(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
