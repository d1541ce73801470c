/// Names alerts so that receivers can pair and deduplicate them.
///
/// - The *fingerprint* names the thing an alert is about: a rule and an instance of it (a path, a process,
///   a config key). `firing` and `resolved` for the same instance share it, which is how Alertmanager pairs
///   them.
/// - The *id* names one alert record: the fingerprint, the state and the `version` of what caused it (for
///   a file, e.g. `dev:ino:mtime:size`). The same event processed again (after a restart, a rescan) gets
///   the same id, so a sink can drop the repeat; distinct events get distinct ids.
public enum AlertIdentity {
    /// The second seed for `id`: the low 64 bits of the 128-bit FNV offset basis. Any constant different
    /// from `StableHash.offsetBasis` works; this one is documented and unlikely to be picked by accident.
    static let secondSeed: UInt64 = 0x62b8_2175_6295_c58d

    /// 16 lowercase hex digits: FNV-1a 64 over `rule`, a NUL byte, `instance`. The NUL keeps
    /// (`ab`, `c`) and (`a`, `bc`) apart; neither part can contain NUL in practice.
    public static func fingerprint(rule: String, instance: String) -> String {
        StableHash.hex(hash([rule, instance], seed: StableHash.offsetBasis))
    }

    /// 32 lowercase hex digits: two FNV-1a 64 hashes with different seeds over `fingerprint`, NUL, the
    /// state's name, NUL, `version`, concatenated. 128 bits make an accidental clash between two events
    /// of one host negligible.
    public static func id(fingerprint: String, state: AlertState, version: String) -> String {
        let parts = [fingerprint, state.rawValue, version]
        return StableHash.hex(hash(parts, seed: StableHash.offsetBasis)) + StableHash.hex(hash(parts, seed: secondSeed))
    }

    /// FNV-1a 64 over `parts` joined by NUL bytes, without building the joined bytes.
    private static func hash(_ parts: [String], seed: UInt64) -> UInt64 {
        var hash = seed
        for (index, part) in parts.enumerated() {
            if index > 0 { hash = StableHash.fnv1a64(CollectionOfOne(0), seed: hash) }
            hash = StableHash.fnv1a64(part.utf8, seed: hash)
        }
        return hash
    }
}
