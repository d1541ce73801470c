import SystemPackage
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// A durable FIFO of byte records for one sink: one appender thread, one reader thread.
///
/// The action worker appends every alert for a sink that leaves the host before anything else happens, and
/// the sink's delivery thread reads the oldest records, delivers them and acknowledges them: a write-ahead
/// queue. A record is in the page cache once `append` returns, so a SIGKILL at any moment loses nothing;
/// `sync()` makes it survive a power loss too. A restart resumes at the last acknowledgement, so delivery is
/// at least once: a record may be delivered twice, and receivers dedup by the alert's id.
///
/// On disk, in `directory` (0700, every file 0600, none ever opened through a symlink):
/// ```
/// 00000001.spool   segments, oldest first; a new one starts when the next frame would pass segmentBytes
/// 00000002.spool   frame = [u32 length][u32 CRC-32 of the payload][payload], little-endian
/// cursor           [magic "VSC1"][u64 segment][u64 offset][u32 CRC-32 of the 20 bytes before]
/// rejected.jsonl   records a receiver refused for good, each wrapped with the reason
/// ```
/// The cursor names the first unacknowledged frame. Segments before the cursor's are deleted. At open,
/// every frame is checked: a torn last frame (a crash mid-write) is cut off, and a damaged cursor means
/// starting again from the oldest segment (at least once, never lost).
///
/// Threads: `append` is called only by the appender; `read`, `acknowledge` and `setAside` only by the
/// reader; `sync`, `depth` and `close` by either. What both touch (the segment list with each segment's
/// published size, the live counts, the descriptors to sync) sits in one `Locked`; the reader never reads
/// past a segment's published size, and the appender publishes a frame only after its `pwrite` returned.
final class Spool: @unchecked Sendable {
    // @unchecked Sendable: `shared` is behind a pthread mutex; the appender's and the reader's own fields are
    // each touched by one thread only, as documented on them, and `close()` runs after both threads stopped.

    /// How much a spool may hold.
    struct Limits: Sendable {
        /// The most bytes (frames, headers included) of unacknowledged records; beyond it `append` says
        /// `.full`. Acknowledged records still on disk in a partly read segment are not counted, so the
        /// directory may hold up to about one segment more.
        var maximumBytes: Int64
        /// Size at which a segment is closed and a new one started, so acknowledged records are freed by
        /// deleting whole files instead of rewriting one.
        var segmentBytes: Int64 = 4 << 20
    }

    /// What `append` did.
    enum AppendResult: Sendable, Equatable {
        /// The record is in the spool (in the page cache; `sync()` for the disk).
        case appended
        /// The spool holds `maximumBytes` already; nothing was written.
        case full
        /// A write failed (`ENOSPC`, `EIO`) or the record is unusable: one line naming the file and the fix.
        /// Nothing of the record stays in the spool.
        case failed(String)
    }

    /// Unacknowledged records: how many, and their bytes on disk with frame headers.
    struct Depth: Sendable, Equatable {
        var records: Int
        var bytes: Int64
    }

    /// A place in the spool: a segment's number and a byte offset in it, at a frame boundary.
    struct Position: Sendable, Equatable {
        var segment: UInt64
        var offset: Int64
    }

    /// One segment file, as the reader may see it: `size` counts only whole, published frames.
    struct Segment: Sendable, Equatable {
        var number: UInt64
        var size: Int64
    }

    /// The largest record: an alert line is a few KiB; anything near this is a bug upstream.
    static let maximumRecordBytes = 1 << 20
    /// `[u32 length][u32 CRC-32]` before each payload.
    static let frameHeaderBytes = 8
    /// Name of the file that keeps refused records.
    static let rejectedName = "rejected.jsonl"
    /// Name of the acknowledgement cursor.
    static let cursorName = "cursor"

    /// The spool's directory, as given.
    let directory: String
    /// The limits given at open.
    let limits: Limits
    /// What recovery at open repaired or decided, one line each, for the caller to log (empty when the
    /// spool was clean).
    let recoveryNotes: [String]

