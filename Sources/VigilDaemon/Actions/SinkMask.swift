import VigilRules

/// Which sinks a rule's alerts go to, as a bit mask over the daemon's sink list (bit i: sink i). One
/// builder for every watcher (files, processes, logs).
struct SinkMasks {
    /// Not a sink: set in a rule's mask when it has `exec:` actions, so every watcher hands its alerts to
    /// the outlet (even a rule with no `alert`), and the outlet passes them to the `ExecRunner`. Sinks
    /// therefore number at most 63.
    static let execBit: UInt64 = 1 << 63
    /// Every sink and not the exec bit: the mask of Vigil's own alerts.
    static let everySink: UInt64 = ~execBit
    /// Bits of every sink.
    let all: UInt64
    private let index: [String: Int]

    init(sinkNames: [String]) {
        var index: [String: Int] = [:]
        for (i, name) in sinkNames.enumerated() where index[name] == nil { index[name] = i }
        self.index = index
        all = sinkNames.isEmpty ? 0 : (sinkNames.count >= 63 ? Self.everySink : (1 << UInt64(sinkNames.count)) - 1)
    }

    /// The sinks of the rule's `alert` actions (`alert` alone: every sink), and `execBit` when it has
    /// `exec:`; 0 when it has neither.
    func mask(for rule: Rule) -> UInt64 {
        var mask: UInt64 = 0
        for case .exec in rule.actions { mask |= Self.execBit }
        for case .alert(let sinks, _) in rule.actions {
            guard let sinks else {
                mask |= all
                continue
            }
            for sink in sinks { if let i = index[sink], i < 63 { mask |= 1 << UInt64(i) } }
        }
        return mask
    }
}
