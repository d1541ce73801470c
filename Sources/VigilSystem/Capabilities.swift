import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// A set of Linux capabilities (`man 7 capabilities`), as bits by capability number.
public struct CapabilitySet: Sendable, Equatable, Hashable {
    public var bits: UInt64

    public init(bits: UInt64 = 0) { self.bits = bits }

    public init(_ numbers: [Int32]) {
        bits = 0
        for number in numbers { insert(number) }
    }

    public static let chown: Int32 = 0
    public static let dacOverride: Int32 = 1
    public static let dacReadSearch: Int32 = 2
    public static let fowner: Int32 = 3
    public static let kill: Int32 = 5
    public static let setpcap: Int32 = 8
    public static let netAdmin: Int32 = 12
    public static let sysPtrace: Int32 = 19
    public static let sysResource: Int32 = 24

    public func contains(_ number: Int32) -> Bool { bits & (1 << UInt64(number)) != 0 }
    public mutating func insert(_ number: Int32) { bits |= 1 << UInt64(number) }
    public func intersection(_ other: CapabilitySet) -> CapabilitySet { CapabilitySet(bits: bits & other.bits) }
    public func subtracting(_ other: CapabilitySet) -> CapabilitySet { CapabilitySet(bits: bits & ~other.bits) }
    public var isEmpty: Bool { bits == 0 }

    /// `CAP_NET_ADMIN`-style names, in number order.
    public var names: [String] {
        (0..<64).filter { contains(Int32($0)) }.map { Self.name(of: Int32($0)) }
    }

    /// The name of a capability number (from libcap), upper case.
    public static func name(of number: Int32) -> String {
        guard let text = cap_to_name(cap_value_t(number)) else { return "CAP_\(number)" }
        defer { cap_free(text) }
        return String(cString: text).uppercased()
    }
}

/// The calling thread's capabilities, and dropping them (libcap; `man 3 cap_get_proc`).
public enum Capabilities {
    /// Effective, permitted and inheritable sets, and the bounding set.
    public struct Current: Sendable, Equatable {
        public var effective: CapabilitySet
        public var permitted: CapabilitySet
        public var inheritable: CapabilitySet
        public var bounding: CapabilitySet
    }

    /// The highest capability number this kernel knows.
    public static var lastCapability: Int32 {
        Int32(ProcFile.readInteger("/proc/sys/kernel/cap_last_cap") ?? 40)
    }

    /// Reads the calling thread's sets.
    public static func current() -> Current {
        var result = Current(effective: .init(), permitted: .init(), inheritable: .init(), bounding: .init())
        guard let caps = cap_get_proc() else { return result }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        for number in 0...lastCapability {
            var value = CAP_CLEAR
            if cap_get_flag(caps, cap_value_t(number), CAP_EFFECTIVE, &value) == 0, value == CAP_SET {
                result.effective.insert(number)
            }
            if cap_get_flag(caps, cap_value_t(number), CAP_PERMITTED, &value) == 0, value == CAP_SET {
                result.permitted.insert(number)
            }
            if cap_get_flag(caps, cap_value_t(number), CAP_INHERITABLE, &value) == 0, value == CAP_SET {
                result.inheritable.insert(number)
            }
            if cap_get_bound(cap_value_t(number)) == 1 { result.bounding.insert(number) }
        }
        return result
    }

    /// Whether the calling thread has `number` in its effective set.
    public static func has(_ number: Int32) -> Bool { current().effective.contains(number) }

    /// Keeps only `keep` (within what is permitted) in the effective and permitted sets, clears the
    /// inheritable set, and when `dropBounding` drops everything else from the bounding set too (so
    /// programs Vigil starts cannot regain them). Applies to the calling thread and threads it creates
    /// later. Returns the set kept.
    @discardableResult
    public static func restrict(to keep: CapabilitySet, dropBounding: Bool) throws(CapabilityError) -> CapabilitySet {
        let before = current()
        let kept = keep.intersection(before.permitted)
        if dropBounding && before.effective.contains(CapabilitySet.setpcap) {
            for number in 0...lastCapability where !kept.contains(number) && before.bounding.contains(number) {
                _ = cap_drop_bound(cap_value_t(number))
            }
        }
        guard let caps = cap_init() else { throw CapabilityError(message: "Failed to allocate a capability set") }
        defer { cap_free(UnsafeMutableRawPointer(caps)) }
        for number in 0...lastCapability where kept.contains(number) {
            var value = [cap_value_t(number)]
            cap_set_flag(caps, CAP_EFFECTIVE, 1, &value, CAP_SET)
            cap_set_flag(caps, CAP_PERMITTED, 1, &value, CAP_SET)
        }
        guard cap_set_proc(caps) == 0 else {
            throw CapabilityError(message: "Failed to drop capabilities: \(String(cString: strerror(errno)))")
        }
        return kept
    }
}

/// A capability change that failed.
public struct CapabilityError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
