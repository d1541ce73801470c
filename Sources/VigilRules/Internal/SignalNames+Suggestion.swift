import VigilCore

extension SignalNames {
    /// The names offered as spelling suggestions.
    static var suggestionNames: [String] { standard.map(\.name) + ["RTMIN", "RTMAX"] }

    /// The signal name without `SIG` written in a suggestion for `text` (`'HUPP'` → `HUP`), if one is close.
    static func suggestion(for text: String) -> String? {
        var name = Substring(text.uppercased())
        if name.hasPrefix("SIG") { name = name.dropFirst(3) }
        guard let suggestion = Spelling.suggestion(for: String(name), among: suggestionNames) else { return nil }
        return text.uppercased().hasPrefix("SIG") ? "SIG" + suggestion : suggestion
    }
}
