import Testing
import VigilCore
import VigilTestSupport

/// Masks `lines` in order with one state, as the sanitize action does with a file; returns the lines and the
/// number of bytes changed.
func maskLines(_ lines: [[UInt8]], _ masker: SecretMasker) -> (lines: [[UInt8]], changed: Int) {
    var state = SecretMasker.State()
    var changed = 0
    let masked = lines.map { line -> [UInt8] in
        var copy = line
        changed += copy.withUnsafeMutableBytes { masker.mask($0, state: &state) }
        return copy
    }
    return (masked, changed)
}

/// `count` mask bytes.
func stars(_ count: Int) -> String { String(repeating: "*", count: count) }

/// `text` masked as one line with `detectors` (all by default), and the count `mask` returned.
func maskOne(_ text: String, _ detectors: Set<SecretDetector> = Set(SecretDetector.allCases)) -> (String, Int) {
    var bytes = Array(text.utf8)
    var state = SecretMasker.State()
    let changed = bytes.withUnsafeMutableBytes { SecretMasker(detectors: detectors).mask($0, state: &state) }
    return (String(decoding: bytes, as: UTF8.self), changed)
}

/// The hand-written secret scanners: a corpus per detector, benign lines, idempotency, bytes that are not text.
@Suite struct SecretMaskerTests {
    let all = SecretMasker(detectors: Set(SecretDetector.allCases))

