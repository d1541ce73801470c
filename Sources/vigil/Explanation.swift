import VigilCore
import VigilDaemon
import VigilRules

/// `vigil match --explain LINE`: rule by rule, whether LINE matches, by which pattern, with which named groups.
enum Explanation {
    static func print(line: String, rules: [Rule], set: LogPatternSet) {
        let masker = SecretMasker(detectors: Set(SecretDetector.allCases))
        var text = line
        // Group values are shown from a masked copy: same-length masking keeps their offsets.
        var masked = Array(line.utf8)
        var state = SecretMasker.State()
        _ = masked.withUnsafeMutableBytes { masker.mask($0, state: &state) }
        var matched = 0
        text.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            for (index, rule) in rules.enumerated() {
                guard case .log(let subject) = rule.subject else { continue }
                let heading = "\(rule.id) (\(rule.location))"
                if subject.patterns.isEmpty {
                    Swift.print("\(heading): matches: it has no match: patterns, so it sees every line")
                    matched += 1
                    continue
                }
                let found = set.matchingPatterns(ruleIndex: index, line: raw)
                guard let first = found.first else {
                    let count = subject.patterns.count
                    Swift.print(
                        "\(heading): no match (\(count == 1 ? "its pattern" : "none of its \(count) patterns") matches)"
                    )
                    continue
                }
                matched += 1
                let pattern = subject.patterns[first]
                var reason = "\(heading): matches: pattern \(first + 1) '\(pattern.expression)' (\(pattern.location))"
                if pattern.caseless { reason += ", ignoring case" }
                if found.count > 1 {
                    reason +=
                        "; also pattern\(found.count > 2 ? "s" : "") \(found.dropFirst().map { String($0 + 1) }.joined(separator: ", "))"
                }
                Swift.print(reason)
                for (name, range) in set.captureRanges(ruleIndex: index, line: raw) {
                    Swift.print("    \(name) = \(String(decoding: masked[range], as: UTF8.self))")
                }
            }
        }
        Swift.print("vigil: the line matches \(matched) of \(LineCounter.plural(rules.count, "log rule"))")
    }
}
