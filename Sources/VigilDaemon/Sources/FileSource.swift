import Synchronization
import VigilCore
import VigilSystem

/// The file source: reads every pending inotify event into one preallocated buffer and decodes it into
/// `FileEventRecord`s (C1). It owns no policy: which watches exist is the matcher's business.
///
/// It runs on the matcher's thread, which sleeps in `epoll_wait` on the inotify descriptor itself. A
/// separate source thread joined to the matcher by a ring, as first built, cost one more thread wake-up
/// per event: on this 2-vCPU VM a wake-up is 20–70 µs, a third of the 250 µs budget from a write to the
/// alert line, and the matcher's per-event work (a hash lookup) is far cheaper than the hop. The kernel's
/// own queue (`fs.inotify.max_queued_events`) buffers while the matcher reads a config, and its overflow
/// becomes an event the matcher handles (a rescan), so nothing is lost. Sources whose kernel buffers must
/// be drained faster than a matcher can judge (the proc connector under a fork storm) get a thread and an
/// `SPSCRing` of their own.
final class FileSource {
    let inotify: Inotify
    let counters: PipelineCounters
    private let buffer: UnsafeMutableRawBufferPointer

    init(inotify: Inotify, counters: PipelineCounters) {
        self.inotify = inotify
        self.counters = counters
        // 64 KiB aligned for `struct inotify_event` (4-byte fields); holds ~2,000 short-name events.
        buffer = .allocate(byteCount: 65536, alignment: 16)
    }

    deinit { buffer.deallocate() }

    /// Reads one buffer's worth of events and calls `body` for each record.
    /// Returns false when the kernel queue was empty.
    @inline(__always)
    func readBatch(_ body: (FileEventRecord) -> Void) -> Bool {
        let n: Int?
        do {
            n = try Syscall.read(inotify.descriptor, into: buffer)
        } catch {
            preconditionFailure("FileSource: read from inotify failed: \(error)")
        }
        guard let n, n > 0 else { return false }
        let now = Clock.monotonicNanoseconds()
        do {
            let count = try InotifyDecoder.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), readTime: now) {
                record in
                body(record)
            }
            counters.fileEvents.add(UInt64(count), ordering: .relaxed)
        } catch {
            // The kernel never splits records; count it rather than trust the rest of this buffer.
            counters.decodeErrors.add(1, ordering: .relaxed)
        }
        return true
    }
}
