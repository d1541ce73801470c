import Testing
import VigilSystem

/// The Vectorscan wrapper against the real engine: many patterns, one pass, ids and errors.
@Suite struct PatternDatabaseTests {
    func matches(_ database: PatternDatabase, _ scratch: PatternDatabase.Scratch, _ line: String) -> [UInt32] {
        var ids: [UInt32] = []
        var text = line
        text.withUTF8 { bytes in
            _ = database.scan(UnsafeRawBufferPointer(bytes), scratch: scratch) { id, _ in ids.append(id) }
        }
        return ids.sorted()
    }

    @Test func severalPatternsAreMatchedInOnePass() throws {
        let database = try PatternDatabase([
            .init(id: 10, expression: "Failed password for (invalid user )?\\w+"),
            .init(id: 20, expression: "SSL certificate verification disabled", caseless: true),
            .init(id: 30, expression: "^ERROR "),
        ])
        let scratch = try PatternDatabase.Scratch(for: database)
        #expect(matches(database, scratch, "sshd[42]: Failed password for invalid user bob") == [10])
        #expect(matches(database, scratch, "upload: ssl CERTIFICATE verification DISABLED") == [20])
        #expect(matches(database, scratch, "ERROR Failed password for root") == [10, 30])
        #expect(matches(database, scratch, "all good") == [])
        #expect(matches(database, scratch, "") == [])
    }

    @Test func aPatternTheEngineRefusesIsNamedByItsIndex() {
        do {
            _ = try PatternDatabase([.init(id: 1, expression: "fine"), .init(id: 2, expression: "broken(")])
            Issue.record("a malformed pattern compiled")
        } catch {
            #expect(error.index == 1, "\(error)")
            #expect(error.description.hasPrefix("pattern 2 cannot be compiled: "), "\(error)")
        }
    }

    @Test func aThousandPatternsCostOnePass() throws {
        let patterns = (0..<1000).map { PatternDatabase.Pattern(id: UInt32($0), expression: "user\($0)x[0-9]+") }
        let database = try PatternDatabase(patterns)
        let scratch = try PatternDatabase.Scratch(for: database)
        #expect(matches(database, scratch, "login by user512x77 failed") == [512])
        #expect(matches(database, scratch, "user1x1 and user999x9") == [1, 999])
    }

    @Test func invalidUTF8AndNULBytesAreScannedSafely() throws {
        let database = try PatternDatabase([.init(id: 7, expression: "token=[A-Za-z0-9]{8}")])
        let scratch = try PatternDatabase.Scratch(for: database)
        let bytes: [UInt8] = [0xFF, 0xFE, 0x00] + Array("token=abcd1234".utf8) + [0xC3]
        var ids: [UInt32] = []
        bytes.withUnsafeBytes { raw in _ = database.scan(raw, scratch: scratch) { id, _ in ids.append(id) } }
        #expect(ids == [7])
    }
}
