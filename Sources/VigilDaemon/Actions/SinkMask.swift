import VigilRules

/// Which sinks a rule's alerts go to, as a bit mask over the daemon's sink list (bit i: sink i). One
/// builder for every watcher (files, processes, logs).
struct SinkMasks {
    /// Bits of every sink.
    let all: UInt64
    private let index: [String: Int]

    init(sinkNames: [String]) {
        var index: [String: Int] = [:]
        for (i, name) in sinkNames.enumerated() where index[name] == nil { index[name] = i }
        self.index = index
        all = sinkNames.isEmpty ? 0 : (sinkNames.count >= 64 ? .max : (1 << UInt64(sinkNames.count)) - 1)
    }

    /// The sinks of the rule's `alert` actions (`alert` alone: every sink); 0 when it has none.
    func mask(for rule: Rule) -> UInt64 {
        var mask: UInt64 = 0
        for case .alert(let sinks, _) in rule.actions {
            guard let sinks else {
                mask |= all
                continue
            }
            for sink in sinks { if let i = index[sink] { mask |= 1 << UInt64(i) } }
        }
        return mask
    }
}
