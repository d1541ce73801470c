/// One inotify event, decoded from the kernel's bytes, as the matcher routes it.
///
/// A plain record (C3): the name is copied into an inline buffer, so the record owns no memory and the
/// source's read buffer can be reused at once. 256 bytes hold any name (`NAME_MAX` is 255) plus its NUL,
/// so `withName` can hand C functions such as `fnmatch(3)` a terminated string without copying.
public struct FileEventRecord: BitwiseCopyable, Sendable {
    /// Watch descriptor, or -1 for a queue overflow. The corresponding C field is `inotify_event.wd`.
    public var watch: Int32
    /// The `IN_*` bits. The corresponding C field is `inotify_event.mask`.
    public var mask: UInt32
    /// Pairs `IN_MOVED_FROM` with `IN_MOVED_TO`. The corresponding C field is `inotify_event.cookie`.
    public var cookie: UInt32
    /// Length of the name in bytes, without the NUL; 0 for events about the watched directory itself.
    public var nameLength: UInt16
    /// `CLOCK_MONOTONIC` nanoseconds when the source read the event from the kernel.
    public var readTime: UInt64
    /// The name bytes, NUL-terminated.
    public var name: InlineArray<256, UInt8>

    /// The largest name a record can carry, in bytes (`NAME_MAX`).
    public static let maximumNameLength = 255

    /// Creates a record; `name` is truncated to `maximumNameLength` bytes.
    public init(watch: Int32, mask: UInt32, cookie: UInt32, name: UnsafeRawBufferPointer, readTime: UInt64) {
        self.watch = watch
        self.mask = mask
        self.cookie = cookie
        self.readTime = readTime
        self.name = InlineArray(repeating: 0)
        let count = min(name.count, Self.maximumNameLength)
        self.nameLength = UInt16(count)
        for i in 0..<count { self.name[i] = name[i] }
    }

    /// Calls `body` with the name bytes (without the NUL) and a pointer to the NUL-terminated name.
    @inline(__always)
    public func withName<R>(_ body: (UnsafeRawBufferPointer, UnsafePointer<CChar>) -> R) -> R {
        withUnsafeBytes(of: name) { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[0..<Int(nameLength)])
            return body(bytes, raw.baseAddress!.assumingMemoryBound(to: CChar.self))
        }
    }

    /// The name as a `String` (allocates: for logs and alerts, not the hot path).
    public var nameString: String {
        withName { bytes, _ in String(decoding: bytes, as: UTF8.self) }
    }
}
