/// What a YAML scalar means in a rule file. Only `true`/`false` (in three capitalisations) are booleans,
/// never `yes`/`no`/`on`/`off`; quoted, literal and folded scalars are always strings.
enum ScalarValue: Equatable {
    /// Empty, `~` or `null`, unquoted.
    case null
    /// `true`, `True`, `TRUE`, `false`, `False`, `FALSE`, unquoted.
    case bool(Bool)
    /// An unquoted decimal number (see `DecimalNumber`).
    case number(Double)
    /// Anything else.
    case string(String)
}
