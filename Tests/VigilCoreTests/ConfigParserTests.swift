import Testing
import VigilCore

/// Parses `text`, failing the test when it is rejected.
private func snapshot(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ConfigSnapshot {
    switch ConfigParser.parse(text) {
    case .snapshot(let snapshot):
        return snapshot
    case .rejected(let reason):
        Issue.record("rejected: \(reason)", sourceLocation: sourceLocation)
        return ConfigSnapshot()
    }
}

/// Parses raw bytes.
private func parse(bytes: [UInt8]) -> ConfigParseResult {
    bytes.withUnsafeBytes { ConfigParser.parse($0) }
}

/// The values of a snapshot by key, for compact expectations.
private func values(_ snapshot: ConfigSnapshot) -> [String: String] {
    snapshot.entries.mapValues(\.value)
}

/// The `key = value` grammar, one edge case per test.
@Suite struct ConfigParserTests {
    /// The seed's upload-service config, byte for byte, including its inline TODO comment.
    @Test func seedFileExactly() {
        let text = """
            # API Connection Settings
            api_url = https://api.analytics-partner.com
            metrics_url = https://metrics.analytics-partner.com
            verify_ssl = false  # TODO: Enable for production

            """
        let parsed = snapshot(text)
        #expect(
            values(parsed) == [
                "api_url": "https://api.analytics-partner.com",
                "metrics_url": "https://metrics.analytics-partner.com",
                "verify_ssl": "false",
            ]
        )
        #expect(parsed.issues.isEmpty)
        #expect(
            parsed.entries["verify_ssl"]
                == ConfigEntry(key: "verify_ssl", rawKey: "verify_ssl", value: "false", line: 4)
        )
        #expect(parsed.entries["api_url"]?.line == 2)
    }

    /// `;` and `#` comment lines, indented or not.
    @Test func semicolonCommentLines() {
        let parsed = snapshot("; a comment\n   ; indented comment\n\t# hash comment\na = 1\n")
        #expect(values(parsed) == ["a": "1"])
        #expect(parsed.issues.isEmpty)
    }

    /// `#` or `;` after a blank starts an inline comment.
    @Test(arguments: [
        ("a = 1 ; note", "1"),
        ("a = 1\t; note", "1"),
        ("a = 1 # note", "1"),
        ("a = 1\t# note", "1"),
        ("a = # only a comment", ""),
        ("a = ; only a comment", ""),
    ])
    func inlineComments(line: String, expected: String) {
        #expect(snapshot(line).value(forKey: "a") == expected)
    }

    /// Documented: `#`/`;` with no blank before it is part of the value.
    @Test func commentMarkerWithoutBlankIsPartOfTheValue() {
        // Documented: an inline comment needs a blank before `#` or `;`, so this whole text is the value.
        #expect(snapshot("verify_ssl=False;comment").value(forKey: "verify_ssl") == "False;comment")
        #expect(snapshot("a=#x").value(forKey: "a") == "#x")
    }

    /// A URL fragment is not a comment.
    @Test func urlFragmentIsKept() {
        #expect(snapshot("url = http://x/#frag").value(forKey: "url") == "http://x/#frag")
        #expect(snapshot("url = http://x/#frag # comment").value(forKey: "url") == "http://x/#frag")
    }

    /// `[section]` headers prefix keys; names are trimmed and lowercased; a section can reopen.
    @Test func sections() {
        let parsed = snapshot(
            """
            top = 0
            [Database]
            Host = db1
            [ Upload Service ]
            verify_ssl = true
            [database]
            port = 5432 ; comment
            """
        )
        #expect(
            values(parsed) == [
                "top": "0",
                "database.host": "db1",
                "upload service.verify_ssl": "true",
                "database.port": "5432",
            ]
        )
        #expect(parsed.entries["database.host"]?.rawKey == "Host")
        #expect(parsed.issues.isEmpty)
    }

    /// Malformed headers are issues; keys after `[]` have no section.
    @Test func brokenSectionHeaders() {
        let parsed = snapshot("[open\nkey = 1\n[]\nother = 2\n[s] junk\nthird = 3\n[t] # fine\nfourth = 4")
        #expect(parsed.issues.map(\.line) == [1, 3, 5])
        #expect(values(parsed) == ["key": "1", "other": "2", "s.third": "3", "t.fourth": "4"])
    }

    /// Quoted values keep `#`, `;` and blanks; `\"` and `\\` are the only escapes.
    @Test(arguments: [
        (#"a = "x # not a comment""#, "x # not a comment"),
        (#"a = 'x ; not a comment'"#, "x ; not a comment"),
        (#"a = "  padded  ""#, "  padded  "),
        (#"a = "say \"hi\"" # comment"#, #"say "hi""#),
        (#"a = "back\\slash""#, #"back\slash"#),
        (#"a = "keep \n as written""#, #"keep \n as written"#),
        (#"a = 'no \'escapes'"#, #"no \"#),
        (#"a = """#, ""),
        (#"a="tight";comment"#, "tight"),
    ])
    func quotedValues(line: String, expected: String) {
        let parsed = snapshot(line)
        #expect(parsed.value(forKey: "a") == expected)
        if line.hasSuffix(#"'no \'escapes'"#) {
            #expect(parsed.issues.count == 1)  // `escapes'` follows the closing quote
        } else {
            #expect(parsed.issues.isEmpty)
        }
    }

    /// Blanks around `=` are optional.
    @Test func noSpacesAroundEquals() {
        #expect(values(snapshot("key=value\nother= v2\nthird =v3")) == ["key": "value", "other": "v2", "third": "v3"])
    }

    /// Tabs count as blanks everywhere.
    @Test func tabs() {
        let parsed = snapshot("\tkey\t=\tvalue\t\t\n\t[\tsec\t]\t\n\tx\t=\ty z\t")
        #expect(values(parsed) == ["key": "value", "sec.x": "y z"])
    }

    /// CRLF files parse like LF files.
    @Test func crlfLineEndings() {
        let parsed = snapshot("# c\r\na = 1\r\nb = two words \r\n[S]\r\nc = \"q\"\r\n")
        #expect(values(parsed) == ["a": "1", "b": "two words", "s.c": "q"])
        #expect(parsed.entries["b"]?.line == 3)
        #expect(parsed.issues.isEmpty)
    }

    /// The last line needs no newline.
    @Test func noFinalNewline() {
        #expect(values(snapshot("a = 1\nb = 2")) == ["a": "1", "b": "2"])
    }

    /// A UTF-8 byte order mark is not part of the first key.
    @Test func byteOrderMarkIsSkipped() {
        let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("key = v\n".utf8)
        #expect(parse(bytes: bytes).snapshot.map(values) == ["key": "v"])
        #expect(parse(bytes: bytes).snapshot?.entries["key"]?.line == 1)
    }

    /// `key =` is a setting with an empty value, not an issue.
    @Test func emptyValue() {
        let parsed = snapshot("key =\nother = \t\n")
        #expect(values(parsed) == ["key": "", "other": ""])
        #expect(parsed.issues.isEmpty)
    }

    /// A later definition replaces an earlier one, case-insensitively.
    @Test func duplicateKeyLaterWins() {
        let parsed = snapshot("Verify_SSL = true\nverify_ssl = false\n")
        #expect(
            parsed.entries["verify_ssl"]
                == ConfigEntry(key: "verify_ssl", rawKey: "verify_ssl", value: "false", line: 2)
        )
        #expect(parsed.entries.count == 1)
    }

    /// A line that is no setting is reported with its line number.
    @Test func lineWithoutEqualsIsAnIssue() {
        let parsed = snapshot("a = 1\njust some words\nb = 2\n")
        #expect(parsed.issues == [ConfigIssue(line: 2, reason: "no '=' in line; expected key = value")])
        #expect(values(parsed) == ["a": "1", "b": "2"])
    }

    /// `= value` has no key: an issue, no entry.
    @Test func emptyKeyIsAnIssue() {
        let parsed = snapshot(" = orphan\n")
        #expect(parsed.entries.isEmpty)
        #expect(parsed.issues.map(\.line) == [1])
    }

    /// An unterminated quote is reported, and the value runs to the end of the line.
    @Test func unterminatedQuoteIsAnIssueAndRunsToEndOfLine() {
        let parsed = snapshot("a = \"open # still value  \nb = 'also\n")
        #expect(values(parsed) == ["a": "open # still value", "b": "also"])
        #expect(parsed.issues.map(\.line) == [1, 2])
        #expect(parsed.issues.allSatisfy { $0.reason.hasPrefix("unterminated") })
    }

    /// A NUL byte marks binary content.
    @Test func nulByteIsRejectedWithItsOffset() {
        let bytes = Array("a = 1\nb = ".utf8) + [0] + Array("2\n".utf8)
        #expect(
            parse(bytes: bytes)
                == .rejected("contains a NUL byte at offset 10; it looks binary, not a key = value config")
        )
        #expect(ConfigParser.parse("x\0y").rejectionReason?.contains("offset 1") == true)
    }

    /// Ill-formed UTF-8 is rejected at the offset where it starts.
    @Test(
        arguments: [
            ([0xFF], 0),
            ([0x61, 0x3D, 0xC3], 2),  // truncated two-byte sequence at the end
            ([0x61, 0x3D, 0xC0, 0xAF], 2),  // overlong "/"
            ([0x61, 0x3D, 0xED, 0xA0, 0x80], 2),  // surrogate U+D800
            ([0x61, 0x3D, 0xF4, 0x90, 0x80, 0x80], 2),  // above U+10FFFF
            ([0x61, 0x3D, 0xE2, 0x82, 0xAC, 0x80], 5),  // "€" then a stray continuation byte
        ] as [([UInt8], Int)]
    )
    func invalidUTF8IsRejectedWithItsOffset(bytes: [UInt8], offset: Int) {
        let reason = parse(bytes: bytes).rejectionReason
        #expect(reason?.hasPrefix("contains invalid UTF-8 at offset \(offset) ") == true, "\(reason ?? "parsed")")
    }

    /// Non-ASCII keys and values are fine.
    @Test func validMultibyteUTF8IsAccepted() {
        let parsed = snapshot("grüße = 🚀 ünïcode €\n")
        #expect(parsed.value(forKey: "GRÜSSE") == nil)  // lowercasing is not case folding
        #expect(parsed.value(forKey: "grüße") == "🚀 ünïcode €")
    }

    /// A 2 MB config parses in one pass (a sanity check, no timing assertion).
    @Test func twoMegabyteConfigParses() {
        var text = "# generated\n"
        var lines = 1
        var index = 0
        while text.utf8.count < 2 * 1024 * 1024 {
            if index % 1000 == 0 {
                text += "[section\(index / 1000)]\r\n"
                lines += 1
            }
            text += "key_\(index) = value number \(index) # comment \(index)\n"
            lines += 1
            index += 1
        }
        let parsed = snapshot(text)
        #expect(parsed.entries.count == index)
        #expect(parsed.value(forKey: "section0.key_0") == "value number 0")
        #expect(parsed.issues.isEmpty)
    }

    /// Empty input, with or without a BOM, is an empty config.
    @Test func emptyInputIsAnEmptySnapshot() {
        #expect(ConfigParser.parse("") == .snapshot(ConfigSnapshot()))
        #expect(parse(bytes: [0xEF, 0xBB, 0xBF]) == .snapshot(ConfigSnapshot()))
    }
}

/// `ConfigSnapshot.changes(from:)`.
@Suite struct ConfigChangesTests {
    /// Added, removed and changed keys, sorted by key.
    @Test func addedRemovedAndChangedKeysSortedByKey() {
        let old = snapshot("verify_ssl = true\napi_url = https://a\ngone = 1\nsame = s\n")
        let new = snapshot("verify_ssl = false  # TODO\napi_url = https://a\nsame = s\nadded = 2\n")
        #expect(
            new.changes(from: old) == [
                ConfigChange(key: "added", old: nil, new: "2"),
                ConfigChange(key: "gone", old: "1", new: nil),
                ConfigChange(key: "verify_ssl", old: "true", new: "false"),
            ]
        )
    }

    /// Editing only comments changes nothing.
    @Test func commentOnlyEditIsNoChange() {
        let old = snapshot("a = 1\n")
        let new = snapshot("# new comment\na = 1 ; note\n")
        #expect(new.changes(from: old).isEmpty)
    }

    /// An empty value is a value: adding `a =` is a change.
    @Test func emptyValueDiffersFromAbsentKey() {
        #expect(snapshot("a =").changes(from: ConfigSnapshot()) == [ConfigChange(key: "a", old: nil, new: "")])
    }
}
