/// Decodes the byte stream `read(2)` returns from an inotify descriptor into `FileEventRecord`s.
///
/// Layout per record (see `man 7 inotify`): `int wd; uint32_t mask; uint32_t cookie; uint32_t len;`
/// then `len` bytes of NUL-padded name. The kernel never splits a record across reads, but the decoder
/// still checks every length so that a corrupt or truncated buffer ends decoding instead of reading past it.
public enum InotifyDecoder {
    /// Size of the fixed header of `struct inotify_event`.
    public static let headerSize = 16

    /// Why decoding stopped early.
    public enum DecodeError: Error, Equatable {
        /// The buffer ends inside a record at this offset.
        case truncated(offset: Int)
    }

    /// Calls `body` for each record in `buffer`, in order. Returns the number of records decoded.
    @inline(__always)
    public static func decode(
        _ buffer: UnsafeRawBufferPointer,
        readTime: UInt64,
        _ body: (borrowing FileEventRecord) -> Void
    ) throws(DecodeError) -> Int {
        var offset = 0
        var count = 0
        while offset < buffer.count {
            guard buffer.count - offset >= headerSize else { throw .truncated(offset: offset) }
            let wd = buffer.loadUnaligned(fromByteOffset: offset, as: Int32.self)
            let mask = buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = buffer.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            let length = Int(buffer.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self))
            guard buffer.count - offset - headerSize >= length else { throw .truncated(offset: offset) }
            let nameStart = offset + headerSize
            var nameEnd = nameStart
            while nameEnd < nameStart + length && buffer[nameEnd] != 0 { nameEnd += 1 }
            let name = UnsafeRawBufferPointer(rebasing: buffer[nameStart..<nameEnd])
            let record = FileEventRecord(watch: wd, mask: mask, cookie: cookie, name: name, readTime: readTime)
            body(record)
            count += 1
            offset = nameStart + length
        }
        return count
    }
}
