/// Compiles YAML rule files into a `RuleSet`, reporting every problem at once like a compiler.
///
/// See `docs/rules.md` for the language. Compilation never throws and never stops at the first
/// error: the result carries all diagnostics, and a rule set only when none of them is an error.
public enum RuleCompiler {
    /// Compiles files and directories (directories: every `*.yaml` / `*.yml` inside, sorted by name,
    /// not recursive, hidden files skipped), all of them shipped rules.
    ///
    /// Paths that do not exist or cannot be read, directories without rule files, files larger than
    /// 4 MiB, files with NUL bytes or invalid UTF-8, and files or directories others than root can
    /// write are errors reported as `PATH: error: …`.
    public static func compile(paths: [String]) -> RuleCompilation {
        compile(shipped: paths, local: [])
    }

    /// Compiles shipped rules (`/etc/vigil/rules.d`, replaced on upgrade) and local rules
    /// (`/etc/vigil/local.d`, never touched by upgrades), which may replace shipped rules, sinks and
    /// lists with `override: true` and turn shipped rules off with `- disable: [ID, ...]`.
    ///
    /// Paths are read as by `compile(paths:)`, except that a local directory without rule files is
    /// not an error (it may hold only a README).
    public static func compile(shipped: [String], local: [String]) -> RuleCompilation {
        var layers: [[(file: String, text: String)]] = [[], []]
        var failures: [RuleDiagnostic] = []
        var order: [String] = []
        for (layer, paths) in [shipped, local].enumerated() {
            for entry in RuleSourceReader.read(paths: paths, allowEmptyDirectories: layer == 1) {
                switch entry {
                case .source(let file, let text):
                    layers[layer].append((file, text))
                    order.append(file)
                case .failure(let diagnostic):
                    failures.append(diagnostic)
                    order.append(diagnostic.location.file)
                }
            }
        }
        return compile(shipped: layers[0], local: layers[1], extraDiagnostics: failures, fileOrder: order)
    }

    /// Compiles YAML text; `file` is the name used in diagnostics.
    public static func compile(sources: [(file: String, text: String)]) -> RuleCompilation {
        compile(shippedSources: sources, localSources: [])
    }

    /// Compiles YAML text in two layers, as `compile(shipped:local:)` does with files.
    public static func compile(
        shippedSources: [(file: String, text: String)],
        localSources: [(file: String, text: String)]
    ) -> RuleCompilation {
        compile(
            shipped: shippedSources,
            local: localSources,
            extraDiagnostics: [],
            fileOrder: (shippedSources + localSources).map(\.file)
        )
    }

    /// Parses each source, merges the local layer over the shipped one, runs the checks that span files,
    /// and orders the diagnostics.
    private static func compile(
        shipped: [(file: String, text: String)],
        local: [(file: String, text: String)],
        extraDiagnostics: [RuleDiagnostic],
        fileOrder: [String]
    ) -> RuleCompilation {
        var diagnostics = extraDiagnostics
        let shippedLayer = parse(shipped, diagnostics: &diagnostics)
        let localLayer = parse(local, diagnostics: &diagnostics)
        for disable in shippedLayer.disables {
            diagnostics.append(
                .error(
                    "disable: belongs in local rule files (/etc/vigil/local.d, --local-rules), which upgrades never replace; in shipped rules remove rule '\(disable.id)' or set enabled: false on it",
                    at: disable.location
                )
            )
        }
        diagnostics += shippedLayer.duplicates() + localLayer.duplicates()
        let merged = RuleLayers.merge(shipped: shippedLayer, local: localLayer)
        diagnostics += merged.diagnostics
        let rules = merged.rules
        let sinks = merged.sinks
        let lists = merged.lists

        var firstSink: [String: SourceLocation] = [:]
        var sinkNames: [String] = []
        for sink in sinks where firstSink[sink.name] == nil {
            firstSink[sink.name] = sink.location
            sinkNames.append(sink.name)
        }
        for rule in rules {
            for reference in rule.sinkReferences where firstSink[reference.name] == nil {
                let message: String
                if sinkNames.isEmpty {
                    message =
                        "unknown sink '\(reference.name)'; no sinks are defined, so add an item '- sink: \(reference.name)' with a type:"
                } else {
                    message = "unknown sink '\(reference.name)'" + Spelling.hint(for: reference.name, among: sinkNames)
                }
                diagnostics.append(.error(message, at: reference.location))
            }
        }

        diagnostics += checkListReferences(rules: rules, lists: lists)

        diagnostics = ordered(diagnostics, fileOrder: fileOrder)
        var compilation = RuleCompilation(ruleSet: nil, diagnostics: diagnostics)
        compilation.layerChanges = merged.changes
        guard compilation.errorCount == 0 else { return compilation }
        var listItems: [String: [String]] = [:]
        for list in lists { listItems[list.name] = list.items ?? [] }
        let ruleSet = RuleSet(
            rules: rules.compactMap(\.rule).map { rule in
                var rule = expandingLists(in: rule, lists: listItems)
                if merged.disabledRuleIDs.contains(rule.id) { rule.enabled = false }
                return rule
            },
            sinks: sinks.compactMap(\.spec),
            lists: listItems,
            files: (shipped + local).map(\.file)
        )
        var loaded = RuleCompilation(ruleSet: ruleSet, diagnostics: diagnostics)
        loaded.layerChanges = merged.changes
        return loaded
    }

