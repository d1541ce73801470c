import VigilSystem

/// The secret-masking fixtures in `Tests/Fixtures/secrets/`, shared by the masker's unit tests and the
/// end-to-end sanitize tests: `corpus.txt` (log lines with secrets of every detector, several spellings each,
/// a private key across lines), `corpus.masked.txt` (the same lines as `SecretMasker` with every detector must
/// leave them) and `benign.txt` (lines that must not change).
public enum SecretCorpus {
    /// `Tests/Fixtures/secrets`, from this file's path.
    public static let directory: String = {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(3)  // Sources/VigilTestSupport/SecretCorpus.swift
        return parts.joined(separator: "/") + "/Tests/Fixtures/secrets"
    }()

    /// The path of fixture `name` (`corpus.txt`, `corpus.masked.txt`, `benign.txt`).
    public static func path(_ name: String) -> String { directory + "/" + name }

    /// The bytes of fixture `name`; traps when it cannot be read (a broken checkout).
    public static func bytes(_ name: String) -> [UInt8] {
        guard case .content(let bytes, _) = WholeFileReader.read(path(name), limit: 1 << 20) else {
            fatalError("Cannot read the fixture '\(path(name))'")
        }
        return bytes
    }

    /// The lines of fixture `name` (split on `\n`, without them; no empty last line).
    public static func lines(_ name: String) -> [[UInt8]] {
        var lines = bytes(name).split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map(Array.init)
        if lines.last?.isEmpty == true { lines.removeLast() }
        return lines
    }
}
