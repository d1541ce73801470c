import Testing
import VigilCore

/// Which keys count as secret, and how values are masked.
@Suite struct SecretKeysTests {
    /// Keys that must be masked, in the spellings config files use.
    @Test(arguments: [
        "db_password", "DB_PASSWORD", "API_KEY", "api_key", "apikey", "apiKey", "private_key", "key", "token",
        "auth_token", "x-auth-token", "client_secret", "secrets.file", "mysql.passwd", "pwd", "smtp_pass",
        "credentials", "session_cookie", "oauth_client_id", "database.key", "ssh-keys", "privatekey",
        "upload.access_key", "passphrase", "SessionTimeout",
    ])
    func secretKeys(key: String) {
        #expect(SecretKeys.isSecret(key))
    }

    /// Keys that must stay readable in alerts.
    @Test(arguments: [
        "keyboard_layout", "monkey", "monkey_count", "hotkey", "api_url", "verify_ssl", "metrics_url",
        "passive_mode", "keyboard", "host", "port", "log.level", "turnkey_mode", "", "keyword",
    ])
    func plainKeys(key: String) {
        #expect(!SecretKeys.isSecret(key))
    }

    /// The mask is a constant: it hides the length and even emptiness of the value.
    @Test func maskIsConstant() {
        #expect(SecretKeys.mask("hunter2") == "****")
        #expect(SecretKeys.mask("") == "****")
        #expect(SecretKeys.mask(String(repeating: "x", count: 100)) == "****")
    }

    /// A secret change keeps its shape (added/removed/changed) with both values masked.
    @Test func maskedChange() {
        #expect(
            ConfigChange(key: "db_password", old: "old-secret", new: "new-secret").masked()
                == ConfigChange(key: "db_password", old: "****", new: "****")
        )
        #expect(
            ConfigChange(key: "api.token", old: nil, new: "t0k3n").masked()
                == ConfigChange(key: "api.token", old: nil, new: "****")
        )
        #expect(
            ConfigChange(key: "API_KEY", old: "k", new: nil).masked()
                == ConfigChange(key: "API_KEY", old: "****", new: nil)
        )
    }

    /// Plain changes pass through untouched.
    @Test func plainChangeIsUnchanged() {
        let change = ConfigChange(key: "verify_ssl", old: "true", new: "false")
        #expect(change.masked() == change)
    }

    /// The seed scenario: a diff of a config that also holds a password masks only the password.
    @Test func diffThenMask() {
        guard case .snapshot(let old) = ConfigParser.parse("verify_ssl = true\ndb_password = a\n"),
            case .snapshot(let new) = ConfigParser.parse("verify_ssl = false\ndb_password = b\n")
        else {
            Issue.record("parse failed")
            return
        }
        #expect(
            new.changes(from: old).map { $0.masked() } == [
                ConfigChange(key: "db_password", old: "****", new: "****"),
                ConfigChange(key: "verify_ssl", old: "true", new: "false"),
            ]
        )
    }
}
