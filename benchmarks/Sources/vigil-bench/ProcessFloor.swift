import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// The floor of the process-death scenario: the harness itself subscribes to the proc connector and, per
// trial, blocks in poll(2) on the socket right after the kill, like any event-driven subscriber does. No
// output file, no second thread: kill → exit event read is what the kernel and one wake-up cost on this
// machine, and the kernel's own event timestamp splits it into the dying process's teardown (kill → the
// kernel's `proc_exit_connector`) and the delivery (event → read).

/// Offsets in one connector message: `struct nlmsghdr` (16 bytes) + `struct cn_msg` (20) + `struct
/// proc_event`: `what` (u32) at 36, `cpu` at 40, `timestamp_ns` (u64, `CLOCK_MONOTONIC`) at 44, and for
/// `PROC_EVENT_EXIT` the `process_pid` at 52 and `process_tgid` at 56 (linux/cn_proc.h).
private enum ExitMessage {
    static let what = 36
    static let timestamp = 44
    static let pid = 52
    static let tgid = 56
    static let size = 76
    /// `PROC_EVENT_EXIT`.
    static let exitEvent: UInt32 = 0x8000_0000
}

/// The floor's extra figure per trial: kill → the kernel's exit event timestamp.
struct FloorDetail {
    var teardown: [UInt64] = []
}

/// Kills one stand-in per trial and reads the connector until its exit event arrives.
func runFloorDeath(trials: Int, detail: inout FloorDetail) -> DeathResult {
    var result = DeathResult(subject: DeathSubject.floor.name)
    guard let sandbox = freshSandbox("bench-death-floor", failures: &result.failures) else { return result }
    defer { sandbox.remove() }
    do {
        try sandbox.makeDirectories("/usr/local/bin")
        let standIn = sandbox.hostPath(uploadServicePath)
        try StandIn.install("/bin/sleep", at: standIn)
        let connector: ProcConnector
        do {
            connector = try ProcConnector()
        } catch {
            result.failures.append("floor: Failed to subscribe to the proc connector: \(error)")
            return result
        }
        defer { connector.close() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: ProcConnector.recommendedReadSize,
            alignment: 8
        )
        defer { buffer.deallocate() }

        /// Reads what is queued; returns (kernel timestamp, read time) of `pid`'s exit when it is among it.
        func readQueued(lookingFor pid: Int32?) -> (UInt64, UInt64)? {
            var found: (UInt64, UInt64)?
            while true {
                switch connector.receive(into: buffer) {
                case .wouldBlock: return found
                case .lost: result.failures.append("floor: the kernel dropped events (ENOBUFS)")
                case .datagram(let count):
                    let readAt = Clock.monotonicNanoseconds()
                    var offset = 0
                    while count - offset >= ExitMessage.size {
                        let length = Int(buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
                        guard length >= ExitMessage.size, length <= count - offset else { break }
                        let what = buffer.loadUnaligned(fromByteOffset: offset + ExitMessage.what, as: UInt32.self)
                        let exited = buffer.loadUnaligned(fromByteOffset: offset + ExitMessage.pid, as: Int32.self)
                        let group = buffer.loadUnaligned(fromByteOffset: offset + ExitMessage.tgid, as: Int32.self)
                        if what == ExitMessage.exitEvent, exited == group, exited == pid, found == nil {
                            let stamp = buffer.loadUnaligned(
                                fromByteOffset: offset + ExitMessage.timestamp,
                                as: UInt64.self
                            )
                            found = (stamp, readAt)
                        }
                        offset += (length + 3) & ~3
                    }
                }
            }
        }

        for _ in 0...trials {
            let cookie = result.expected == trials
            _ = readQueued(lookingFor: nil)
            let child = try ChildProcess(executable: standIn, arguments: ["600"])
            pause(milliseconds: deathSettleMilliseconds)
            _ = readQueued(lookingFor: nil)
            if !cookie { result.expected += 1 }
            let start = Clock.monotonicNanoseconds()
            kill(child.pid, SIGKILL)
            let deadline = start + UInt64(deathMissTimeoutMilliseconds) * 1_000_000
            var seen: (UInt64, UInt64)?
            while seen == nil {
                let now = Clock.monotonicNanoseconds()
                guard now < deadline else { break }
                var pfd = pollfd(fd: connector.descriptor, events: Int16(POLLIN), revents: 0)
                _ = poll(&pfd, 1, Int32((deadline - now) / 1_000_000) + 1)
                seen = readQueued(lookingFor: child.pid)
            }
            _ = child.wait(timeoutMilliseconds: 5_000)
            if cookie { break }
            if let (stamp, readAt) = seen {
                result.latencies.append(readAt - start)
                detail.teardown.append(stamp > start ? stamp - start : 0)
            } else {
                result.missed += 1
            }
        }
    } catch {
        result.failures.append("floor: \(error.description)")
    }
    return result
}
