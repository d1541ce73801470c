/// Masks secrets in log lines with same-length replacements (`*`), byte by byte: the `sanitize` action writes
/// the result over the bytes already in the file (size, inode and writers' offsets stay unchanged), and alert
/// text goes through it too.
///
/// Hand-written scanners, not regular expressions: one pass over the line with a 256-entry table that marks
/// the few bytes where a secret can start or be announced (`=`, `:`, `@`, a digit, `e` of `eyJ`, `A` of `AKIA`,
/// `b` of `Bearer`, `-` of `-----BEGIN`); every other byte costs one table lookup. Pure: no I/O, no
/// Foundation, no allocation in `mask`.
///
/// Every replacement turns bytes into `*`, and no detector matches its own masked output (a masked card keeps
/// only 4 digits, a masked e-mail keeps no letter or digit, a masked value is all `*`), so masking is
/// idempotent: a second pass changes nothing.
public struct SecretMasker: Sendable {
    /// The detectors in use.
    public let detectors: Set<SecretDetector>
    /// Byte → what to try at it (`Trigger` raw values; 0: nothing). Only bytes of enabled detectors are set.
    private let table: [UInt8]
    private let passwords: Bool
    private let awsKeys: Bool
    private let privateKeys: Bool

    /// A masker with the given detectors (an empty set masks nothing).
    public init(detectors: Set<SecretDetector>) {
        self.detectors = detectors
        passwords = detectors.contains(.passwords)
        awsKeys = detectors.contains(.awsKeys)
        privateKeys = detectors.contains(.privateKeys)
        var table = [UInt8](repeating: 0, count: 256)
        if passwords || awsKeys {
            table[Int(UInt8(ascii: "="))] = Trigger.separator.rawValue
            table[Int(UInt8(ascii: ":"))] = Trigger.separator.rawValue
        }
        if detectors.contains(.emails) { table[Int(UInt8(ascii: "@"))] = Trigger.at.rawValue }
        if detectors.contains(.cards) {
            for digit in UInt8(ascii: "2")...UInt8(ascii: "6") { table[Int(digit)] = Trigger.digit.rawValue }
        }
        if detectors.contains(.jwts) { table[Int(UInt8(ascii: "e"))] = Trigger.jwt.rawValue }
        if awsKeys { table[Int(UInt8(ascii: "A"))] = Trigger.awsKeyID.rawValue }
        if detectors.contains(.bearerTokens) {
            table[Int(UInt8(ascii: "b"))] = Trigger.bearer.rawValue
            table[Int(UInt8(ascii: "B"))] = Trigger.bearer.rawValue
        }
        if privateKeys { table[Int(UInt8(ascii: "-"))] = Trigger.dashes.rawValue }
        self.table = table
    }

    /// Per-file state carried across lines (inside a private-key block).
    public struct State: Sendable {
        /// Between a `-----BEGIN … PRIVATE KEY-----` line and its `-----END … PRIVATE KEY-----`.
        var inPrivateKey = false

        public init() {}
    }

    /// Masks every secret in `line` (one log line, without its newline) in place, with same-length
    /// replacements; returns the number of bytes it changed (0: the line is clean or already masked).
    /// Idempotent; never writes a newline; invalid UTF-8 and NUL bytes are fine. Allocates nothing.
    public func mask(_ line: UnsafeMutableRawBufferPointer, state: inout State) -> Int {
        guard let base = line.baseAddress, line.count > 0 else { return 0 }
        return table.withUnsafeBufferPointer { table in
            var scan = MaskScan(bytes: base.assumingMemoryBound(to: UInt8.self), count: line.count)
            var start = 0
            if state.inPrivateKey {
                if !privateKeys {
                    state.inPrivateKey = false
                } else {
                    start = scan.continuePrivateKey(inKey: &state.inPrivateKey)
                }
            }
            scan.run(from: start, table: table, passwords: passwords, awsKeys: awsKeys, state: &state)
            return scan.changed
        }
    }