    /// The directory, held open so every file is opened relative to it, one component, `O_NOFOLLOW`.
    private let directoryDescriptor: CInt

    /// State both threads touch.
    private struct Shared {
        /// Segments from the reader's cursor on, oldest first; the last is the one being appended to, and
        /// every other one is complete (its `size` final).
        var segments: [Segment]
        var liveRecords: Int
        var liveBytes: Int64
        /// The appender's current segment descriptor, so `sync()` can reach it from the reader's thread.
        var appendDescriptor: CInt
        /// Whether the current segment was written since the last sync.
        var appendDirty = false
        /// Descriptors of segments the appender moved on from, still to be synced; `sync()` closes them.
        var retired: [CInt] = []
        /// Whether a segment was created since the last sync (the directory entry must reach the disk too).
        var directoryDirty = false
        /// Whether the cursor was written since the last sync.
        var cursorDirty = false
        var closed = false
    }

    private let shared: Locked<Shared>
    /// Serialises `sync()` and `close()`: only they close retired descriptors, so a descriptor one of them
    /// syncs cannot be closed (and its number reused) by the other meanwhile.
    private let syncLock = Locked(0)  // a count of syncs: a lock over an empty value lets its zero-size access move

    // MARK: Appender-owned

    /// Number of the segment being appended to.
    private var appendNumber: UInt64
    /// Its descriptor (`O_WRONLY`); writes go to explicit offsets with `pwrite`.
    private var appendDescriptor: CInt
    /// Its size: where the next frame goes.
    private var appendSize: Int64
    /// The frame being built, reused so steady appends do not allocate.
    private var frame: [UInt8] = []

    // MARK: Reader-owned

    /// The first unacknowledged record.
    private var cursor: Position
    /// The cursor file (`O_RDWR`), written in place with `pwrite`.
    private let cursorDescriptor: CInt
    /// For each record the last `read` returned: the position after it and its frame's bytes.
    private var pending: [(end: Position, bytes: Int64)] = []
    /// The segment open for reading, and its descriptor (-1: none).
    private var readNumber: UInt64 = 0
    private var readDescriptor: CInt = -1
    /// Where `read` takes frames from the file, several at a time.
    private var readBuffer = [UInt8](repeating: 0, count: 64 << 10)
    /// `rejected.jsonl`, opened at the first `setAside` (-1 until then).
    private var rejectedDescriptor: CInt = -1
    /// What went wrong in the last `read` or `acknowledge` (a read error, a damaged frame, the cursor not
    /// written), one line for the log; nil when nothing did. Reader thread only.
    private(set) var problem: String?

    /// Opens or creates `directory` (mode 0700, parents 0700) and recovers: lists segments, validates
    /// frames, truncates a torn last frame (a SIGKILL mid-write), loads the acknowledgement cursor.
    init(directory: String, limits: Limits) throws(SpoolError) {
        guard limits.maximumBytes > 0, limits.segmentBytes > 0 else {
            throw SpoolError(
                "Failed to open the spool '\(directory)': its limits must be positive (maximum \(limits.maximumBytes), segment \(limits.segmentBytes) bytes); fix the sink's spool size"
            )
        }
        self.directory = directory
        self.limits = limits
        FileTree.makeDirectories(directory, mode: 0o700)
        do {
            directoryDescriptor = try SafeDirectory.openTrusted(directory)
        } catch {
            throw SpoolError(
                "Failed to open the spool directory '\(directory)': \(error); create it (mode 0700) or fix the sink's spool path"
            )
        }
        let recovered: Recovered
        do {
            recovered = try Self.recover(directory: directory, descriptor: directoryDescriptor)
        } catch {
            Syscall.close(directoryDescriptor)
            throw error
        }
        recoveryNotes = recovered.notes
        cursor = recovered.cursor
        cursorDescriptor = recovered.cursorDescriptor
        appendDescriptor = recovered.appendDescriptor
        let last = recovered.segments[recovered.segments.count - 1]
        appendNumber = last.number
        appendSize = last.size
        shared = Locked(
            Shared(
                segments: recovered.segments,
                liveRecords: recovered.liveRecords,
                liveBytes: recovered.liveBytes,
                appendDescriptor: recovered.appendDescriptor
            )
        )
        frame.reserveCapacity(4096)
    }

