import Glibc

/// Reads rule files from disk with plain libc calls (this module does not use Foundation).
enum RuleSourceReader {
    /// Rule files larger than this are refused: a rule file that big is a mistake or an attack.
    static let maximumSize = 4 * 1024 * 1024

    /// A file to compile, or why a path yields none.
    enum Entry {
        /// A readable, plausible rule file.
        case source(file: String, text: String)
        /// A whole-file problem, reported as `PATH: error: MESSAGE`.
        case failure(RuleDiagnostic)
    }

    /// Expands files and directories (every `*.yaml`/`*.yml` inside, sorted, not recursive, hidden
    /// files skipped) and reads each file. Rule files and directories others than root can write are
    /// refused (`RuleFileTrust`). With `allowEmptyDirectories` (local rules), a directory without rule
    /// files yields nothing instead of an error.
    static func read(paths: [String], allowEmptyDirectories: Bool = false) -> [Entry] {
        var trust = RuleFileTrust()
        var entries: [Entry] = []
        for path in paths {
            var info = stat()
            guard stat(path, &info) == 0 else {
                entries.append(.failure(failure(path, "failed to open '\(path)': \(describe(errno)); \(fix(errno))")))
                continue
            }
            if (info.st_mode & S_IFMT) == S_IFDIR {
                if let refusal = trust.refusal(directory: path, info: info) {
                    entries.append(.failure(failure(path, refusal)))
                    continue
                }
                let listing = listRuleFiles(in: path)
                if let message = listing.failure {
                    entries.append(.failure(failure(path, message)))
                } else if listing.names.isEmpty {
                    if allowEmptyDirectories { continue }
                    entries.append(
                        .failure(
                            failure(
                                path,
                                "directory '\(path)' contains no rule files; add a file ending in .yaml or .yml"
                            )
                        )
                    )
                } else {
                    let prefix = path.hasSuffix("/") ? path : path + "/"
                    for name in listing.names { entries.append(readFile(prefix + name, trust: &trust)) }
                }
            } else {
                entries.append(readFile(path, trust: &trust))
            }
        }
        return entries
    }

    /// A diagnostic for a whole file or directory.
    private static func failure(_ path: String, _ message: String) -> RuleDiagnostic {
        .error(message, at: SourceLocation(file: path, line: 0, column: 0))
    }

    /// The names of rule files in a directory, sorted by byte order, or why it could not be listed.
    private static func listRuleFiles(in path: String) -> (names: [String], failure: String?) {
        guard let directory = opendir(path) else {
            let code = errno
            return ([], "failed to list directory '\(path)': \(describe(code)); \(fix(code))")
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard !name.hasPrefix("."), name.hasSuffix(".yaml") || name.hasSuffix(".yml") else { continue }
            var info = stat()
            let full = (path.hasSuffix("/") ? path : path + "/") + name
            if stat(full, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR { continue }
            names.append(name)
        }
        names.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return (names, nil)
    }

    /// Reads one file, refusing ones that are too large, not text, or that others than root can change.
    private static func readFile(_ path: String, trust: inout RuleFileTrust) -> Entry {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            return .failure(failure(path, "failed to open '\(path)': \(describe(code)); \(fix(code))"))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let code = errno
            return .failure(failure(path, "failed to read '\(path)': \(describe(code)); \(fix(code))"))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return .failure(failure(path, "'\(path)' is not a regular file; pass a rule file or a directory of them"))
        }
        if let refusal = trust.refusal(file: path, info: info) {
            return .failure(failure(path, refusal))
        }
        guard Int(info.st_size) <= maximumSize else {
            return .failure(
                failure(
                    path,
                    "refusing rule file '\(path)': it is \(info.st_size) bytes, larger than the 4 MiB limit; split it into several files"
                )
            )
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                return .failure(failure(path, "failed to read '\(path)': \(describe(code)); \(fix(code))"))
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
            if bytes.count > maximumSize {
                return .failure(
                    failure(
                        path,
                        "refusing rule file '\(path)': it is larger than the 4 MiB limit; split it into several files"
                    )
                )
            }
        }
        return decode(bytes, file: path)
    }

    /// Checks that bytes are text (no NUL, valid UTF-8) and turns them into a `String`.
    static func decode(_ bytes: [UInt8], file: String) -> Entry {
        if let offset = bytes.firstIndex(of: 0) {
            return .failure(
                failure(
                    file,
                    "refusing rule file '\(file)': it contains a NUL byte at offset \(offset), so it is not a text file; check that the right file was named"
                )
            )
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(failure(file, "refusing rule file '\(file)': it is not valid UTF-8 text; save it as UTF-8"))
        }
        return .source(file: file, text: text)
    }

    /// The user-facing cause for an errno value (never the errno name).
    private static func describe(_ code: Int32) -> String {
        switch code {
        case ENOENT: "no such file or directory"
        case EACCES, EPERM: "permission denied"
        case ENOTDIR: "a component of the path is not a directory"
        case ELOOP: "too many symbolic links"
        case EISDIR: "it is a directory"
        default:
            if let text = strerror(code) {
                String(cString: text).lowercased()
            } else {
                "error \(code)"
            }
        }
    }

    /// What to do about an errno value.
    private static func fix(_ code: Int32) -> String {
        switch code {
        case ENOENT, ENOTDIR: "check the path"
        case EACCES, EPERM: "make it readable by the user vigil runs as"
        default: "check the path and its permissions"
        }
    }
}
