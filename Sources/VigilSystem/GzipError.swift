/// Why `Gzip.compress` failed: one line naming the files, the cause and what to do (E2), and the `errno`
/// of the system call that failed, for callers that react to a cause (`EEXIST`, `ENOSPC`, `ELOOP`).
public struct GzipError: Error, Sendable, CustomStringConvertible {
    /// The `errno` of the failed system call; 0 when no system call failed (a refusal such as a file that is
    /// not regular or that changed while it was compressed, or a zlib failure).
    public let errno: Int32
    /// The whole message: what failed, the files in single quotes, the cause, what to do, and what was left.
    public let message: String

    /// An error with `errno` (0 for none) and the whole one-line `message`.
    public init(errno: Int32, message: String) {
        self.errno = errno
        self.message = message
    }

    /// The message, one line.
    public var description: String { message }
}
