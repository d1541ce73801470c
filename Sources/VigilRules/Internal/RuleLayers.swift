/// Merges local rules over shipped ones.
///
/// Shipped rules (`/etc/vigil/rules.d`) are replaced wholesale by upgrades; local rules
/// (`/etc/vigil/local.d`) never are. A local rule, sink or list with a shipped one's name replaces it
/// only when it says `override: true`, so a name clash is never silent; `- disable: [ID, ...]` turns
/// shipped rules off. Names an upgrade dropped are warnings, not errors: an upgrade must not stop the
/// daemon because a local file still mentions a rule that is gone.
enum RuleLayers {
    /// What one layer's files declare.
    struct Layer {
        /// Rules in file order.
        var rules: [RuleFileParser.RuleDraft] = []
        /// Sinks in file order.
        var sinks: [RuleFileParser.SinkDraft] = []
        /// Named lists in file order.
        var lists: [RuleFileParser.ListDraft] = []
        /// `- disable:` entries in file order.
        var disables: [RuleFileParser.DisableDraft] = []

        /// Duplicate rule ids, sink names and list names within the layer: errors at the second one.
        func duplicates() -> [RuleDiagnostic] {
            RuleLayers.duplicates(rules.map { ($0.id, $0.idLocation, $0.location) }, noun: "rule id")
                + RuleLayers.duplicates(sinks.map { ($0.name, $0.nameLocation, $0.location) }, noun: "sink name")
                + RuleLayers.duplicates(lists.map { ($0.name, $0.nameLocation, $0.location) }, noun: "list name")
        }
    }

    /// The layers merged: what is loaded, what changed, and the problems found.
    struct Merged {
        /// Shipped rules not overridden, then local rules.
        var rules: [RuleFileParser.RuleDraft] = []
        /// Shipped sinks not overridden, then local sinks.
        var sinks: [RuleFileParser.SinkDraft] = []
        /// Shipped lists not overridden, then local lists.
        var lists: [RuleFileParser.ListDraft] = []
        /// Shipped rules that a local `disable:` turns off (they load with `enabled: false`).
        var disabledRuleIDs: Set<String> = []
        /// Every shipped rule, sink or list overridden or disabled, for `vigil check`.
        var changes: [RuleLayerChange] = []
        /// Errors and warnings about the merge.
        var diagnostics: [RuleDiagnostic] = []
    }

    /// Reports the second and later uses of a name: `duplicate rule id 'x'; first defined at …`.
    static func duplicates(
        _ items: [(name: String, nameLocation: SourceLocation, location: SourceLocation)],
        noun: String
    ) -> [RuleDiagnostic] {
        var first: [String: SourceLocation] = [:]
        var diagnostics: [RuleDiagnostic] = []
        for item in items {
            if let earlier = first[item.name] {
                diagnostics.append(
                    .error("duplicate \(noun) '\(item.name)'; first defined at \(earlier)", at: item.nameLocation)
                )
            } else {
                first[item.name] = item.location
            }
        }
        return diagnostics
    }

    /// Merges `local` over `shipped`.
    static func merge(shipped: Layer, local: Layer) -> Merged {
        var merged = Merged()
        let rules = overlay(
            shipped: shipped.rules.map { ($0.id, $0.location) },
            local: local.rules.map { ($0.id, $0.idLocation, $0.location, $0.override) },
            kind: .rule,
            into: &merged
        )
        merged.rules = shipped.rules.filter { !rules.contains($0.id) } + local.rules
        let sinks = overlay(
            shipped: shipped.sinks.map { ($0.name, $0.location) },
            local: local.sinks.map { ($0.name, $0.nameLocation, $0.location, $0.override) },
            kind: .sink,
            into: &merged
        )
        merged.sinks = shipped.sinks.filter { !sinks.contains($0.name) } + local.sinks
        let lists = overlay(
            shipped: shipped.lists.map { ($0.name, $0.location) },
            local: local.lists.map { ($0.name, $0.nameLocation, $0.location, $0.override) },
            kind: .list,
            into: &merged
        )
        merged.lists = shipped.lists.filter { !lists.contains($0.name) } + local.lists

        for draft in shipped.rules {
            guard let location = draft.override else { continue }
            merged.diagnostics.append(
                .warning(
                    "override: true has no effect in shipped rules; it belongs on a rule in a local rule file (/etc/vigil/local.d, --local-rules) that replaces a shipped rule, so remove it here",
                    at: location
                )
            )
        }

        var shippedRules: [String: SourceLocation] = [:]
        for draft in shipped.rules where shippedRules[draft.id] == nil { shippedRules[draft.id] = draft.location }
        let shippedIDs = shipped.rules.map(\.id)
        for disable in local.disables {
            guard let location = shippedRules[disable.id] else {
                merged.diagnostics.append(
                    .warning(
                        "disable: names '\(disable.id)', but no shipped rule has that id (it may have been renamed or removed in an upgrade), so nothing is disabled; remove it from disable:"
                            + (Spelling.suggestion(for: disable.id, among: shippedIDs).map {
                                " (did you mean '\($0)'?)"
                            }
                                ?? ""),
                        at: disable.location
                    )
                )
                continue
            }
            if rules.contains(disable.id) {
                let local = local.rules.first { $0.id == disable.id }?.location
                merged.diagnostics.append(
                    .error(
                        "rule '\(disable.id)' is both disabled here and overridden at \(local.map { "\($0)" } ?? "a local rule"); keep one: disable: turns the shipped rule off, override: true replaces it",
                        at: disable.location
                    )
                )
                continue
            }
            guard merged.disabledRuleIDs.insert(disable.id).inserted else { continue }
            merged.changes.append(
                RuleLayerChange(
                    kind: .disabled,
                    item: .rule,
                    name: disable.id,
                    shipped: location,
                    local: disable.location
                )
            )
        }
        return merged
    }

    /// Checks local items against shipped ones of one kind; returns the shipped names replaced.
    private static func overlay(
        shipped: [(name: String, location: SourceLocation)],
        local: [(name: String, nameLocation: SourceLocation, location: SourceLocation, override: SourceLocation?)],
        kind: RuleLayerChange.Item,
        into merged: inout Merged
    ) -> Set<String> {
        var shippedAt: [String: SourceLocation] = [:]
        for item in shipped where shippedAt[item.name] == nil { shippedAt[item.name] = item.location }
        let noun = kind == .rule ? "rule id" : "\(kind.rawValue) name"
        var replaced: Set<String> = []
        for item in local {
            if let original = shippedAt[item.name] {
                guard item.override != nil else {
                    merged.diagnostics.append(
                        .error(
                            "\(noun) '\(item.name)' is already a shipped \(kind.rawValue) (\(original)); add override: true to replace it, or pick another \(kind == .rule ? "id" : "name")",
                            at: item.nameLocation
                        )
                    )
                    continue
                }
                if replaced.insert(item.name).inserted {
                    merged.changes.append(
                        RuleLayerChange(
                            kind: .overridden,
                            item: kind,
                            name: item.name,
                            shipped: original,
                            local: item.location
                        )
                    )
                }
            } else if let location = item.override {
                merged.diagnostics.append(
                    .warning(
                        "override: true, but no shipped \(kind.rawValue) \(kind == .rule ? "has id" : "is named") '\(item.name)' (it may have been renamed or removed in an upgrade), so this \(kind.rawValue) is loaded as a new one; remove override: or use the shipped \(kind.rawValue)'s current \(kind == .rule ? "id" : "name")",
                        at: location
                    )
                )
            }
        }
        return replaced
    }
}