    /// A masked copy of `text` (cold paths: alert text). Lines are masked one by one, with one state.
    public func masked(_ text: String) -> String {
        var bytes = Array(text.utf8)
        var state = State()
        let changed = bytes.withUnsafeMutableBytes { buffer in
            var changed = 0
            var start = 0
            for index in 0...buffer.count where index == buffer.count || buffer[index] == UInt8(ascii: "\n") {
                changed += mask(UnsafeMutableRawBufferPointer(rebasing: buffer[start..<index]), state: &state)
                start = index + 1
            }
            return changed
        }
        return changed == 0 ? text : String(decoding: bytes, as: UTF8.self)
    }
}

/// What the byte table says to try at a position.
private enum Trigger: UInt8 {
    /// `=` or `:` after a secret key (`password=`, `"token": "…"`, `aws_secret_access_key =`).
    case separator = 1
    /// `@` of an e-mail address.
    case at
    /// The first digit of a card number (issuers start with 2–6).
    case digit
    /// `e` of `eyJ`, a JSON Web Token.
    case jwt
    /// `A` of `AKIA…`/`ASIA…`.
    case awsKeyID
    /// `b`/`B` of `Bearer`.
    case bearer
    /// `-` of `-----BEGIN … PRIVATE KEY-----`.
    case dashes
}

/// Byte classes, as functions the optimiser inlines.
@inline(__always) private func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }
@inline(__always) private func isUpper(_ byte: UInt8) -> Bool { byte &- 0x41 < 26 }
@inline(__always) private func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- 0x61 < 26 }
@inline(__always) private func isAlphanumeric(_ byte: UInt8) -> Bool { isDigit(byte) || isLetter(byte) }
@inline(__always) private func lowered(_ byte: UInt8) -> UInt8 { isUpper(byte) ? byte | 0x20 : byte }
/// base64url: letters, digits, `-`, `_`.
@inline(__always) private func isBase64URL(_ byte: UInt8) -> Bool {
    isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
}
@inline(__always) private func isBlank(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 }

private let star = UInt8(ascii: "*")

/// Key suffixes (lowercase) whose values are secrets, with the detector that owns them. `whole`: only as the
/// whole key or after `_`, `-`, `.` (`pass=`, not `bypass=`).
private struct SecretKey {
    let bytes: [UInt8]
    let whole: Bool
    let aws: Bool

    init(_ text: String, whole: Bool = false, aws: Bool = false) {
        bytes = Array(text.utf8)
        self.whole = whole
        self.aws = aws
    }
}

/// `password`, `db_password`, `client_secret`, `x-auth-token`, `apiKey`, `aws_secret_access_key`…
private let secretKeys: [SecretKey] = [
    SecretKey("password"), SecretKey("passwd"), SecretKey("passphrase"), SecretKey("pwd", whole: true),
    SecretKey("pass", whole: true), SecretKey("secret"), SecretKey("token"), SecretKey("apikey"),
    SecretKey("api_key"), SecretKey("api-key"), SecretKey("secret_key"), SecretKey("secretkey"),
    SecretKey("private_key"), SecretKey("credentials"), SecretKey("credential"),
    SecretKey("secret_access_key", aws: true), SecretKey("secretaccesskey", aws: true),
]

/// The scan of one line. `changed` counts bytes turned into `*`.
private struct MaskScan {
    let bytes: UnsafeMutablePointer<UInt8>
    let count: Int
    var changed = 0
    /// A key's value to mask once the scanners have looked inside it (a card with spaces in `password: 4111
    /// 1111 …` must be masked as a card, not left after the value's first space).
    var pendingStart = 0
    var pendingEnd = 0

    init(bytes: UnsafeMutablePointer<UInt8>, count: Int) {
        self.bytes = bytes
        self.count = count
    }

    @inline(__always) mutating func mask(_ index: Int) {
        if bytes[index] != star {
            bytes[index] = star
            changed += 1
        }
    }

    mutating func mask(_ start: Int, _ end: Int) {
        var index = start
        while index < end {
            mask(index)
            index += 1
        }
    }

    /// Masks `start..<end` except blanks and carriage returns (private-key bodies keep their layout).
    mutating func maskNonBlank(_ start: Int, _ end: Int) {
        var index = start
        while index < end {
            if !isBlank(bytes[index]) && bytes[index] != 0x0D { mask(index) }
            index += 1
        }
    }

