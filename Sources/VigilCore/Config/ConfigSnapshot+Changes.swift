extension ConfigSnapshot {
    /// The keys whose values differ from `old`: added keys (`old` nil), removed keys (`new` nil) and changed
    /// values, sorted by key in byte order so an alert's diff is stable from run to run.
    ///
    /// Values are compared as parsed, so a comment or quoting change alone is not a change. Values are not
    /// masked here; mask them with `ConfigChange.masked()` before they leave the process.
    public func changes(from old: ConfigSnapshot) -> [ConfigChange] {
        var result: [ConfigChange] = []
        for (key, entry) in entries {
            let previous = old.entries[key]?.value
            if previous != entry.value {
                result.append(ConfigChange(key: key, old: previous, new: entry.value))
            }
        }
        for (key, entry) in old.entries where entries[key] == nil {
            result.append(ConfigChange(key: key, old: entry.value, new: nil))
        }
        result.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        return result
    }
}