    @Test func theCorpusIsMaskedExactlyAsTheGoldenFileSays() {
        let corpus = SecretCorpus.lines("corpus.txt")
        let expected = SecretCorpus.lines("corpus.masked.txt")
        let result = maskLines(corpus, all)
        #expect(result.lines.count == expected.count)
        for (index, (line, golden)) in zip(result.lines, expected).enumerated() {
            #expect(
                line == golden,
                "line \(index + 1): \(String(decoding: line, as: UTF8.self)) != \(String(decoding: golden, as: UTF8.self))"
            )
        }
        // The count is the number of bytes that differ.
        var differing = 0
        for (before, after) in zip(corpus, result.lines) {
            #expect(before.count == after.count)
            differing += zip(before, after).count { $0 != $1 }
        }
        #expect(result.changed == differing)
    }

    @Test func everySecretLineOfTheCorpusChanges() {
        let corpus = SecretCorpus.lines("corpus.txt")
        var state = SecretMasker.State()
        for line in corpus {
            var copy = line
            let changed = copy.withUnsafeMutableBytes { all.mask($0, state: &state) }
            let text = String(decoding: line, as: UTF8.self)
            // Context lines around the private keys carry no secret of their own.
            let isContext =
                text.hasSuffix("failed to load key:") || text.hasPrefix("-----BEGIN")
                || text.hasPrefix("-----END")
            #expect((changed > 0) != isContext, "\(text)")
        }
    }

    @Test func benignLinesDoNotChange() {
        let benign = SecretCorpus.lines("benign.txt")
        let result = maskLines(benign, all)
        #expect(result.changed == 0)
        #expect(result.lines == benign)
    }

    @Test func maskingIsIdempotentOverTheWholeCorpus() {
        let once = maskLines(SecretCorpus.lines("corpus.txt"), all)
        let twice = maskLines(once.lines, all)
        #expect(twice.changed == 0)
        #expect(twice.lines == once.lines)
        let benign = maskLines(SecretCorpus.lines("benign.txt"), all)
        #expect(maskLines(benign.lines, all).changed == 0)
    }

    @Test(arguments: [
        ("password=hunter2", "password=*******"),
        ("PASSWORD: hunter2 next", "PASSWORD: ******* next"),
        ("db.password = 'two words'", "db.password = '*********'"),
        (#"{"password":"a\"b"}"#, #"{"password":"****"}"#),
        ("passwd=x,user=y", "passwd=*,user=y"),
        ("user=bob pass=abc", "user=bob pass=***"),
        ("mysql_pwd=abc", "mysql_pwd=***"),
        ("Secret: s", "Secret: *"),
        ("x-auth-token: abc.def", "x-auth-token: *******"),
        ("refresh_token=r1&next=2", "refresh_token=**&next=2"),
        ("ApiKey=K1", "ApiKey=**"),
        ("credentials=(a)", "credentials=**)"),
        ("password=", "password="),
        ("password:   ", "password:   "),
    ])
    func passwords(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.passwords]).0 == expected)
    }

    @Test(arguments: [
        ("Authorization: Bearer abcdef0123456789", "Authorization: Bearer ****************"),
        ("bearer\tmF_9.B5f-4.1JqM;", "bearer\t" + stars(15) + ";"),
        ("Bearer authentication failed", "Bearer authentication failed"),
        ("Bearer short1", "Bearer short1"),
        ("unbearer abcdef0123456789", "unbearer abcdef0123456789"),
    ])
    func bearerTokens(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.bearerTokens]).0 == expected)
    }

    @Test(arguments: [
        ("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_1 ok", "t=" + stars(43) + " ok"),
        ("eyJhbGciOiJub25lIn0.eyJhIjoxfQ.", stars(31)),
        ("eyJhbGciOiJub25lIn0 alone", "eyJhbGciOiJub25lIn0 alone"),
        ("keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "keyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"),
    ])
    func jwts(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.jwts]).0 == expected)
    }

    @Test(arguments: [
        ("key AKIAIOSFODNN7EXAMPLE used", "key ******************** used"),
        ("id=ASIAY34FZKBOKMUTVV7A", "id=********************"),
        ("AKIAIOSFODNN7EXAMPLEX", "AKIAIOSFODNN7EXAMPLEX"),
        ("AKIAIOSFODNN7exampl", "AKIAIOSFODNN7exampl"),
        ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key=" + stars(21)),
    ])
    func awsKeys(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.awsKeys]).0 == expected)
    }

    @Test(arguments: [
        ("4111111111111111", "************1111"),
        ("card 4111 1111 1111 1111.", "card **** **** **** 1111."),
        ("5555-5555-5555-4444", "****-****-****-4444"),
        ("378282246310005", stars(11) + "0005"),
        ("3782 822463 10005", "**** ****** *0005"),
        ("30569309025904", stars(10) + "5904"),
        ("6011111111111117 12/27", "************1117 12/27"),
        ("4111111111111111 2025", "************1111 2025"),
        ("4111111111111112", "4111111111111112"),
        ("41111111111111110", "41111111111111110"),
        ("x4111111111111111", "x4111111111111111"),
        ("4111-1111 1111-1111", "4111-1111 1111-1111"),
        ("1744528522123", "1744528522123"),
        ("123456789012", "123456789012"),
    ])
    func cards(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.cards]).0 == expected)
    }

    @Test(arguments: [
        ("to john.doe@example.com.", "to ****.***@*******.***."),
        ("<a+b@mail.example.io>", "<***@****.*******.**>"),
        ("fatima@analytics-prod-03", "fatima@analytics-prod-03"),
        ("@example.com", "@example.com"),
        ("a@b.c", "a@b.c"),
        ("user@10.0.0.1", "user@10.0.0.1"),
    ])
    func emails(_ line: String, _ expected: String) {
        #expect(maskOne(line, [.emails]).0 == expected)
    }

    @Test func aPrivateKeyBlockIsMaskedAcrossLines() {
        let lines: [[UInt8]] = [
            "-----BEGIN EC PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "MHcCAQEEIBkg4LVWM9nuwNSk", "",
            "oAoGCCqGSM49AwEHoUQDQgAE==", "-----END EC PRIVATE KEY----- trailing text", "after password=x",
        ].map { Array($0.utf8) }
        let masked = maskLines(lines, SecretMasker(detectors: [.privateKeys, .passwords])).lines.map {
            String(decoding: $0, as: UTF8.self)
        }
        #expect(
            masked == [
                "-----BEGIN EC PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "************************", "",
                "**************************", "-----END EC PRIVATE KEY----- trailing text", "after password=*",
            ]
        )
    }

    @Test func aBlockCutShortEndsAtTheFirstLineThatIsNotBase64() {
        let lines: [[UInt8]] = [
            "-----BEGIN PRIVATE KEY-----", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "2025-04-13 07:20:24 UPLOAD INFO [App] restarted", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ].map { Array($0.utf8) }
        let masked = maskLines(lines, all).lines.map { String(decoding: $0, as: UTF8.self) }
        #expect(
            masked == [
                "-----BEGIN PRIVATE KEY-----", "********************************",
                "2025-04-13 07:20:24 UPLOAD INFO [App] restarted", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            ]
        )
    }

    @Test func aWholeBlockOnOneLineIsMaskedBetweenTheMarkers() {
        let (masked, changed) = maskOne("k=-----BEGIN RSA PRIVATE KEY-----AB CD-----END RSA PRIVATE KEY----- x=1")
        #expect(masked == "k=-----BEGIN RSA PRIVATE KEY-----** **-----END RSA PRIVATE KEY----- x=1")
        #expect(changed == 4)
    }

    @Test func invalidUTF8AndNULBytesAreKeptAndSecretsAroundThemMasked() {
        var bytes: [UInt8] = [0xFF, 0x00, 0xC3] + Array(" password=ab\u{0}c 4111111111111111 ".utf8) + [0xE2, 0x82]
        var state = SecretMasker.State()
        let changed = bytes.withUnsafeMutableBytes { all.mask($0, state: &state) }
        let expected: [UInt8] = [0xFF, 0x00, 0xC3] + Array(" password=**** ************1111 ".utf8) + [0xE2, 0x82]
        #expect(bytes == expected)
        #expect(changed == 4 + 12)
        #expect(!bytes.contains(UInt8(ascii: "\n")))
    }

    @Test func aLineOf64KiBIsScannedToItsEnd() {
        let tail = " token=abc 5555555555554444 x@example.com"
        var line = [UInt8](repeating: UInt8(ascii: "a"), count: 64 * 1024 - tail.utf8.count)
        line += Array(tail.utf8)
        var state = SecretMasker.State()
        let changed = line.withUnsafeMutableBytes { all.mask($0, state: &state) }
        #expect(changed == 3 + 12 + 11)
        #expect(line.suffix(40) == Array("token=*** ************4444 *@*******.***".utf8))
        #expect(line.count == 64 * 1024)
        // Digits in groups of 3 all the way: no card layout, nothing hangs.
        var digits = [UInt8](repeating: UInt8(ascii: "4"), count: 64 * 1024)
        for index in stride(from: 3, to: digits.count, by: 4) { digits[index] = UInt8(ascii: "-") }
        #expect(digits.withUnsafeMutableBytes { all.mask($0, state: &state) } == 0)
    }

    @Test func detectorsThatAreOffMaskNothing() {
        let corpus = SecretCorpus.lines("corpus.txt")
        #expect(maskLines(corpus, SecretMasker(detectors: [])).changed == 0)
        let onlyCards = maskLines(corpus, SecretMasker(detectors: [.cards])).lines
        for line in onlyCards {
            let text = String(decoding: line, as: UTF8.self)
            #expect(!text.contains("*") || text.contains("[Billing]") || text.contains("[Login]"), "\(text)")
        }
    }

    @Test func maskedCopiesForAlertText() {
        #expect(all.masked("login ok") == "login ok")
        #expect(all.masked("a password=x\nb 4111111111111111") == "a password=*\nb ************1111")
        #expect(all.masked("") == "")
    }
}
