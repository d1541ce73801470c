extension ConfigChange {
    /// This change with `old` and `new` replaced by `SecretKeys.mask` when `key` is secret; nil values stay
    /// nil, so an added or removed secret still shows as added or removed. Other changes are returned as is.
    public func masked() -> ConfigChange {
        guard SecretKeys.isSecret(key) else { return self }
        return ConfigChange(key: key, old: old.map(SecretKeys.mask), new: new.map(SecretKeys.mask))
    }
}
