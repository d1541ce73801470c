/// Built-in secret detectors of the `sanitize` action (and of every alert's text).
public enum SecretDetector: String, Sendable, CaseIterable, Hashable {
    /// `password=…`, `passwd: …`, `secret=…`, `api_key=…`, `"password": "…"` and the like: the value.
    case passwords
    /// `Bearer …` in an `Authorization` header or anywhere: the token.
    case bearerTokens = "bearer-tokens"
    /// JSON Web Tokens (`eyJ….eyJ….sig`).
    case jwts
    /// AWS access key ids (`AKIA…`, `ASIA…`) and `aws_secret_access_key` values.
    case awsKeys = "aws-keys"
    /// The body of `-----BEGIN … PRIVATE KEY-----` blocks, across lines.
    case privateKeys = "private-keys"
    /// Card numbers (13–19 digits, spaces or dashes between groups) that pass the Luhn check.
    case cards
    /// E-mail addresses.
    case emails
}
