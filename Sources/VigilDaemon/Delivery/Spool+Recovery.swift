import SystemPackage
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Opening a spool after a clean stop or a crash, and the on-disk formats of frames and the cursor.
extension Spool {
    /// What `recover` found and opened: the spool's state for `init`.
    struct Recovered {
        /// From the cursor's segment to the newest, each with the size of its whole, valid frames.
        var segments: [Segment]
        var cursor: Position
        var liveRecords: Int
        var liveBytes: Int64
        var cursorDescriptor: CInt
        /// The newest segment, opened for appending.
        var appendDescriptor: CInt
        var notes: [String]
    }

    /// The cursor file's content.
    enum StoredCursor: Equatable {
        /// An empty file: a new spool, or one that never acknowledged anything.
        case absent
        case valid(Position)
        /// Wrong size, magic or checksum: the spool starts again from its oldest record.
        case damaged
    }

    /// The cursor's magic, "VSC1".
    static let cursorMagic: [UInt8] = [0x56, 0x53, 0x43, 0x31]
    /// Magic, segment, offset, CRC-32.
    static let cursorBytes = 24

    /// Lists the segments, opens the cursor, deletes the segments it is past, checks every frame (cutting a
    /// torn end), places the cursor on a frame boundary and counts what is left to deliver.
    static func recover(directory: String, descriptor: CInt) throws(SpoolError) -> Recovered {
        let cursorPath = join(directory, cursorName)
        let cursorDescriptor: CInt
        do {
            cursorDescriptor = try Syscall.openFile(cursorName, in: descriptor, flags: O_RDWR | O_CREAT, mode: 0o600)
        } catch {
            throw SpoolError(
                "Failed to open the spool cursor '\(cursorPath)': \(error); remove what is under that name (vigil then delivers again from the oldest record)"
            )
        }
        do {
            return try recover(directory: directory, descriptor: descriptor, cursorDescriptor: cursorDescriptor)
        } catch {
            Syscall.close(cursorDescriptor)
            throw error
        }
    }