    deinit {
        close()
    }

    /// Unacknowledged records and their bytes. Any thread.
    var depth: Depth {
        shared.withLock { Depth(records: $0.liveRecords, bytes: $0.liveBytes) }
    }

    /// `directory` joined with a file name, for messages.
    func path(_ name: String) -> String {
        Self.join(directory, name)
    }

    // MARK: Appending

    /// Appends one record as one frame written by one `pwrite(2)`. Appender thread only.
    ///
    /// `.full` when the unacknowledged bytes plus this frame would pass `maximumBytes` (nothing written);
    /// `.failed` for an empty or over-long record or a write error, after cutting off whatever part of the
    /// frame reached the file, so a later frame never follows a torn one.
    func append(_ record: UnsafeRawBufferPointer) -> AppendResult {
        guard !record.isEmpty else {
            return .failed(
                "Failed to spool an alert in '\(directory)': the record is empty; this is a bug, please report it"
            )
        }
        guard record.count <= Self.maximumRecordBytes else {
            return .failed(
                "Failed to spool an alert of \(record.count) bytes in '\(directory)': records are limited to 1 MiB; shorten the rule's message or labels"
            )
        }
        let frameBytes = Int64(Self.frameHeaderBytes + record.count)
        let state = shared.withLock { shared -> (room: Bool, closed: Bool) in
            (shared.liveBytes + frameBytes <= limits.maximumBytes, shared.closed)
        }
        if state.closed { return .failed("Failed to spool an alert in '\(directory)': the spool is closed") }
        if !state.room { return .full }
        if appendSize > 0 && appendSize + frameBytes > limits.segmentBytes {
            if let failure = startSegment() { return .failed(failure) }
        }

        frame.removeAll(keepingCapacity: true)
        Self.appendLittleEndian(UInt32(record.count), to: &frame)
        Self.appendLittleEndian(CRC32.checksum(record), to: &frame)
        frame.append(contentsOf: record)
        let descriptor = appendDescriptor
        let offset = Int(appendSize)
        let failure: Errno? = frame.withUnsafeBytes { bytes in
            do throws(Errno) {
                try Syscall.pwriteAll(descriptor, bytes, at: offset)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            // A short write may have left part of the frame: cut it, so the file ends at a frame boundary.
            try? Syscall.truncate(descriptor, to: offset)
            let name = Self.segmentName(appendNumber)
            let fix =
                failure == .noSpace
                ? "free space on that filesystem or give the sink a smaller spool size"
                : "check the disk and the spool directory's filesystem"
            return .failed("Failed to write an alert to the spool file '\(path(name))': \(failure); \(fix)")
        }
        appendSize += frameBytes
        let size = appendSize
        shared.withLock { shared in
            shared.segments[shared.segments.count - 1].size = size
            shared.liveRecords += 1
            shared.liveBytes += frameBytes
            shared.appendDirty = true
        }
        return .appended
    }

    /// Starts the next segment and makes it the one appended to; the previous one is complete from now on.
    /// Returns the failure, one line, or nil.
    private func startSegment() -> String? {
        let next = appendNumber + 1
        let name = Self.segmentName(next)
        let descriptor: CInt
        do {
            descriptor = try Syscall.openFile(
                name,
                in: directoryDescriptor,
                flags: O_WRONLY | O_CREAT | O_EXCL,
                mode: 0o600
            )
        } catch {
            return "Failed to start the spool file '\(path(name))': \(error); free space or remove what is in the way"
        }
        shared.withLock { shared in
            shared.retired.append(shared.appendDescriptor)
            shared.appendDescriptor = descriptor
            shared.appendDirty = false
            shared.directoryDirty = true
            shared.segments.append(Segment(number: next, size: 0))
        }
        appendNumber = next
        appendDescriptor = descriptor
        appendSize = 0
        return nil
    }

    // MARK: Reading

    /// The oldest unacknowledged records, at most `maxCount`, left in the spool until `acknowledge`; [] when
    /// there are none. Each call starts again at the cursor. Reader thread only.
    func read(upTo maxCount: Int) -> [[UInt8]] {
        pending.removeAll(keepingCapacity: true)
        problem = nil
        var records: [[UInt8]] = []
        var position = cursor
        while records.count < maxCount {
            let segment = shared.withLock { shared -> (end: Int64, next: UInt64?)? in
                guard !shared.closed,
                    let index = shared.segments.firstIndex(where: { $0.number == position.segment })
                else { return nil }
                let next = index + 1 < shared.segments.count ? shared.segments[index + 1].number : nil
                return (shared.segments[index].size, next)
            }
            guard let segment else { break }
            if position.offset >= segment.end {
                // A segment that has a successor is complete: go on with the next one.
                guard let next = segment.next else { break }
                position = Position(segment: next, offset: 0)
                continue
            }
            guard let count = readFrames(at: &position, end: segment.end, into: &records, maxCount: maxCount),
                count > 0
            else { break }
        }
        return records
    }

    /// Reads the frames that start in `position.segment` between `position.offset` and `end` (published
    /// frames only) into `records`, advancing `position` and noting each in `pending`. Returns how many it
    /// read, nil after a failure (noted in `problem`).
    private func readFrames(
        at position: inout Position,
        end: Int64,
        into records: inout [[UInt8]],
        maxCount: Int
    ) -> Int? {
        guard let descriptor = readDescriptor(for: position.segment) else { return nil }
        let name = Self.segmentName(position.segment)
        let base = position.offset
        let chunk = Int(min(end - base, Int64(readBuffer.count)))
        let got: Int
        do {
            got = try readBuffer.withUnsafeMutableBytes { buffer throws(Errno) in
                try Self.preadFully(
                    descriptor,
                    into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<chunk]),
                    at: base
                )
            }
        } catch {
            problem = "Failed to read the spool file '\(path(name))' at offset \(base): \(error); check the disk"
            return nil
        }
        var index = 0
        var count = 0
        while records.count < maxCount && index + Self.frameHeaderBytes <= got {
            let length = Int(Self.littleEndianUInt32(readBuffer, at: index))
            let frameEnd = index + Self.frameHeaderBytes + length
            guard length > 0, length <= Self.maximumRecordBytes, base + Int64(frameEnd) <= end else {
                problem =
                    "Failed to read the spool file '\(path(name))': the frame at offset \(base + Int64(index)) is damaged (changed since vigil checked it at start-up); restart vigil to cut it off"
                return nil
            }
            if frameEnd <= got {
                records.append(Array(readBuffer[(index + Self.frameHeaderBytes)..<frameEnd]))
            } else if index == 0 {
                // A frame larger than the buffer: read its payload on its own.
                var payload = [UInt8](repeating: 0, count: length)
                let payloadOffset = base + Int64(Self.frameHeaderBytes)
                do {
                    let n = try payload.withUnsafeMutableBytes { buffer throws(Errno) in
                        try Self.preadFully(descriptor, into: buffer, at: payloadOffset)
                    }
                    guard n == length else { return nil }
                } catch {
                    problem =
                        "Failed to read the spool file '\(path(name))' at offset \(payloadOffset): \(error); check the disk"
                    return nil
                }
                records.append(payload)
            } else {
                break  // the rest of this frame is beyond the buffer: the next round starts with it
            }
            let frameBytes = Int64(Self.frameHeaderBytes + length)
            position.offset += frameBytes
            pending.append((position, frameBytes))
            index = frameEnd
            count += 1
        }
        return count
    }

    /// The read descriptor for segment `number`, opening it (and closing the previous one) when needed; nil
    /// after a failure, noted in `problem`.
    private func readDescriptor(for number: UInt64) -> CInt? {
        if readDescriptor >= 0 && readNumber == number { return readDescriptor }
        if readDescriptor >= 0 { Syscall.close(readDescriptor) }
        readDescriptor = -1
        let name = Self.segmentName(number)
        do {
            readDescriptor = try Syscall.openFile(name, in: directoryDescriptor, flags: O_RDONLY)
        } catch {
            problem = "Failed to open the spool file '\(path(name))' for reading: \(error); check the spool directory"
            return nil
        }
        readNumber = number
        return readDescriptor
    }

    /// Drops the first `count` records the last `read` returned: moves the cursor past them, writes it
    /// (`pwrite`, no fsync: the page cache survives a killed process, `sync()` does the rest) and deletes
    /// the segments left wholly behind. Reader thread only.
    func acknowledge(_ count: Int) {
        problem = nil
        let count = min(count, pending.count)
        guard count > 0 else { return }
        var bytes: Int64 = 0
        for index in 0..<count { bytes += pending[index].bytes }
        var next = pending[count - 1].end
        pending.removeFirst(count)
        let finished = shared.withLock { shared -> [UInt64]? in
            guard !shared.closed else { return nil }
            shared.liveRecords -= count
            shared.liveBytes -= bytes
            // At the end of a complete segment, the cursor moves to the start of the next one.
            while let index = shared.segments.firstIndex(where: { $0.number == next.segment }),
                index + 1 < shared.segments.count, next.offset >= shared.segments[index].size
            {
                next = Position(segment: shared.segments[index + 1].number, offset: 0)
            }
            let behind = shared.segments.prefix(while: { $0.number < next.segment }).map(\.number)
            shared.segments.removeFirst(behind.count)
            shared.cursorDirty = true
            return behind
        }
        guard let finished else { return }
        cursor = next
        // The cursor first, then the deletions: a crash between them leaves segments the cursor is already
        // past, which the next open deletes.
        writeCursor()
        for number in finished {
            if readDescriptor >= 0 && readNumber == number {
                Syscall.close(readDescriptor)
                readDescriptor = -1
            }
            try? SafeDirectory.remove(Self.segmentName(number), in: directoryDescriptor)
        }
    }

    /// Writes `cursor` over the cursor file, in one `pwrite` of 24 bytes (within one page, so a killed
    /// process leaves the old cursor or the new one).
    private func writeCursor() {
        let bytes = Self.encodeCursor(cursor)
        let descriptor = cursorDescriptor
        let failure: Errno? = bytes.withUnsafeBytes { buffer in
            do throws(Errno) {
                try Syscall.pwriteAll(descriptor, buffer, at: 0)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            problem =
                "Failed to write the spool cursor '\(path(Self.cursorName))': \(failure); records delivered since may be delivered again after a restart"
        }
    }

    /// Appends `records` to `rejected.jsonl` in the directory (0600), each as one line
    /// `{"rejected_at":…,"reason":…,"record":…}` (the record itself when it is a JSON object, else as a
    /// string), in one write. For records a receiver refused for good; the caller acknowledges them after.
    /// Returns the failure, one line, or nil. Reader thread only.
    @discardableResult
    func setAside(_ records: [[UInt8]], reason: String) -> String? {
        guard !records.isEmpty else { return nil }
        if rejectedDescriptor < 0 {
            do {
                rejectedDescriptor = try Syscall.openFile(
                    Self.rejectedName,
                    in: directoryDescriptor,
                    flags: O_WRONLY | O_APPEND | O_CREAT,
                    mode: 0o600
                )
            } catch {
                return
                    "Failed to open '\(path(Self.rejectedName))' to set aside \(records.count) refused alerts: \(error); check the spool directory"
            }
        }
        let now = Clock.realtime()
        var writer = JSONWriter()
        for record in records {
            writer.beginObject()
            writer.key("rejected_at")
            writer.timestamp(seconds: now.seconds, nanoseconds: now.nanoseconds)
            writer.key("reason")
            writer.string(reason)
            writer.key("record")
            var body = record[...]
            while let last = body.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") {
                body = body.dropLast()
            }
            if body.first == UInt8(ascii: "{") && body.last == UInt8(ascii: "}") && !body.contains(UInt8(ascii: "\n")) {
                writer.string("")  // a placeholder keeps the writer's comma bookkeeping; replaced below
                writer.bytes.removeLast(2)
                writer.bytes.append(contentsOf: body)
            } else {
                body.withUnsafeBytes { writer.string(utf8: $0) }
            }
            writer.endObject()
            writer.bytes.append(UInt8(ascii: "\n"))
        }
        let descriptor = rejectedDescriptor
        let failure: Errno? = writer.bytes.withUnsafeBytes { buffer in
            do throws(Errno) {
                try Syscall.writeAll(descriptor, buffer)
                return nil
            } catch {
                return error
            }
        }
        guard let failure else { return nil }
        return
            "Failed to set aside \(records.count) refused alerts in '\(path(Self.rejectedName))': \(failure); free space on that filesystem"
    }

    // MARK: Durability and closing

    /// `fdatasync`s the segments written since the last sync, the directory when a segment was created, and
    /// the cursor when it moved. Either thread. Returns the first failure, one line, or nil.
    @discardableResult
    func sync() -> String? {
        syncLock.withLock { syncs -> String? in
            syncs += 1
            let work = shared.withLock { shared -> (active: CInt, retired: [CInt], directory: Bool, cursor: Bool)? in
                guard !shared.closed else { return nil }
                let work = (
                    shared.appendDirty ? shared.appendDescriptor : -1, shared.retired, shared.directoryDirty,
                    shared.cursorDirty
                )
                shared.appendDirty = false
                shared.retired = []
                shared.directoryDirty = false
                shared.cursorDirty = false
                return work
            }
            guard let work else { return nil }
            var failure: String? = nil
            func note(_ what: String, _ descriptor: CInt) {
                do throws(Errno) {
                    try Syscall.fdatasync(descriptor)
                } catch {
                    if failure == nil {
                        failure = "Failed to sync \(what) of the spool '\(directory)' to disk: \(error); check the disk"
                    }
                }
            }
            // Segments before the cursor: a cursor on disk never points past records that are not.
            for descriptor in work.retired {
                note("a segment", descriptor)
                Syscall.close(descriptor)
            }
            if work.active >= 0 { note("the current segment", work.active) }
            if work.directory { note("the directory", directoryDescriptor) }
            if work.cursor { note("the cursor", cursorDescriptor) }
            return failure
        }
    }

    /// Closes every descriptor. Call once both threads have stopped using the spool; later calls do nothing,
    /// and `append` then fails, `read` returns [].
    func close() {
        syncLock.withLock { syncs in
            syncs += 1
            let descriptors = shared.withLock { shared -> [CInt]? in
                guard !shared.closed else { return nil }
                shared.closed = true
                defer { shared.retired = [] }
                return shared.retired + [shared.appendDescriptor]
            }
            guard let descriptors else { return }
            for descriptor in descriptors { Syscall.close(descriptor) }
            if readDescriptor >= 0 { Syscall.close(readDescriptor) }
            if rejectedDescriptor >= 0 { Syscall.close(rejectedDescriptor) }
            readDescriptor = -1
            rejectedDescriptor = -1
            Syscall.close(cursorDescriptor)
            Syscall.close(directoryDescriptor)
        }
    }
}

/// A spool that cannot be opened: one line saying what failed, which path, and the fix.
struct SpoolError: Error, Sendable, CustomStringConvertible {
    let message: String
    var description: String { message }

    init(_ message: String) {
        self.message = message
    }
}
