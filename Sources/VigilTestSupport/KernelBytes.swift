/// Builds the bytes the kernel returns from `read(2)` on an inotify descriptor, so decoder tests can play
/// the kernel (T1): records with NUL-padded names, truncated buffers, overflow records.
public struct KernelBytes {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// Appends one `struct inotify_event` with `name` padded with NULs to a multiple of 16 bytes (as the
    /// kernel pads it; `pad: false` writes exactly one NUL).
    public mutating func inotify(wd: Int32, mask: UInt32, cookie: UInt32 = 0, name: String = "", pad: Bool = true) {
        var nameBytes = Array(name.utf8)
        if !nameBytes.isEmpty {
            nameBytes.append(0)
            if pad { while nameBytes.count % 16 != 0 { nameBytes.append(0) } }
        }
        append(UInt32(bitPattern: wd))
        append(mask)
        append(cookie)
        append(UInt32(nameBytes.count))
        bytes.append(contentsOf: nameBytes)
    }

    /// An `IN_Q_OVERFLOW` record (wd -1, no name).
    public mutating func overflow() {
        inotify(wd: -1, mask: 0x4000)
    }

    /// The first `count` bytes (a buffer cut inside a record).
    public func truncated(to count: Int) -> [UInt8] {
        Array(bytes.prefix(count))
    }

    private mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }
}
