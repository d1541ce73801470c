/// One `key = value` setting of a parsed config file.
///
/// Keys are compared case-insensitively: `key` is the lookup form (lowercased; `section.key` for keys
/// under a `[section]` header), `rawKey` is the spelling in the file.
public struct ConfigEntry: Sendable, Equatable {
    /// Lookup key: lowercased, `section.key` inside a `[section]`, plain `key` before any section.
    public var key: String
    /// The key as written in the file (without the section).
    public var rawKey: String
    /// The value with surrounding blanks, quotes and any inline comment removed.
    public var value: String
    /// 1-based line number of the setting in the file.
    public var line: Int

    public init(key: String, rawKey: String, value: String, line: Int) {
        self.key = key
        self.rawKey = rawKey
        self.value = value
        self.line = line
    }
}

/// A line of a config file that is not a setting, a comment, a section header or blank.
public struct ConfigIssue: Sendable, Equatable {
    /// 1-based line number.
    public var line: Int
    /// What is wrong with it, e.g. "no '=' in line".
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// The parsed content of one config file at one moment.
///
/// A later definition of the same key wins, as in most `key = value` readers.
public struct ConfigSnapshot: Sendable, Equatable {
    /// Settings by lookup key (see `ConfigEntry.key`).
    public var entries: [String: ConfigEntry]
    /// Lines that could not be understood; they are reported, never guessed at.
    public var issues: [ConfigIssue]

    public init(entries: [String: ConfigEntry] = [:], issues: [ConfigIssue] = []) {
        self.entries = entries
        self.issues = issues
    }

    /// The value of `key` (case-insensitive; `section.key` for keys in a section), or nil when absent. A bare
    /// key with no top-level setting names the first (by line) setting of that name in any section.
    public func value(forKey key: String) -> String? {
        values(forKey: key).first
    }

    /// Every value a rule's key names, in file order: `section.key` names one setting; a bare `key` names
    /// the top-level setting, or, when there is none, the settings of that name in every section (so a rule on
    /// `verify_ssl` still sees it after someone adds an `[upload]` header above it).
    public func values(forKey key: String) -> [String] {
        let lookup = key.lowercased()
        if let entry = entries[lookup] { return [entry.value] }
        guard !lookup.contains(".") else { return [] }
        let suffix = "." + lookup
        return entries.values.filter { $0.key.hasSuffix(suffix) }.sorted { $0.line < $1.line }.map(\.value)
    }
}

/// One key whose value differs between two snapshots. `old` is nil for an added key, `new` for a removed one.
public struct ConfigChange: Sendable, Equatable {
    public var key: String
    public var old: String?
    public var new: String?

    public init(key: String, old: String?, new: String?) {
        self.key = key
        self.old = old
        self.new = new
    }
}
