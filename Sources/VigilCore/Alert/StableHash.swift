/// Hashes that stay the same across runs, hosts and Swift versions, for alert ids and fingerprints.
///
/// Swift's `Hasher` is seeded per process, so its values cannot name an alert across a restart; FNV-1a is
/// tiny, stable and good enough to tell alerts apart. It is not a cryptographic hash: nothing here must
/// resist a party that chooses inputs to collide.
public enum StableHash {
    /// The 64-bit FNV offset basis, the default seed.
    public static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    /// The 64-bit FNV prime.
    public static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// 64-bit FNV-1a of `bytes`, starting from `seed`.
    ///
    /// The state of FNV-1a is its hash, so passing one result as the next call's `seed` hashes the
    /// concatenation of the inputs without building it.
    public static func fnv1a64(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* prime
        }
        return hash
    }

    /// `v` as 16 lowercase hex digits, zero-padded.
    public static func hex(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { buffer in
            for index in 0..<16 {
                buffer[index] = hexDigit(UInt8(truncatingIfNeeded: v >> UInt64(60 - 4 * index)) & 0x0F)
            }
            return 16
        }
    }

    /// Appends `v` as 16 lowercase hex digits to `buffer`.
    static func appendHex(_ v: UInt64, to buffer: inout [UInt8]) {
        for index in 0..<16 {
            buffer.append(hexDigit(UInt8(truncatingIfNeeded: v >> UInt64(60 - 4 * index)) & 0x0F))
        }
    }

    /// The ASCII lowercase hex digit for a value in 0...15.
    @inline(__always)
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
