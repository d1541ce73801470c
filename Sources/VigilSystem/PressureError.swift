public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Why reading pressure stall information or creating a PSI trigger failed (E1): a code named for what the
/// user experiences (N4), the errno as the cause when the kernel refused, and one line that says what failed
/// and what to do (E2, E4).
public struct PressureError: Error, Sendable, CustomStringConvertible {
    /// What the user experiences; opaque so that codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case unavailable
            case malformed
            case invalidWindow
            case invalidStall
            case windowNeedsPrivilege
            case permissionDenied
            case rejected
            case other(CInt)
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// There is no pressure stall information here: the file is missing (`ENOENT`: no `CONFIG_PSI`, or
        /// the wrong root) or PSI is turned off (`EOPNOTSUPP`: `psi=0`).
        public static var unavailable: Code { Code(.unavailable) }
        /// The file does not hold the `some avg10=… avg60=… avg300=… total=…` lines.
        public static var malformed: Code { Code(.malformed) }
        /// The window is outside 0.5 s...10 s (refused before asking the kernel).
        public static var invalidWindow: Code { Code(.invalidWindow) }
        /// The stall is not above 0 and below the window (refused before asking the kernel).
        public static var invalidStall: Code { Code(.invalidStall) }
        /// Without `CAP_SYS_RESOURCE` the window must be a whole multiple of 2 s (refused before asking the
        /// kernel, or `EINVAL` from it).
        public static var windowNeedsPrivilege: Code { Code(.windowNeedsPrivilege) }
        /// The kernel or a security policy refused the trigger (`EPERM`: `CAP_SYS_RESOURCE` before Linux 6.5;
        /// `EACCES`: the file is not writable).
        public static var permissionDenied: Code { Code(.permissionDenied) }
        /// The kernel refused the trigger's text (`EINVAL`), e.g. a `full` cpu trigger before Linux 5.13.
        public static var rejected: Code { Code(.rejected) }
        /// Any other errno.
        public static func other(_ errno: Errno) -> Code { Code(.other(errno.rawValue)) }

