/// What `ConfigParser.parse` made of a file: a snapshot, or the reason the bytes are not a text config.
public enum ConfigParseResult: Sendable, Equatable {
    /// The file is text; its settings and any lines that could not be understood.
    case snapshot(ConfigSnapshot)
    /// The file is not a `key = value` text config (it holds a NUL byte or ill-formed UTF-8). The reason
    /// names the offset, e.g. "contains a NUL byte at offset 12; it looks binary, not a key = value config".
    case rejected(String)

    /// The snapshot, or nil when the content was rejected.
    public var snapshot: ConfigSnapshot? {
        if case .snapshot(let snapshot) = self { return snapshot }
        return nil
    }

    /// The rejection reason, or nil when the content parsed.
    public var rejectionReason: String? {
        if case .rejected(let reason) = self { return reason }
        return nil
    }
}
