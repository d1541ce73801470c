/// Decides which config keys hold secrets, and masks their values before they leave the process
/// (alerts, logs, webhooks).
///
/// The test is deliberately generous: masking a harmless value costs a little context, leaking a password
/// costs a rotation. Matching is ASCII case-insensitive and works on the key's bytes.
public enum SecretKeys {
    /// What every secret value is replaced with. Constant, so the mask never reveals the value's length.
    public static let maskedValue = "****"

    /// Fragments that make a key secret wherever they appear in it: `db_password`, `MYSQLPASSWD`,
    /// `client_secret`, `x-auth-token`, `oauth_client`, `session_cookie`, `credentials_file`.
    /// `auth` also matches `author`: acceptable, see the type's summary.
    private static let fragments: [[UInt8]] = [
        "password", "passwd", "pwd", "passphrase", "secret", "token", "credential", "auth", "cookie", "session",
    ].map { Array($0.utf8) }

    /// Words (between `.`, `_`, `-`) that are secret only as whole words, since as fragments they would
    /// match ordinary words (`pass` in `passive`).
    private static let words: [[UInt8]] = ["key", "keys", "pass", "pin"].map { Array($0.utf8) }

    /// Prefixes that make a word ending in `key`/`keys` secret (`apikey`, `privatekey`, `accesskeys`), while
    /// `monkey`, `turnkey` and `hotkey` stay plain. `keyboard` never matches: it does not end in `key`.
    private static let keyQualifiers: [[UInt8]] = [
        "api", "private", "secret", "access", "signing", "sign", "encryption", "crypt", "master", "ssh",
        "client", "app", "license", "licence", "session", "auth", "hmac", "aes", "rsa", "gpg", "pgp", "shared",
        "service", "account", "admin", "root", "enc", "tls", "ssl",
    ].map { Array($0.utf8) }

    /// True when `key` names a secret (case-insensitive): any of its `.`/`_`/`-` separated words, or the
    /// whole key, contains password, passwd, pwd, passphrase, secret, token, credential, auth, cookie or
    /// session; or a word is `key`, `keys`, `pass` or `pin`; or a word is a qualifier glued to `key`
    /// (`apikey`, `privatekey`). `keyboard_layout` and `monkey` are not secret.
    public static func isSecret(_ key: String) -> Bool {
        var lowered: [UInt8] = []
        lowered.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            lowered.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
        }
        for fragment in fragments where contains(lowered, fragment) {
            return true
        }
        var start = 0
        while start <= lowered.count {
            var end = start
            while end < lowered.count && !isSeparator(lowered[end]) { end += 1 }
            if isSecretWord(lowered[start..<end]) { return true }
            start = end + 1
        }
        return false
    }

    /// Returns the mask for a secret value: always `"****"`, whatever the value, so not even its length
    /// or emptiness is revealed.
    public static func mask(_ value: String) -> String {
        maskedValue
    }

    /// True for the bytes that separate words in a key.
    private static func isSeparator(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: " ")
    }

    /// True when one lowercased word is secret on its own (see `words` and `keyQualifiers`).
    private static func isSecretWord(_ word: ArraySlice<UInt8>) -> Bool {
        if words.contains(where: { word.elementsEqual($0) }) { return true }
        for suffix in [Array("key".utf8), Array("keys".utf8)] where word.count > suffix.count {
            guard word.suffix(suffix.count).elementsEqual(suffix) else { continue }
            let prefix = word.prefix(word.count - suffix.count)
            if keyQualifiers.contains(where: { prefix.elementsEqual($0) }) { return true }
        }
        return false
    }

    /// True when `needle` occurs in `haystack`.
    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        var start = 0
        while start + needle.count <= haystack.count {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
            start += 1
        }
        return false
    }
}
