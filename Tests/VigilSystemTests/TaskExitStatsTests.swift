import SystemPackage
import Testing
import VigilHarness
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's taskstats exit records, from real children: the name and uid of a process that is gone (and
/// reaped) before anything could read its `/proc` entry. Waits are polls with a deadline on the socket.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct TaskExitStatsTests {
    /// Whether the listener can be set up here (CAP_NET_ADMIN, the initial namespaces, CONFIG_TASKSTATS).
    static let openError: TaskExitStats.OpenError? = {
        do throws(TaskExitStats.OpenError) {
            _ = try TaskExitStats(receiveBufferSize: 1 << 20)
            return nil
        } catch {
            return error
        }
    }()
    static let available = openError == nil

    /// Reads records until `match` accepts one, or nil after `milliseconds`.
    static func first(
        _ stats: TaskExitStats,
        within milliseconds: Int,
        where match: (TaskExitStats.Exit) -> Bool
    ) -> TaskExitStats.Exit? {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: TaskExitStats.recommendedReadSize, alignment: 8)
        defer { buffer.deallocate() }
        let deadline = Clock.monotonicNanoseconds() + UInt64(milliseconds) * 1_000_000
        var found: TaskExitStats.Exit?
        while found == nil {
            switch stats.receive(into: buffer, { if found == nil && match($0) { found = $0 } }) {
            case .datagram, .lost: continue
            case .wouldBlock:
                let now = Clock.monotonicNanoseconds()
                guard now < deadline else { return nil }
                var pfd = pollfd(fd: stats.descriptor, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, CInt((deadline - now) / 1_000_000) + 1)
            }
        }
        return found
    }

    @Test(.enabled(if: available, "needs taskstats: CAP_NET_ADMIN in the initial namespaces, CONFIG_TASKSTATS"))
    func aReapedProcessIsNamedByItsExitRecord() throws {
        let stats = try TaskExitStats(receiveBufferSize: 1 << 20)
        let tree = TempTree("taskstats")
        defer { tree.remove() }
        // A program under a name of its own, run and reaped before anything looks at it.
        let program = tree.root + "/vq-short-lived"
        try StandIn.install("/bin/true", at: program)
        let process = try ChildProcess(executable: program, arguments: [])
        let child = process.pid
        #expect(process.wait(timeoutMilliseconds: 5000) == 0)
        #expect(access("/proc/\(child)/stat", F_OK) != 0, "the child is reaped: /proc has nothing about it")
        let record = Self.first(stats, within: 5000) { $0.pid == child }
        let exit = try #require(record, "no exit record for pid \(child) within 5 s")
        #expect(exit.comm == "vq-short-lived")
        #expect(exit.tgid == child)
        #expect(exit.parent == getpid())
        #expect(exit.realUser == getuid())
        var info = stat()
        #expect(stat(program, &info) == 0)
        if exit.executableInode != 0 {
            #expect(exit.executableInode == UInt64(info.st_ino))
            #expect(exit.executableDevice == UInt64(info.st_dev))
        }
    }

    @Test func aFailureNamesTheStepAndTheFix() {
        let denied = TaskExitStats.OpenError(step: .register, errno: .notPermitted)
        #expect(denied.description.contains("CAP_NET_ADMIN"))
        let missing = TaskExitStats.OpenError(step: .family, errno: .noSuchFileOrDirectory)
        #expect(missing.description.contains("CONFIG_TASKSTATS") && missing.description.contains("namespace"))
    }

    @Test func malformedDatagramsYieldNothing() {
        // A netlink header that claims more bytes than the datagram has, then garbage.
        var bytes: [UInt8] = [0xFF, 0xFF, 0, 0, 22, 0, 0, 0] + [UInt8](repeating: 0xAB, count: 40)
        var seen = 0
        bytes.withUnsafeMutableBytes { TaskExitStats.decode(UnsafeRawBufferPointer($0), family: 22) { _ in seen += 1 } }
        #expect(seen == 0)
        bytes = []
        bytes.withUnsafeMutableBytes { TaskExitStats.decode(UnsafeRawBufferPointer($0), family: 22) { _ in seen += 1 } }
        #expect(seen == 0)
    }
}
