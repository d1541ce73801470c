import CVigilLinux

/// CRC-32 (ISO-HDLC, the polynomial of zlib, gzip and PNG), computed by zlib's `crc32`, which is linked for
/// gzip rotation anyway and uses the CPU's carry-less multiply where it has one. Modules above VigilSystem
/// cannot import the C shim, so this is their way to it. See `man 3 zlib` (`crc32`).
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing from `previous` (0 to start), so a checksum can run over pieces.
    /// zlib takes a 32-bit length, so longer buffers go in pieces of 1 GiB.
    @inline(never)
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        guard let base = bytes.baseAddress else { return previous }
        var crc = UInt(previous)
        var offset = 0
        while offset < bytes.count {
            let count = min(bytes.count - offset, 1 << 30)
            crc = crc32(crc, (base + offset).assumingMemoryBound(to: UInt8.self), UInt32(count))
            offset += count
        }
        return UInt32(truncatingIfNeeded: crc)
    }
}
