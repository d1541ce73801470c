import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Stand-in processes for the process scenarios: a copy of an ordinary binary under the name a rule
/// looks for (`upload-service` is a copy of /bin/sleep, `vq-burst` one of /bin/true), so that `comm`,
/// the executable's base name and argv[0] all carry that name, as they would for the real service.
enum StandInCopy {
    /// Copies `source` to `path` with mode 0755 (the parent directory must exist). The copy is closed before
    /// this returns, so executing it never fails with `ETXTBSY`.
    static func install(_ source: String, at path: String) throws(HarnessError) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw HarnessError("Failed to open '\(source)': \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let output = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard output >= 0 else { throw HarnessError("Failed to create '\(path)': \(String(cString: strerror(errno)))") }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var failure: String?
        while failure == nil {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n == 0 { break }
            if n < 0 {
                if errno == EINTR { continue }
                failure = "Failed to read '\(source)': \(String(cString: strerror(errno)))"
                break
            }
            do {
                try buffer.withUnsafeBytes { raw in
                    try Syscall.writeAll(output, UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                }
            } catch {
                failure = "Failed to write '\(path)': \(error)"
            }
        }
        if failure == nil && fchmod(output, 0o755) != 0 { failure = "Failed to chmod '\(path)': errno \(errno)" }
        close(output)
        if let failure { throw HarnessError(failure) }
    }
}

/// Reads the `labels` object of a Vigil alert line (`"labels":{"pid":"1234",…}`), which `JSONField` (top
/// level only) does not reach.
enum AlertLabels {
    /// The string value of `labels.name`, or nil.
    static func value(_ line: String, _ name: String) -> String? {
        guard let object = labelsObject(line) else { return nil }
        return JSONField.string(object, name)
    }

    /// The `{…}` text of the top-level `labels` member, braces balanced and strings skipped.
    static func labelsObject(_ line: String) -> String? {
        let bytes = Array(line.utf8)
        let needle = Array("\"labels\":{".utf8)
        guard bytes.count > needle.count else { return nil }
        var start: Int?
        var i = 0
        while i + needle.count <= bytes.count {
            if bytes[i] == needle[0] && Array(bytes[i..<i + needle.count]) == needle {
                start = i + needle.count - 1
                break
            }
            i += 1
        }
        guard let start else { return nil }
        var depth = 0
        var inString = false
        var j = start
        while j < bytes.count {
            let b = bytes[j]
            if inString {
                if b == UInt8(ascii: "\\") {
                    j += 2
                    continue
                }
                if b == UInt8(ascii: "\"") { inString = false }
            } else if b == UInt8(ascii: "\"") {
                inString = true
            } else if b == UInt8(ascii: "{") {
                depth += 1
            } else if b == UInt8(ascii: "}") {
                depth -= 1
                if depth == 0 { return String(decoding: bytes[start...j], as: UTF8.self) }
            }
            j += 1
        }
        return nil
    }
}

/// A small deterministic generator (SplitMix64), so that every run draws the same poll-loop phases.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (bound > 0); the modulo bias is negligible for the bounds used here.
    mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
}

/// Sleeps for `milliseconds` (retrying after signals). Only the harness's own pacing uses this, never
/// to wait for a subject.
func pause(milliseconds: Int) {
    var request = timespec(tv_sec: milliseconds / 1_000, tv_nsec: (milliseconds % 1_000) * 1_000_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// The first executable called `name` on `$PATH` (or in /usr/sbin and /sbin, where apt puts forkstat).
func findExecutable(_ name: String) -> String? {
    let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
    for dir in path.split(separator: ":") + ["/usr/sbin", "/sbin", "/usr/bin"] {
        let candidate = "\(dir)/\(name)"
        if access(candidate, X_OK) == 0 { return candidate }
    }
    return nil
}

/// Writes `text` to `path` (created 0644, truncated).
func writeFile(_ path: String, _ text: String) throws(HarnessError) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw HarnessError("Failed to create '\(path)': \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    do {
        try Array(text.utf8).withUnsafeBytes { raw in try Syscall.writeAll(fd, raw) }
    } catch {
        throw HarnessError("Failed to write '\(path)': \(error)")
    }
}

/// `vigil check RULES`: fails fast, with vigil's diagnostics, when this vigil does not accept the rule file
/// (a build without process rules would otherwise be noticed only when READY=1 never comes).
func checkRules(vigil: String, rules: String, work: String) throws(HarnessError) {
    let output = work + "/check.out"
    let process = try ChildProcess(
        executable: vigil,
        arguments: ["check", rules],
        standardOutput: output,
        standardError: output
    )
    guard let status = process.wait(timeoutMilliseconds: 20_000) else {
        process.signal(SIGKILL)
        _ = process.wait(timeoutMilliseconds: 2_000)
        throw HarnessError("'vigil check \(rules)' did not finish within 20 s")
    }
    guard ChildProcess.exitCode(status) == 0 else {
        throw HarnessError("vigil rejects the scenario's rules:\n\(ProcFile.readText(output) ?? "")")
    }
}
