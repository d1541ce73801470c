import Synchronization
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The file source: one thread that sleeps in `epoll_wait` on the inotify descriptor and a shutdown
/// doorbell, reads every pending event into one preallocated buffer, decodes it and pushes the records to
/// the matcher's ring (C1). It owns no policy: which watches exist is the matcher's business.
///
/// Nothing is dropped here: when the ring is full the source waits for the matcher to make room, and the
/// kernel queues meanwhile (its own overflow, `IN_Q_OVERFLOW`, becomes an event the matcher handles).
final class FileSource: @unchecked Sendable {
    // @unchecked Sendable: after start, `buffer` is touched only by the source thread; the rest is immutable
    // or thread-safe (descriptors, ring, counters).

    let inotify: Inotify
    let ring: SPSCRing<FileEventRecord>
    /// Rung when the ring goes from empty to non-empty.
    let matcherDoorbell: EventFD
    /// Rung by the matcher when it released space after the source found the ring full.
    let spaceDoorbell: EventFD
    let shutdown: EventFD
    let counters: PipelineCounters
    private let buffer: UnsafeMutableRawBufferPointer

    init(inotify: Inotify, ring: SPSCRing<FileEventRecord>, matcherDoorbell: EventFD, counters: PipelineCounters)
        throws
    {
        self.inotify = inotify
        self.ring = ring
        self.matcherDoorbell = matcherDoorbell
        self.counters = counters
        spaceDoorbell = try EventFD()
        shutdown = try EventFD()
        // 64 KiB aligned for `struct inotify_event` (4-byte fields); holds ~2,000 short-name events.
        buffer = .allocate(byteCount: 65536, alignment: 16)
    }

    deinit { buffer.deallocate() }

    private static let inotifyTag: UInt64 = 1
    private static let shutdownTag: UInt64 = 2

    /// The thread body. Returns when `shutdown` rings.
    func run() {
        let epoll: Epoll
        do {
            epoll = try Epoll()
            try epoll.add(inotify.descriptor, tag: Self.inotifyTag)
            try epoll.add(shutdown.descriptor, tag: Self.shutdownTag)
        } catch {
            preconditionFailure("FileSource: epoll setup failed: \(error)")
        }
        var running = true
        while running {
            var readable = false
            do {
                try epoll.wait { tag in
                    if tag == Self.shutdownTag { running = false }
                    if tag == Self.inotifyTag { readable = true }
                }
            } catch {
                preconditionFailure("FileSource: epoll_wait failed: \(error)")
            }
            if readable && running { running = drainKernelQueue() }
        }
    }

    /// Reads until the kernel queue is empty. Returns false when shutdown was requested while waiting for space.
    private func drainKernelQueue() -> Bool {
        while true {
            let n: Int?
            do {
                n = try Syscall.read(inotify.descriptor, into: buffer)
            } catch {
                preconditionFailure("FileSource: read from inotify failed: \(error)")
            }
            guard let n, n > 0 else { return true }
            let now = Clock.monotonicNanoseconds()
            var keepGoing = true
            do {
                _ = try InotifyDecoder.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), readTime: now) { record in
                    if keepGoing { keepGoing = publish(record) }
                }
            } catch {
                // The kernel never splits records; count it rather than trust the rest of this buffer.
                counters.decodeErrors.add(1, ordering: .relaxed)
            }
            if !keepGoing { return false }
        }
    }

    /// Pushes one record, waiting for space when the ring is full. Returns false on shutdown.
    @inline(__always)
    private func publish(_ record: borrowing FileEventRecord) -> Bool {
        counters.fileEvents.add(1, ordering: .relaxed)
        while true {
            switch ring.push(record) {
            case .pushed(let wasEmpty):
                if wasEmpty { matcherDoorbell.ring() }
                return true
            case .full:
                counters.ringFullWaits.add(1, ordering: .relaxed)
                if ring.producerWillWait() {
                    matcherDoorbell.ring()
                    var pfd = (
                        pollfd(fd: spaceDoorbell.descriptor, events: Int16(POLLIN), revents: 0),
                        pollfd(fd: shutdown.descriptor, events: Int16(POLLIN), revents: 0)
                    )
                    _ = withUnsafeMutableBytes(of: &pfd) { poll($0.baseAddress!.assumingMemoryBound(to: pollfd.self), 2, -1) }
                    if pfd.1.revents != 0 { return false }
                    spaceDoorbell.drain()
                }
            }
        }
    }
}