    /// `recover(directory:descriptor:)` once the cursor file is open.
    private static func recover(
        directory: String,
        descriptor: CInt,
        cursorDescriptor: CInt
    ) throws(SpoolError) -> Recovered {
        let cursorPath = join(directory, cursorName)
        var notes: [String] = []
        var numbers: [UInt64]
        do {
            numbers = try SafeDirectory.names(in: descriptor).compactMap(segmentNumber).sorted()
        } catch {
            throw SpoolError("Failed to list the spool directory '\(directory)': \(error); check its permissions")
        }

        let stored = readCursor(cursorDescriptor)
        var cursor: Position? = nil
        switch stored {
        case .absent: break
        case .valid(let position): cursor = position
        case .damaged:
            notes.append(
                "The spool cursor '\(cursorPath)' is damaged; delivering again from the oldest record in the spool (receivers dedup by id)"
            )
        }
        if let cursor {
            // Acknowledged segments a crash left behind between writing the cursor and deleting them.
            for number in numbers where number < cursor.segment {
                try? SafeDirectory.remove(segmentName(number), in: descriptor)
            }
            numbers.removeAll { $0 < cursor.segment }
        }

        var segments: [Segment] = []
        var frameEnds: [[Int64]] = []
        for number in numbers {
            let scan = try scanSegment(number, directory: directory, descriptor: descriptor)
            segments.append(Segment(number: number, size: scan.size))
            frameEnds.append(scan.frameEnds)
            if let note = scan.note { notes.append(note) }
        }
        if segments.isEmpty {
            let number = max(cursor?.segment ?? 1, 1)
            let name = segmentName(number)
            do {
                Syscall.close(try Syscall.openFile(name, in: descriptor, flags: O_WRONLY | O_CREAT, mode: 0o600))
            } catch {
                throw SpoolError(
                    "Failed to create the spool file '\(join(directory, name))': \(error); check the spool directory's permissions and free space"
                )
            }
            segments = [Segment(number: number, size: 0)]
            frameEnds = [[]]
        }

        // Place the cursor on a frame boundary of a segment that exists; anything else is damage, and
        // delivery starts again from the oldest record (at least once).
        var place = Position(segment: segments[0].number, offset: 0)
        if let cursor {
            if let index = segments.firstIndex(where: { $0.number == cursor.segment }) {
                if cursor.offset == 0 || frameEnds[index].contains(cursor.offset) {
                    place = cursor
                } else {
                    notes.append(
                        "The spool cursor '\(cursorPath)' points at offset \(cursor.offset) of '\(join(directory, segmentName(cursor.segment)))', which is not the start of a record; delivering again from the oldest record in the spool (receivers dedup by id)"
                    )
                }
            } else {
                notes.append(
                    "The spool cursor '\(cursorPath)' names '\(join(directory, segmentName(cursor.segment)))', which is missing; delivering from the oldest record in the spool"
                )
            }
        }
        while let index = segments.firstIndex(where: { $0.number == place.segment }), index + 1 < segments.count,
            place.offset >= segments[index].size
        {
            place = Position(segment: segments[index + 1].number, offset: 0)
        }
        let behind = segments.prefix(while: { $0.number < place.segment }).count
        for segment in segments.prefix(behind) {
            try? SafeDirectory.remove(segmentName(segment.number), in: descriptor)
        }
        segments.removeFirst(behind)
        frameEnds.removeFirst(behind)

        var liveRecords = frameEnds[0].count(where: { $0 > place.offset })
        var liveBytes = segments[0].size - place.offset
        for index in segments.indices.dropFirst() {
            liveRecords += frameEnds[index].count
            liveBytes += segments[index].size
        }

        if stored != .valid(place) {
            let bytes = encodeCursor(place)
            let failure: Errno? = bytes.withUnsafeBytes { buffer in
                do throws(Errno) {
                    try Syscall.pwriteAll(cursorDescriptor, buffer, at: 0)
                    try Syscall.truncate(cursorDescriptor, to: cursorBytes)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure {
                throw SpoolError(
                    "Failed to write the spool cursor '\(cursorPath)': \(failure); check the disk and free space"
                )
            }
        }

        let last = segmentName(segments[segments.count - 1].number)
        let appendDescriptor: CInt
        do {
            appendDescriptor = try Syscall.openFile(last, in: descriptor, flags: O_WRONLY)
        } catch {
            throw SpoolError(
                "Failed to open the spool file '\(join(directory, last))' for appending: \(error); check the spool directory's permissions"
            )
        }
        return Recovered(
            segments: segments,
            cursor: place,
            liveRecords: liveRecords,
            liveBytes: liveBytes,
            cursorDescriptor: cursorDescriptor,
            appendDescriptor: appendDescriptor,
            notes: notes
        )
    }

    /// Checks every frame of segment `number` (length in 1...1 MiB, whole, CRC-32 right) and cuts the file at
    /// the first one that is not: after a SIGKILL mid-write that is the torn last frame; anywhere else it is
    /// damage, and what follows it cannot be trusted to start a frame. Returns the valid size, the offset
    /// after each frame, and a note when something was cut.
    static func scanSegment(
        _ number: UInt64,
        directory: String,
        descriptor: CInt
    ) throws(SpoolError) -> (size: Int64, frameEnds: [Int64], note: String?) {
        let name = segmentName(number)
        let path = join(directory, name)
        let file: CInt
        do {
            file = try Syscall.openFile(name, in: descriptor, flags: O_RDWR)
        } catch {
            throw SpoolError(
                "Failed to open the spool file '\(path)': \(error); move it away if it is not a spool segment (symlinks are never followed)"
            )
        }
        defer { Syscall.close(file) }
        var bytes: [UInt8]
        do {
            let size = try SafeDirectory.status(of: file).size
            bytes = [UInt8](repeating: 0, count: Int(size))
            let got = try bytes.withUnsafeMutableBytes { buffer throws(Errno) in
                try preadFully(file, into: buffer, at: 0)
            }
            bytes.removeLast(bytes.count - got)
        } catch {
            throw SpoolError("Failed to read the spool file '\(path)': \(error); check the disk")
        }

        var offset = 0
        var frameEnds: [Int64] = []
        bytes.withUnsafeBytes { buffer in
            while offset + frameHeaderBytes <= buffer.count {
                let length = Int(littleEndianUInt32(buffer, at: offset))
                let end = offset + frameHeaderBytes + length
                // Zero length is refused too: zero-filled blocks (a filesystem's torn write) would pass as
                // empty frames, CRC-32 of nothing being 0.
                guard length > 0, length <= maximumRecordBytes, end <= buffer.count else { break }
                let payload = UnsafeRawBufferPointer(rebasing: buffer[(offset + frameHeaderBytes)..<end])
                guard CRC32.checksum(payload) == littleEndianUInt32(buffer, at: offset + 4) else { break }
                offset = end
                frameEnds.append(Int64(end))
            }
        }
        guard offset < bytes.count else { return (Int64(offset), frameEnds, nil) }
        do {
            try Syscall.truncate(file, to: offset)
        } catch {
            throw SpoolError("Failed to cut the torn end of the spool file '\(path)': \(error); check the disk")
        }
        let note =
            "Cut \(bytes.count - offset) bytes at offset \(offset) of the spool file '\(path)': a record torn by a crash mid-write, or damage; the \(frameEnds.count) records before it are kept"
        return (Int64(offset), frameEnds, note)
    }

    // MARK: Formats

    /// `00000042.spool`: at least eight decimal digits, so names sort like numbers in `ls`.
    static func segmentName(_ number: UInt64) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits + ".spool"
    }

    /// The number in a segment's name, nil for any other file.
    static func segmentNumber(_ name: String) -> UInt64? {
        guard name.hasSuffix(".spool") else { return nil }
        let digits = name.utf8.dropLast(6)
        guard !digits.isEmpty, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        // Only the name `segmentName` gives the number: `1.spool` or `000000001.spool` is some other file.
        guard let number = UInt64(Substring(digits)), segmentName(number) == name else { return nil }
        return number
    }

    /// The 24 bytes of the cursor file for `position`.
    static func encodeCursor(_ position: Position) -> [UInt8] {
        var bytes = cursorMagic
        bytes.reserveCapacity(cursorBytes)
        appendLittleEndian(position.segment, to: &bytes)
        appendLittleEndian(UInt64(bitPattern: position.offset), to: &bytes)
        let crc = bytes.withUnsafeBytes { CRC32.checksum($0) }
        appendLittleEndian(crc, to: &bytes)
        return bytes
    }

    /// Reads and checks the cursor file.
    static func readCursor(_ descriptor: CInt) -> StoredCursor {
        var bytes = [UInt8](repeating: 0, count: cursorBytes + 1)
        let got: Int
        do {
            got = try bytes.withUnsafeMutableBytes { buffer throws(Errno) in
                try preadFully(descriptor, into: buffer, at: 0)
            }
        } catch {
            return .damaged
        }
        if got == 0 { return .absent }
        guard got == cursorBytes else { return .damaged }
        return bytes.withUnsafeBytes { buffer -> StoredCursor in
            guard buffer.prefix(4).elementsEqual(cursorMagic),
                CRC32.checksum(UnsafeRawBufferPointer(rebasing: buffer[0..<20])) == littleEndianUInt32(buffer, at: 20)
            else { return .damaged }
            let segment = littleEndianUInt64(buffer, at: 4)
            let offset = Int64(bitPattern: littleEndianUInt64(buffer, at: 12))
            guard offset >= 0 else { return .damaged }
            return .valid(Position(segment: segment, offset: offset))
        }
    }

    /// `pread` until `buffer` is full or the file ends; returns the bytes read.
    static func preadFully(
        _ descriptor: CInt,
        into buffer: UnsafeMutableRawBufferPointer,
        at offset: Int64
    )
        throws(Errno) -> Int
    {
        var done = 0
        while done < buffer.count {
            let n = try Syscall.pread(
                descriptor,
                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]),
                at: Int(offset) + done
            )
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Appends `value`'s bytes, least significant first.
    static func appendLittleEndian<T: FixedWidthInteger & UnsignedInteger>(_ value: T, to bytes: inout [UInt8]) {
        for index in 0..<(T.bitWidth / 8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> (8 * index)))
        }
    }

    /// The little-endian `UInt32` at `offset` (from the collection's start).
    static func littleEndianUInt32<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, at offset: Int) -> UInt32
    where Bytes.Index == Int {
        let start = bytes.startIndex + offset
        return UInt32(bytes[start]) | UInt32(bytes[start + 1]) << 8 | UInt32(bytes[start + 2]) << 16
            | UInt32(bytes[start + 3]) << 24
    }

    /// The little-endian `UInt64` at `offset`.
    static func littleEndianUInt64(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        UInt64(littleEndianUInt32(bytes, at: offset)) | UInt64(littleEndianUInt32(bytes, at: offset + 4)) << 32
    }

    /// `directory/name`.
    static func join(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }
}
