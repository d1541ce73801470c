import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The gzip worker (`vigil-gzip`): one thread that compresses rotations with `Gzip.compress`, so that a
/// 1 GB log (tens of seconds of deflate) never holds up the rotation thread, which must keep seeing its
/// inotify events, timers and shutdown (C6: blocking work runs on a dedicated thread, never on Swift's
/// cooperative pool).
///
/// The rotation thread submits jobs into a bounded queue (`capacity`, 64 by default) and never waits: when
/// the queue is full, `submit` returns false and the rotation thread leaves that rotation uncompressed,
/// alerts, and submits it again at the next rotation of the rule (the same pass that retries compressions
/// that failed); nothing is dropped silently. Outcomes come back through a second list and the `done`
/// doorbell, which the rotation thread waits on in its epoll set; it alone turns them into alerts.
///
/// Each job carries duplicates of the directory descriptors, so a directory renamed or replaced meanwhile
/// cannot redirect the compression; the worker closes them. At shutdown the job being compressed finishes
/// (a compression cannot be interrupted halfway without losing its work); jobs still queued come back as
/// `cancelled`, their rotations stay uncompressed and are compressed at the next start.
final class CompressionWorker: @unchecked Sendable {
    // @unchecked Sendable: the queue and outcomes are behind `state`'s mutex; the rest is immutable.

    /// One compression to do.
    struct Job: Sendable {
        let id: Int
        /// Duplicated descriptors, owned by the job (closed by the worker).
        let sourceDirectory: CInt
        let destinationDirectory: CInt
        let sourceName: String
        let destinationName: String
        let level: Int32
        let mode: UInt32
        let owner: UInt32?
        let group: UInt32?
    }

    /// What became of a job.
    enum Result: Sendable {
        case compressed(Gzip.Result)
        case failed(GzipError)
        /// Vigil stopped before the job's turn.
        case cancelled
    }

    struct Outcome: Sendable {
        let id: Int
        let result: Result
        /// Time spent compressing.
        let nanoseconds: UInt64
    }

    private struct State {
        var queue: [Job] = []
        var outcomes: [Outcome] = []
        var stopping = false
    }

    let capacity: Int
    /// Rung by `submit` and `stop`: the worker's doorbell.
    let wake: EventFD
    /// Rung when an outcome is ready: the rotation thread's doorbell.
    let done: EventFD
    private let state = Locked(State())

    init(capacity: Int) throws {
        self.capacity = max(1, capacity)
        wake = try EventFD()
        done = try EventFD()
    }

    /// Queues `job`; false (the job's descriptors closed) when the queue is full or the worker stopping.
    func submit(_ job: Job) -> Bool {
        let accepted = state.withLock { state in
            guard !state.stopping, state.queue.count < capacity else { return false }
            state.queue.append(job)
            return true
        }
        if accepted {
            wake.ring()
        } else {
            Self.close(job)
        }
        return accepted
    }

    /// Jobs waiting (not counting the one being compressed).
    var queued: Int { state.withLock { $0.queue.count } }

    /// Takes the outcomes that are ready.
    func takeOutcomes() -> [Outcome] {
        done.drain()
        return state.withLock { state in
            let outcomes = state.outcomes
            state.outcomes.removeAll()
            return outcomes
        }
    }

    /// Asks the thread to finish the job it is on and return the rest as cancelled; join it after.
    func stop() {
        state.withLock { $0.stopping = true }
        wake.ring()
    }

    /// The thread body.
    func run() {
        // A log over RLIMIT_FSIZE would send SIGXFSZ (default action: core dump) instead of failing the write
        // with EFBIG; the daemon ignores it process-wide (Daemon.init), this thread relies on it.
        var pfd = pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0)
        while true {
            wake.drain()
            enum Next {
                case job(Job)
                case idle
                case stop
            }
            let next: Next = state.withLock { state in
                if state.stopping {
                    let cancelled = state.queue
                    state.queue.removeAll()
                    for job in cancelled {
                        Self.close(job)
                        state.outcomes.append(Outcome(id: job.id, result: .cancelled, nanoseconds: 0))
                    }
                    return .stop
                }
                return state.queue.isEmpty ? .idle : .job(state.queue.removeFirst())
            }
            switch next {
            case .stop:
                done.ring()
                return
            case .job(let job):
                let started = Clock.monotonicNanoseconds()
                let result: Result
                do {
                    result = .compressed(
                        try Gzip.compress(
                            sourceName: job.sourceName,
                            in: job.sourceDirectory,
                            to: job.destinationName,
                            in: job.destinationDirectory,
                            level: job.level,
                            mode: job.mode,
                            owner: job.owner,
                            group: job.group
                        )
                    )
                } catch {
                    result = .failed(error)
                }
                Self.close(job)
                let outcome = Outcome(id: job.id, result: result, nanoseconds: Clock.monotonicNanoseconds() &- started)
                state.withLock { $0.outcomes.append(outcome) }
                done.ring()
            case .idle:
                _ = poll(&pfd, 1, -1)
            }
        }
    }

    private static func close(_ job: Job) {
        Syscall.close(job.sourceDirectory)
        if job.destinationDirectory != job.sourceDirectory { Syscall.close(job.destinationDirectory) }
    }
}