    mutating func flushPending() {
        if pendingEnd > pendingStart { mask(pendingStart, pendingEnd) }
        pendingStart = 0
        pendingEnd = 0
    }

    /// Whether `literal` (ASCII, compared case-sensitively) is at `index`.
    @inline(__always) func has(_ literal: StaticString, at index: Int) -> Bool {
        let length = literal.utf8CodeUnitCount
        guard index >= 0, count - index >= length else { return false }
        let pointer = literal.utf8Start
        for offset in 0..<length where bytes[index + offset] != pointer[offset] { return false }
        return true
    }

    /// The first index ≥ `from` where `literal` starts, or nil.
    func find(_ literal: StaticString, from: Int) -> Int? {
        let length = literal.utf8CodeUnitCount
        guard length > 0 else { return from }
        let first = literal.utf8Start[0]
        var index = from
        while index + length <= count {
            if bytes[index] == first && has(literal, at: index) { return index }
            index += 1
        }
        return nil
    }

    // MARK: The pass

    mutating func run(
        from start: Int,
        table: UnsafeBufferPointer<UInt8>,
        passwords: Bool,
        awsKeys: Bool,
        state: inout SecretMasker.State
    ) {
        var index = start
        while index < count {
            let trigger = table[Int(bytes[index])]
            if trigger == 0 {
                index += 1
                continue
            }
            switch Trigger(rawValue: trigger) {
            case .separator: index = keyValue(at: index, passwords: passwords, awsKeys: awsKeys)
            case .at: index = email(at: index)
            case .digit: index = card(at: index)
            case .jwt: index = jwt(at: index)
            case .awsKeyID: index = awsKeyID(at: index)
            case .bearer: index = bearer(at: index)
            case .dashes: index = privateKeyBegin(at: index, state: &state)
            case nil: index += 1
            }
        }
        flushPending()
    }

    // MARK: key=value, key: value, "key": "value"

    /// At `=` or `:`: when the key before it names a secret, the value after it becomes pending. Returns where
    /// to continue: the value's start, so the other scanners look inside it first.
    mutating func keyValue(at separator: Int, passwords: Bool, awsKeys: Bool) -> Int {
        // The key: back over blanks and one closing quote, then key bytes.
        var end = separator
        while end > 0 && isBlank(bytes[end - 1]) { end -= 1 }
        if end > 0 && (bytes[end - 1] == UInt8(ascii: "\"") || bytes[end - 1] == UInt8(ascii: "'")) { end -= 1 }
        // Every key ends in a letter: rejects `07:15`, `a = 1` and `==` at once.
        guard end > 0, isLetter(bytes[end - 1]) else { return separator + 1 }
        var start = end
        while start > 0 {
            let byte = bytes[start - 1]
            guard
                isAlphanumeric(byte) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
                    || byte == UInt8(ascii: ".")
            else { break }
            start -= 1
        }
        guard isSecretKey(start, end, passwords: passwords, awsKeys: awsKeys) else { return separator + 1 }
        // The value: after blanks; quoted to its closing quote (backslash escapes), else to a delimiter.
        var valueStart = separator + 1
        // `key: value`, `key = value`.
        while valueStart < count && isBlank(bytes[valueStart]) { valueStart += 1 }
        guard valueStart < count else { return count }
        var valueEnd: Int
        let opening = bytes[valueStart]
        if opening == UInt8(ascii: "\"") || opening == UInt8(ascii: "'") {
            valueStart += 1
            valueEnd = valueStart
            while valueEnd < count && bytes[valueEnd] != opening {
                valueEnd += bytes[valueEnd] == UInt8(ascii: "\\") ? 2 : 1
            }
            valueEnd = min(valueEnd, count)
        } else {
            valueEnd = valueStart
            while valueEnd < count && !isValueDelimiter(bytes[valueEnd]) { valueEnd += 1 }
        }
        guard valueEnd > valueStart else { return valueStart }
        flushPending()
        pendingStart = valueStart
        pendingEnd = valueEnd
        return valueStart
    }