        /// The code's name, e.g. `windowNeedsPrivilege`.
        public var description: String {
            switch wrapped {
            case .unavailable: "unavailable"
            case .malformed: "malformed"
            case .invalidWindow: "invalidWindow"
            case .invalidStall: "invalidStall"
            case .windowNeedsPrivilege: "windowNeedsPrivilege"
            case .permissionDenied: "permissionDenied"
            case .rejected: "rejected"
            case .other(let code): "other(\(code))"
            }
        }
    }

    /// The step of `PressureTrigger.init` the kernel refused.
    enum Step {
        /// `open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC)`.
        case open
        /// `write(fd, "<kind> <stall> <window>\0")`.
        case write
    }

    /// What the user experiences.
    public let code: Code
    /// The pressure file, e.g. `/proc/pressure/memory`.
    public let path: String
    /// What failed → cause → what to do, one line.
    public let message: String
    /// The underlying error (the `Errno` the kernel returned), nil when refused before asking it.
    public let cause: (any Error & Sendable)?
    /// Where the error was made.
    public let fileID: String
    /// Where the error was made.
    public let line: Int

    private init(code: Code, path: String, message: String, cause: Errno?, fileID: String, line: Int) {
        self.code = code
        self.path = path
        self.message = message
        self.cause = cause
        self.fileID = fileID
        self.line = line
    }

    /// Reading `path` failed with `errno`.
    init(reading path: String, errno: Errno, fileID: String = #fileID, line: Int = #line) {
        let code = Self.availabilityCode(errno) ?? .other(errno)
        let fix =
            code == .unavailable
            ? "boot a kernel with CONFIG_PSI and without 'psi=0' (CONFIG_PSI_DEFAULT_DISABLED needs 'psi=1')"
            : "run 'vigil probe' to see what this host supports"
        self.init(
            code: code,
            path: path,
            message: "Failed to read pressure stall information from '\(path)': \(errno); \(fix)",
            cause: errno,
            fileID: fileID,
            line: line
        )
    }

    /// `path` does not hold pressure lines; `line` is the first one that did not parse (empty when there was
    /// no `some` line).
    init(malformed path: String, line text: String, fileID: String = #fileID, line: Int = #line) {
        let what =
            text.isEmpty ? "it has no 'some' line" : "the line '\(text)' is not 'avg10=… avg60=… avg300=… total=…'"
        self.init(
            code: .malformed,
            path: path,
            message: "Failed to read pressure stall information from '\(path)': \(what); is this a pressure file?",
            cause: nil,
            fileID: fileID,
            line: line
        )
    }

    /// The window is outside 0.5 s...10 s.
    init(invalidWindow window: Int, path: String, fileID: String = #fileID, line: Int = #line) {
        self.init(
            code: .invalidWindow,
            path: path,
            message: "Failed to create a PSI trigger on '\(path)': the window \(Self.seconds(window)) is outside"
                + " 0.5 s...10 s; choose a window from 0.5 s to 10 s",
            cause: nil,
            fileID: fileID,
            line: line
        )
    }

    /// The stall is not above 0 and below the window.
    init(invalidStall stall: Int, window: Int, path: String, fileID: String = #fileID, line: Int = #line) {
        self.init(
            code: .invalidStall,
            path: path,
            message: "Failed to create a PSI trigger on '\(path)': the stall \(Self.seconds(stall)) is not above 0"
                + " and below the window \(Self.seconds(window)); choose a stall shorter than the window",
            cause: nil,
            fileID: fileID,
            line: line
        )
    }

    /// The window is not a whole multiple of 2 s and `CAP_SYS_RESOURCE` is not held.
    init(
        windowNeedsPrivilege window: Int,
        path: String,
        cause: Errno? = nil,
        fileID: String = #fileID,
        line: Int = #line
    ) {
        self.init(
            code: .windowNeedsPrivilege,
            path: path,
            message: "Failed to create a PSI trigger on '\(path)': without CAP_SYS_RESOURCE the kernel accepts only"
                + " windows that are whole multiples of 2 s, not \(Self.seconds(window)); round the window to"
                + " 2 s, 4 s… or grant CAP_SYS_RESOURCE (add it to CapabilityBoundingSet= in vigil.service)",
            cause: cause,
            fileID: fileID,
            line: line
        )
    }

    /// The kernel refused `step` of creating a `kind` trigger on `path` with `errno`.
    init(
        creating path: String,
        step: Step,
        errno: Errno,
        kind: PressureKind,
        fileID: String = #fileID,
        line: Int = #line
    ) {
        let failed =
            "Failed to create a PSI trigger on '\(path)': "
            + (step == .open ? "opening it for writing" : "writing the trigger") + " returned '\(errno)'"
        let code: Code
        let fix: String
        switch errno {
        case .notPermitted:
            // FIXME(kernel-baseline): before Linux 6.5 opening a pressure file for writing needs CAP_SYS_RESOURCE.
            code = .permissionDenied
            fix =
                "this kernel requires CAP_SYS_RESOURCE for triggers (kernels before 6.5 do); grant CAP_SYS_RESOURCE"
                + " (add it to CapabilityBoundingSet= in vigil.service), or run 'vigil probe'"
        case .permissionDenied:
            code = .permissionDenied
            fix = "the file is not writable for vigil (a read-only /proc or a security policy); run 'vigil probe'"
        case .invalidArgument where kind == .full && path.hasSuffix("/cpu"):
            code = .rejected
            fix = "this kernel has no 'full' cpu pressure (Linux 5.13 added it); use a 'some' trigger"
        case .invalidArgument:
            code = .rejected
            fix = "the kernel refused the trigger's numbers; run 'vigil probe' to see the windows it accepts"
        default:
            code = Self.availabilityCode(errno) ?? .other(errno)
            fix =
                code == .unavailable
                ? "boot a kernel with CONFIG_PSI and without 'psi=0', or run 'vigil probe'"
                : "run 'vigil probe' to see what this host supports"
        }
        self.init(code: code, path: path, message: "\(failed); \(fix)", cause: errno, fileID: fileID, line: line)
    }

    /// `.unavailable` for the errnos of a missing or disabled pressure file.
    private static func availabilityCode(_ errno: Errno) -> Code? {
        switch errno {
        case .noSuchFileOrDirectory, .notSupported, .notSupportedOnSocket: .unavailable
        default: nil
        }
    }

    /// Microseconds as seconds for messages: `2000000` → `2 s`, `150000` → `0.15 s`.
    private static func seconds(_ microseconds: Int) -> String {
        let whole = microseconds / 1_000_000
        var fraction = abs(microseconds % 1_000_000)
        guard fraction != 0 else { return "\(microseconds < 0 ? "-" : "")\(abs(whole)) s" }
        var digits = 6
        while fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let padded = String(repeating: "0", count: digits - String(fraction).count) + String(fraction)
        return "\(microseconds < 0 ? "-" : "")\(abs(whole)).\(padded) s"
    }

    /// One line (E1).
    public var description: String { message }

    /// The message, the code and the cause, one per line, with where the error was made.
    public func detailedDescription() -> String {
        var lines = [message, "  code: \(code) (\(fileID):\(line))"]
        if let cause { lines.append("  cause: \(String(describing: type(of: cause))): \(cause)") }
        return lines.joined(separator: "\n")
    }
}
