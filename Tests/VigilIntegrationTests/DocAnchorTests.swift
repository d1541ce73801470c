import Foundation
import Testing

/// Every message that sends the user to documentation points to an anchor that exists: a reference
/// `docs/NAME.md#anchor` in Sources (and a link `NAME.md#anchor` between the docs) must name an explicit
/// `<a id="anchor">` or a heading of that file.
@Suite struct DocAnchorTests {
    static let root = VigilBinary.repositoryRoot

    /// The anchors of a Markdown file: explicit `<a id="…">` and headings as GitHub slugs them
    /// (lowercased, punctuation dropped, spaces to `-`, repeats numbered `-1`, `-2`).
    static func anchors(in path: String) -> Set<String>? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var anchors: Set<String> = []
        var seen: [String: Int] = [:]
        var inCode = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") { inCode.toggle() }
            if inCode { continue }
            var rest = line[...]
            while let range = rest.range(of: "<a id=\"") {
                let after = rest[range.upperBound...]
                guard let end = after.firstIndex(of: "\"") else { break }
                anchors.insert(String(after[..<end]))
                rest = after[end...]
            }
            guard line.hasPrefix("#") else { continue }
            let title = line.drop { $0 == "#" }.trimmingCharacters(in: .whitespaces)
            var slug = ""
            for character in title.lowercased() {
                if character == " " {
                    slug.append("-")
                } else if character.isLetter || character.isNumber || character == "-" || character == "_" {
                    slug.append(character)
                }
            }
            let count = seen[slug, default: 0]
            seen[slug] = count + 1
            anchors.insert(count == 0 ? slug : "\(slug)-\(count)")
        }
        return anchors
    }

    /// `(file, anchor, where)` for every `docs/NAME.md#anchor` in the text.
    static func references(in text: String, prefix: String, where location: String) -> [(String, String, String)] {
        var found: [(String, String, String)] = []
        var rest = text[...]
        while let range = rest.range(of: prefix) {
            let after = rest[range.upperBound...]
            let name = after.prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            let tail = after.dropFirst(name.count)
            rest = tail
            guard !name.isEmpty, tail.hasPrefix(".md#") else { continue }
            let anchor = tail.dropFirst(4).prefix { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
            guard !anchor.isEmpty else { continue }
            found.append((String(name), String(anchor), location))
        }
        return found
    }

    /// Every regular file below `directory` whose name ends in one of `suffixes`.
    static func files(below directory: String, endingIn suffixes: [String]) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        return enumerator.compactMap { $0 as? String }.filter { name in suffixes.contains { name.hasSuffix($0) } }
            .map { directory + "/" + $0 }.sorted()
    }

    @Test func everyDocumentationAnchorInSourcesExists() throws {
        var references: [(String, String, String)] = []
        for path in Self.files(below: Self.root + "/Sources", endingIn: [".swift", ".c", ".h"]) {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            references += Self.references(in: text, prefix: "docs/", where: path)
        }
        #expect(references.count >= 10, "the scan finds the references (\(references.count))")
        #expect(references.contains { $0.0 == "troubleshooting" && $0.1 == "rule-file-not-trusted" })
        #expect(references.contains { $0.0 == "operations" && $0.1 == "install-rules-failed" })
        var missing: [String] = []
        for (name, anchor, location) in references {
            let anchors = Self.anchors(in: Self.root + "/docs/\(name).md")
            if anchors?.contains(anchor) != true {
                missing.append("\(location): docs/\(name).md#\(anchor)")
            }
        }
        #expect(missing.isEmpty, "anchors that do not exist:\n\(missing.joined(separator: "\n"))")
    }

    @Test func everyAnchorLinkInTheDocsExists() throws {
        var missing: [String] = []
        var checked = 0
        for path in Self.files(below: Self.root + "/docs", endingIn: [".md"]) + [Self.root + "/README.md"] {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            let directory = (path as NSString).deletingLastPathComponent
            var rest = text[...]
            while let open = rest.range(of: "](") {
                let after = rest[open.upperBound...]
                guard let close = after.firstIndex(of: ")") else { break }
                let link = after[..<close]
                rest = after[close...]
                guard let hash = link.firstIndex(of: "#"), !link.contains("://") else { continue }
                let file = link[..<hash]
                guard file.isEmpty || file.hasSuffix(".md") else { continue }
                let target = file.isEmpty ? path : directory + "/" + file
                guard let anchors = Self.anchors(in: target) else { continue }
                checked += 1
                let anchor = String(link[link.index(after: hash)...])
                if !anchors.contains(anchor) { missing.append("\(path): \(link)") }
            }
        }
        #expect(checked > 20, "the scan finds the links (\(checked))")
        #expect(missing.isEmpty, "links to anchors that do not exist:\n\(missing.joined(separator: "\n"))")
    }
}
