import Testing
import VigilCore

/// FNV-1a vectors, hex formatting and alert naming.
@Suite struct AlertIdentityTests {
    /// Published FNV-1a 64 test vectors.
    @Test func fnvVectors() {
        #expect(StableHash.fnv1a64([UInt8]()) == 0xcbf2_9ce4_8422_2325)
        #expect(StableHash.fnv1a64("a".utf8) == 0xaf63_dc4c_8601_ec8c)
        #expect(StableHash.fnv1a64("foobar".utf8) == 0x8594_4171_f739_67e8)
    }

    /// Chaining through `seed` equals hashing the concatenation.
    @Test func seedChains() {
        let chained = StableHash.fnv1a64("bar".utf8, seed: StableHash.fnv1a64("foo".utf8))
        #expect(chained == StableHash.fnv1a64("foobar".utf8))
    }

    /// Hex is 16 lowercase digits, zero-padded.
    @Test func hexIsPadded() {
        #expect(StableHash.hex(0) == "0000000000000000")
        #expect(StableHash.hex(0xAB) == "00000000000000ab")
        #expect(StableHash.hex(.max) == "ffffffffffffffff")
        #expect(StableHash.hex(0x8594_4171_f739_67e8) == "85944171f73967e8")
    }

    /// Pinned values (computed independently in Python): a change here changes every alert id in the field,
    /// which breaks dedup across an upgrade, so it must be deliberate.
    @Test func pinnedValues() {
        let fingerprint = AlertIdentity.fingerprint(
            rule: "upload-config-ssl",
            instance: "/etc/analytics/upload-service.conf"
        )
        #expect(fingerprint == "8428c98e5665e55a")
        let id = AlertIdentity.id(
            fingerprint: fingerprint,
            state: .firing,
            version: "2049:131077:1795755215123456789:160"
        )
        #expect(id == "8b776ac329c39680183742315bf1d458")
    }

    /// The NUL separator keeps differently split inputs apart.
    @Test func separatorMatters() {
        #expect(
            AlertIdentity.fingerprint(rule: "ab", instance: "c") != AlertIdentity.fingerprint(rule: "a", instance: "bc")
        )
    }

    /// Same event → same id; another state or version → another id; firing and resolved share a fingerprint.
    @Test func idSemantics() {
        let fingerprint = AlertIdentity.fingerprint(rule: "r", instance: "/etc/x.conf")
        let firing = AlertIdentity.id(fingerprint: fingerprint, state: .firing, version: "1:2:3:4")
        #expect(firing == AlertIdentity.id(fingerprint: fingerprint, state: .firing, version: "1:2:3:4"))
        #expect(firing != AlertIdentity.id(fingerprint: fingerprint, state: .resolved, version: "1:2:3:4"))
        #expect(firing != AlertIdentity.id(fingerprint: fingerprint, state: .firing, version: "1:2:3:5"))
        #expect(firing.count == 32)
        #expect(firing.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
    }

    /// No collisions among many distinct versions of one instance, in either half of the id.
    @Test func distinctVersionsGetDistinctIds() {
        let fingerprint = AlertIdentity.fingerprint(rule: "r", instance: "i")
        var seen = Set<String>()
        var firstHalves = Set<Substring>()
        for version in 0..<20_000 {
            let id = AlertIdentity.id(fingerprint: fingerprint, state: .event, version: "2049:\(version):0:0")
            seen.insert(id)
            firstHalves.insert(id.prefix(16))
        }
        #expect(seen.count == 20_000)
        #expect(firstHalves.count == 20_000)
    }
}
