import Glibc

/// Decides whether a rule file or directory can be trusted: vigil runs as root and does what its rules
/// say, so, as cron and sudo do with their files, it refuses rules that anyone but root can change.
///
/// A file or directory is refused when it is group- or world-writable (a sticky world-writable directory
/// such as /tmp too: anyone can create a file there), or, when vigil runs as root, when it is owned by
/// another user. A user checking their own files with `vigil check` as themselves is not refused for
/// owning them.
struct RuleFileTrust {
    /// Whether ownership is checked: only when vigil runs as root (effective uid 0).
    let checksOwner: Bool
    /// Directories already judged, by path: a directory's verdict is reported once per file it holds.
    private var verdicts: [String: String?] = [:]

    /// The anchor every refusal points to.
    static let documentation = "docs/troubleshooting.md#rule-file-not-trusted"

    /// A checker for the current process (ownership checked when the effective uid is 0).
    init(checksOwner: Bool = geteuid() == 0) {
        self.checksOwner = checksOwner
    }

    /// What is wrong with a file or directory's owner and mode, as `it is …`; nil when it is trusted.
    func problem(uid: uid_t, mode: mode_t, isDirectory: Bool) -> String? {
        var parts: [String] = []
        if checksOwner && uid != 0 {
            parts.append("owned by uid \(uid)\(Self.userName(uid).map { " (\($0))" } ?? "") rather than root")
        }
        if mode & S_IWGRP != 0 { parts.append("group-writable") }
        if mode & S_IWOTH != 0 { parts.append("world-writable") }
        guard !parts.isEmpty else { return nil }
        var text = "it is \(parts.joined(separator: " and ")) (mode \(Self.octal(mode))"
        if isDirectory && mode & S_IWOTH != 0 && mode & S_ISVTX != 0 {
            text += "; the sticky bit does not stop anyone creating a file in it"
        }
        return text + ")"
    }

    /// The command that makes `path` trusted.
    func fix(_ path: String) -> String {
        checksOwner ? "chown root:root '\(path)' && chmod go-w '\(path)'" : "chmod go-w '\(path)'"
    }

    /// Why a directory named on the command line is refused; nil when it is trusted.
    mutating func refusal(directory path: String, info: stat) -> String? {
        let key = Self.normalized(path)
        guard let problem = problem(uid: info.st_uid, mode: info.st_mode, isDirectory: true) else {
            verdicts[key] = .some(nil)
            return nil
        }
        verdicts[key] = .some(problem)
        return
            "refusing rule directory '\(path)': \(problem), so others than root could add or replace rule files, and vigil does what they say as root; run \(fix(path)) (see \(Self.documentation))"
    }

    /// Why an opened rule file is refused, checking the file (`info`, from fstat: a symlink's target), the
    /// directory holding it and, for a symlink, the directory holding its target; nil when all are trusted.
    mutating func refusal(file path: String, info: stat) -> String? {
        var link = ""
        var target = path
        var linkInfo = stat()
        if lstat(path, &linkInfo) == 0, (linkInfo.st_mode & S_IFMT) == S_IFLNK, let resolved = realpath(path, nil) {
            target = String(cString: resolved)
            free(resolved)
            link = " (a symlink to '\(target)')"
        }
        if let problem = problem(uid: info.st_uid, mode: info.st_mode, isDirectory: false) {
            let subject = target == path ? problem : "'\(target)' \(problem.dropFirst(3))"
            return
                "refusing rule file '\(path)'\(link): \(subject), so others than root could change what vigil does as root; run \(fix(target)) (see \(Self.documentation))"
        }
        var directories = [Self.directory(of: path)]
        if target != path { directories.append(Self.directory(of: target)) }
        for directory in directories {
            guard let problem = verdict(directory) else { continue }
            return
                "refusing rule file '\(path)'\(link): its directory '\(directory)' is \(problem.dropFirst(6)), so others than root could replace the file; run \(fix(directory)), or move the file to a directory only root can write (see \(Self.documentation))"
        }
        return nil
    }

    /// The problem with a directory holding a rule file, judged once; nil when trusted or not found.
    private mutating func verdict(_ directory: String) -> String? {
        let key = Self.normalized(directory)
        if let known = verdicts[key] { return known }
        var info = stat()
        let problem =
            stat(directory, &info) == 0 ? problem(uid: info.st_uid, mode: info.st_mode, isDirectory: true) : nil
        verdicts[key] = .some(problem)
        return problem
    }

    /// The directory part of a path: `.` for a bare name, `/` for a name at the root.
    static func directory(of path: String) -> String {
        let trimmed = normalized(path)
        guard let slash = trimmed.lastIndex(of: "/") else { return "." }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// The path without trailing slashes (`/` stays `/`).
    static func normalized(_ path: String) -> String {
        var text = Substring(path)
        while text.count > 1 && text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    /// A mode's permission bits as four octal digits, e.g. `0664`, `1777`.
    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The name of the user with `uid`, if the host has one.
    static func userName(_ uid: uid_t) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        return buffer.withUnsafeMutableBufferPointer { raw -> String? in
            guard let base = raw.baseAddress, getpwuid_r(uid, &entry, base, raw.count, &result) == 0, result != nil,
                let name = entry.pw_name
            else { return nil }
            return String(cString: name)
        }
    }
}