    /// Bytes that end an unquoted value: blanks and the punctuation that separates fields in logs and URLs.
    @inline(__always) func isValueDelimiter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x20, 0x09, UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "&"), UInt8(ascii: "\""),
            UInt8(ascii: "'"), UInt8(ascii: ")"), UInt8(ascii: "}"), UInt8(ascii: "]"):
            true
        default: false
        }
    }

    /// Whether `start..<end` ends with a secret key suffix (ASCII case-insensitive).
    func isSecretKey(_ start: Int, _ end: Int, passwords: Bool, awsKeys: Bool) -> Bool {
        let length = end - start
        for key in secretKeys {
            guard key.aws ? awsKeys : passwords else { continue }
            let keyLength = key.bytes.count
            guard keyLength <= length else { continue }
            let from = end - keyLength
            var equal = true
            for offset in 0..<keyLength where lowered(bytes[from + offset]) != key.bytes[offset] {
                equal = false
                break
            }
            guard equal else { continue }
            if key.whole && from > start {
                let before = bytes[from - 1]
                guard before == UInt8(ascii: "_") || before == UInt8(ascii: "-") || before == UInt8(ascii: ".")
                else { continue }
            }
            return true
        }
        return false
    }

    // MARK: e-mail

    /// At `@`: `local@domain.tld` masks everything but `@` and the dots.
    mutating func email(at sign: Int) -> Int {
        var start = sign
        while start > 0 && isLocalPart(bytes[start - 1]) { start -= 1 }
        // The local part needs a letter or digit (a masked address has none) and cannot start with a dot.
        while start < sign && bytes[start] == UInt8(ascii: ".") { start += 1 }
        var hasAlphanumeric = false
        for index in start..<sign where isAlphanumeric(bytes[index]) {
            hasAlphanumeric = true
            break
        }
        guard hasAlphanumeric else { return sign + 1 }
        // The domain: labels of letters, digits and `-`, two or more, the last of letters only (2+).
        var index = sign + 1
        var labels = 0
        var lastLabelStart = index
        var lastLabelLettersOnly = true
        var end = sign + 1
        while index < count {
            let labelStart = index
            var lettersOnly = true
            while index < count && (isAlphanumeric(bytes[index]) || bytes[index] == UInt8(ascii: "-")) {
                if !isLetter(bytes[index]) { lettersOnly = false }
                index += 1
            }
            guard index > labelStart else { break }
            labels += 1
            lastLabelStart = labelStart
            lastLabelLettersOnly = lettersOnly
            end = index
            guard index + 1 < count, bytes[index] == UInt8(ascii: "."), isAlphanumeric(bytes[index + 1]) else { break }
            index += 1
        }
        guard labels >= 2, lastLabelLettersOnly, end - lastLabelStart >= 2 else { return sign + 1 }
        for position in start..<end where position != sign && bytes[position] != UInt8(ascii: ".") {
            mask(position)
        }
        return end
    }

    @inline(__always) func isLocalPart(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "%")
            || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
    }

    // MARK: Card numbers

    /// At a digit 2–6 that starts a number: 13–19 digits, optionally in groups separated by one space or
    /// dash (4-4-4-4[-3], 4-6-5, 4-6-4), passing Luhn, become `*` except the last 4 digits.
    mutating func card(at start: Int) -> Int {
        if start > 0 && isAlphanumeric(bytes[start - 1]) { return start + 1 }
        // Up to 8 groups; their lengths packed in a byte each (no allocation). A group ends where a single
        // separator (the same one throughout) is followed by a digit; the run stops after 19 digits.
        var lengths: UInt64 = 0
        var groups = 0
        var digits = 0
        var index = start
        var separator: UInt8 = 0
        while groups < 8 {
            let groupStart = index
            while index < count && isDigit(bytes[index]) && digits <= 19 {
                index += 1
                digits += 1
            }
            lengths |= UInt64(index - groupStart) << UInt64(8 * groups)
            groups += 1
            guard digits <= 19, index + 1 < count else { break }
            let next = bytes[index]
            guard next == UInt8(ascii: " ") || next == UInt8(ascii: "-"), isDigit(bytes[index + 1]) else { break }
            if separator == 0 {
                separator = next
            } else if next != separator {
                break
            }
            index += 1
        }
        // The longest prefix of whole groups that forms a card number.
        var taken = groups
        while taken > 0 {
            var end = start + taken - 1
            for group in 0..<taken { end += Int((lengths >> UInt64(8 * group)) & 0xFF) }
            if (end >= count || !isAlphanumeric(bytes[end])) && Self.isCardLayout(lengths, groups: taken)
                && luhn(start, end)
            {
                maskCard(start, end)
                return end
            }
            taken -= 1
        }
        // No card starts inside this run of digits.
        var skip = start
        while skip < count && isDigit(bytes[skip]) { skip += 1 }
        return skip
    }

    /// Whether the first `groups` group lengths (a byte each in `lengths`) are a card layout of 13–19
    /// digits: one group, 4-4-…-(1…4), 4-6-5 (American Express) or 4-6-4 (Diners Club).
    static func isCardLayout(_ lengths: UInt64, groups: Int) -> Bool {
        func length(_ group: Int) -> Int { Int((lengths >> UInt64(8 * group)) & 0xFF) }
        var total = 0
        for group in 0..<groups { total += length(group) }
        guard total >= 13 && total <= 19 else { return false }
        if groups == 1 { return true }
        if groups == 3 && length(0) == 4 && length(1) == 6 && (length(2) == 5 || length(2) == 4) { return true }
        for group in 0..<(groups - 1) where length(group) != 4 { return false }
        return length(groups - 1) >= 1 && length(groups - 1) <= 4
    }

    /// The Luhn check over the digits in `start..<end` (separators skipped); issuers' first digits are 2–6.
    func luhn(_ start: Int, _ end: Int) -> Bool {
        var sum = 0
        var double = false
        var index = end - 1
        while index >= start {
            let byte = bytes[index]
            if isDigit(byte) {
                var value = Int(byte &- 0x30)
                if double {
                    value *= 2
                    if value > 9 { value -= 9 }
                }
                sum += value
                double.toggle()
            }
            index -= 1
        }
        return sum % 10 == 0
    }

    /// Masks every digit of `start..<end` but the last 4 (a masked card keeps 4 digits: never a card again).
    mutating func maskCard(_ start: Int, _ end: Int) {
        var kept = 0
        var index = end - 1
        while index >= start {
            if isDigit(bytes[index]) {
                if kept < 4 { kept += 1 } else { mask(index) }
            }
            index -= 1
        }
    }

    // MARK: JSON Web Tokens

    /// At `e`: `eyJ…` `.` `…` `.` `…` in base64url (header of 10+ bytes, payload of 2+, signature may be
    /// empty for `alg: none`) is masked whole.
    mutating func jwt(at start: Int) -> Int {
        guard start + 2 < count, bytes[start + 1] == UInt8(ascii: "y"), bytes[start + 2] == UInt8(ascii: "J"),
            start == 0 || !isBase64URL(bytes[start - 1])
        else { return start + 1 }
        var index = start
        var segmentLengths = (0, 0)
        for segment in 0..<3 {
            let segmentStart = index
            while index < count && isBase64URL(bytes[index]) { index += 1 }
            let length = index - segmentStart
            if segment == 0 { segmentLengths.0 = length }
            if segment == 1 { segmentLengths.1 = length }
            if segment < 2 {
                guard index < count, bytes[index] == UInt8(ascii: ".") else { return max(index, start + 1) }
                index += 1
            }
        }
        guard segmentLengths.0 >= 10, segmentLengths.1 >= 2 else { return index }
        mask(start, index)
        return index
    }

    // MARK: AWS access key ids

    /// At `A`: `AKIA`, `ASIA` (and the other IAM unique-id prefixes) + 16 upper-case letters or digits.
    mutating func awsKeyID(at start: Int) -> Int {
        guard start + 20 <= count, start == 0 || !isAlphanumeric(bytes[start - 1]) else { return start + 1 }
        guard
            has("AKIA", at: start) || has("ASIA", at: start) || has("AIDA", at: start) || has("AROA", at: start)
                || has("AGPA", at: start) || has("ANPA", at: start) || has("AIPA", at: start)
        else { return start + 1 }
        for index in (start + 4)..<(start + 20) {
            let byte = bytes[index]
            guard isUpper(byte) || isDigit(byte) else { return start + 1 }
        }
        guard start + 20 == count || !isAlphanumeric(bytes[start + 20]) else { return start + 1 }
        mask(start, start + 20)
        return start + 20
    }

    // MARK: Bearer tokens

    /// At `b`/`B`: `Bearer` (any case) + blanks + a token of 8+ token bytes with a digit or punctuation (so
    /// that `Bearer authentication failed` stays).
    mutating func bearer(at start: Int) -> Int {
        guard start + 7 < count, start == 0 || !isAlphanumeric(bytes[start - 1]) else { return start + 1 }
        let word: StaticString = "earer"
        for offset in 0..<5 where lowered(bytes[start + 1 + offset]) != word.utf8Start[offset] { return start + 1 }
        var tokenStart = start + 6
        guard isBlank(bytes[tokenStart]) else { return start + 1 }
        while tokenStart < count && isBlank(bytes[tokenStart]) { tokenStart += 1 }
        var end = tokenStart
        var hasNonLetter = false
        while end < count && isTokenByte(bytes[end]) {
            if !isLetter(bytes[end]) { hasNonLetter = true }
            end += 1
        }
        guard end - tokenStart >= 8, hasNonLetter else { return tokenStart }
        mask(tokenStart, end)
        return end
    }

    /// RFC 6750 `b64token` bytes: letters, digits, `-._~+/` and trailing `=`.
    @inline(__always) func isTokenByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "~") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
            || byte == UInt8(ascii: "=")
    }

    // MARK: Private keys

    /// The end of `-----BEGIN … PRIVATE KEY-----` or `-----END … PRIVATE KEY-----` starting at `start`
    /// (`marker` is `-----BEGIN ` or `-----END `), or nil.
    func privateKeyMarkerEnd(_ marker: StaticString, at start: Int) -> Int? {
        guard has(marker, at: start) else { return nil }
        // The label is short (`RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`).
        var index = start + marker.utf8CodeUnitCount
        let limit = min(count, index + 40)
        while index < limit {
            if bytes[index] == UInt8(ascii: "P") && has("PRIVATE KEY-----", at: index) { return index + 16 }
            if bytes[index] == UInt8(ascii: "-") { return nil }
            index += 1
        }
        return nil
    }

    /// At `-`: a `BEGIN` marker masks the rest of the line up to an `END` marker on the same line, or opens a
    /// block that continues on the following lines.
    mutating func privateKeyBegin(at start: Int, state: inout SecretMasker.State) -> Int {
        guard let bodyStart = privateKeyMarkerEnd("-----BEGIN ", at: start) else { return start + 1 }
        var index = bodyStart
        while let dashes = find("-----END ", from: index) {
            if let end = privateKeyMarkerEnd("-----END ", at: dashes) {
                maskNonBlank(bodyStart, dashes)
                return end
            }
            index = dashes + 1
        }
        maskNonBlank(bodyStart, count)
        state.inPrivateKey = true
        return count
    }

    /// A line inside a private-key block: up to an `END` marker it is masked and the block ends; a body line
    /// (base64, PEM headers, blank) is masked and the block goes on; any other line ends the block unmasked (a
    /// block cut short must not swallow the rest of the log). Returns where the normal scan resumes.
    mutating func continuePrivateKey(inKey: inout Bool) -> Int {
        var index = 0
        while let dashes = find("-----END ", from: index) {
            if let end = privateKeyMarkerEnd("-----END ", at: dashes) {
                maskNonBlank(0, dashes)
                inKey = false
                return end
            }
            index = dashes + 1
        }
        if has("Proc-Type:", at: 0) || has("DEK-Info:", at: 0) { return count }
        for offset in 0..<count {
            let byte = bytes[offset]
            guard
                isAlphanumeric(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/")
                    || byte == UInt8(ascii: "=") || byte == star || isBlank(byte) || byte == 0x0D
            else {
                inKey = false
                return 0
            }
        }
        maskNonBlank(0, count)
        return count
    }
}