    /// Parses the sources of one layer, adding their diagnostics.
    private static func parse(
        _ sources: [(file: String, text: String)],
        diagnostics: inout [RuleDiagnostic]
    ) -> RuleLayers.Layer {
        var layer = RuleLayers.Layer()
        for source in sources {
            var parser = RuleFileParser(file: source.file)
            if source.text.utf8.contains(0) {
                let offset =
                    source.text.utf8.firstIndex(of: 0).map {
                        source.text.utf8.distance(from: source.text.utf8.startIndex, to: $0)
                    } ?? 0
                parser.error(
                    "refusing rule file '\(source.file)': it contains a NUL byte at offset \(offset), so it is not a text file; check that the right file was named",
                    at: SourceLocation(file: source.file, line: 0, column: 0)
                )
            } else {
                parser.parse(text: source.text)
            }
            diagnostics += parser.diagnostics
            layer.rules += parser.rules
            layer.sinks += parser.sinks
            layer.lists += parser.lists
            layer.disables += parser.disables
        }
        return layer
    }

    /// Reports list names in `allow:` that name no list, and entries of the lists they name that are not
    /// absolute executable paths or globs (once per list, at the entry).
    private static func checkListReferences(
        rules: [RuleFileParser.RuleDraft],
        lists: [RuleFileParser.ListDraft]
    ) -> [RuleDiagnostic] {
        var diagnostics: [RuleDiagnostic] = []
        var byName: [String: RuleFileParser.ListDraft] = [:]
        var names: [String] = []
        for list in lists where byName[list.name] == nil {
            byName[list.name] = list
            names.append(list.name)
        }
        var checked: Set<String> = []
        for rule in rules {
            for reference in rule.listReferences {
                guard let list = byName[reference.name] else {
                    let message: String
                    if let suggestion = Spelling.suggestion(for: reference.name, among: names) {
                        message =
                            "unknown list '\(reference.name)' in allow:; did you mean '\(suggestion)'? (entries that do not start with '/' name lists)"
                    } else {
                        message =
                            "unknown list '\(reference.name)' in allow:; entries that do not start with '/' name lists, so define '- list: \(reference.name)' with items:, or write the executable's absolute path such as /usr/bin/\(reference.name)"
                    }
                    diagnostics.append(.error(message, at: reference.location))
                    continue
                }
                guard checked.insert(list.name).inserted, let items = list.items else { continue }
                for (item, location) in zip(items, list.itemLocations) {
                    guard let problem = RuleFileParser.executableProblem(item, anyDirectoryHint: false) else {
                        continue
                    }
                    diagnostics.append(
                        .error(
                            "\(problem) (allow: of rule '\(rule.id)' uses list '\(list.name)', so its items are executables)",
                            at: location
                        )
                    )
                }
            }
        }
        return diagnostics
    }

    /// The rule with list names in a root rule's `allow:` replaced by the lists' items, in order, without
    /// repeats.
    private static func expandingLists(in rule: Rule, lists: [String: [String]]) -> Rule {
        guard case .process(var process) = rule.subject, case .root(let allow) = process.trigger else { return rule }
        var expanded: [String] = []
        for entry in allow {
            for item in entry.hasPrefix("/") ? [entry] : lists[entry] ?? [] where !expanded.contains(item) {
                expanded.append(item)
            }
        }
        process.trigger = .root(allow: expanded)
        var rule = rule
        rule.subject = .process(process)
        return rule
    }

    /// Diagnostics by file (in the order files were given or found), then line, then column; stable.
    private static func ordered(_ diagnostics: [RuleDiagnostic], fileOrder: [String]) -> [RuleDiagnostic] {
        var rank: [String: Int] = [:]
        for (index, file) in fileOrder.enumerated() where rank[file] == nil { rank[file] = index }
        return diagnostics.enumerated().sorted { lhs, rhs in
            let left = (
                rank[lhs.element.location.file] ?? Int.max, lhs.element.location.line, lhs.element.location.column,
                lhs.offset
            )
            let right = (
                rank[rhs.element.location.file] ?? Int.max, rhs.element.location.line, rhs.element.location.column,
                rhs.offset
            )
            return left < right
        }.map(\.element)
    }
}
