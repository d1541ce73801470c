import Logging
import Synchronization
import SystemPackage
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Where alert lines go. Each write is one `write(2)` of one whole line, so lines from concurrent writers
/// to the same file never interleave (`O_APPEND` makes each write land at the end atomically).
final class AlertSink {
    enum Target {
        case standardOutput
        case file(path: String)
    }

    let name: String
    let target: Target
    private var descriptor: CInt = -1
    /// Lines that could not be written yet, oldest first (a full disk, a closed pipe). Retried before
    /// every new line; never dropped silently.
    private var backlog: [[UInt8]] = []
    private var lastErrorReported: String?
    private let logger: Logger
    /// For a file: the rotation counter this writer follows, and its value when the file was opened.
    private var generation: SinkFileGeneration?
    private var openedGeneration: UInt64 = 0

    init(name: String, target: Target, logger: Logger) {
        self.name = name
        self.target = target
        self.logger = logger
    }

    /// A description for logs: `stdout` or the file path.
    var label: String {
        switch target {
        case .standardOutput: "stdout"
        case .file(let path): path
        }
    }

    /// Makes this writer reopen its file by name whenever `generation` moves on (before its next write).
    func follow(_ generation: SinkFileGeneration) {
        self.generation = generation
        openedGeneration = generation.value.load(ordering: .acquiring)
    }

    /// Opens the file (creating it 0640 and its directory 0750 when missing). Throws a one-line error.
    func open() throws(SinkError) {
        switch target {
        case .standardOutput:
            descriptor = STDOUT_FILENO
        case .file(let path):
            if let generation { openedGeneration = generation.value.load(ordering: .acquiring) }
            Self.makeParentDirectories(of: path)
            let fd = path.withCString { Glibc.open($0, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640) }
            if fd < 0 {
                throw SinkError(
                    message: "Failed to open alert sink '\(name)' at '\(path)': \(Errno(rawValue: errno)); "
                        + "fix the path or its permissions"
                )
            }
            descriptor = fd
            Self.terminateLastLine(fd)
        }
    }

    /// A daemon killed in the middle of a write (SIGKILL, power loss) can leave a last line without its
    /// newline; end it, so the next record starts a line of its own and readers skip one bad line instead
    /// of losing a good one glued to it.
    private static func terminateLastLine(_ fd: CInt) {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 0 else { return }
        var last: UInt8 = 0
        guard pread(fd, &last, 1, info.st_size - 1) == 1, last != UInt8(ascii: "\n") else { return }
        var newline = UInt8(ascii: "\n")
        _ = Glibc.write(fd, &newline, 1)
    }

    func close() {
        if case .file = target, descriptor >= 0 { Syscall.close(descriptor) }
        descriptor = -1
    }

    /// Writes one line (already ending in a newline). On failure keeps it for the next attempt.
    func write(_ line: UnsafeRawBufferPointer, counters: PipelineCounters) {
        if !backlog.isEmpty { flushBacklog(counters: counters) }
        if backlog.isEmpty, tryWrite(line) { return }
        backlog.append(Array(line))
        counters.sinkFailures.add(1, ordering: .relaxed)
    }

    /// Retries what is held back. Returns true when nothing is left.
    @discardableResult
    func flushBacklog(counters: PipelineCounters) -> Bool {
        while let first = backlog.first {
            let ok = first.withUnsafeBytes { tryWrite($0) }
            if !ok { return false }
            if lastErrorReported != nil {
                logger.notice(
                    "Alert sink '\(name)' is writable again; delivering the \(backlog.count) alerts held back, in order"
                )
                lastErrorReported = nil
            }
            backlog.removeFirst()
        }
        return true
    }

    var hasBacklog: Bool { !backlog.isEmpty }

    /// Writes one line now, keeping nothing: false when it could not (the caller hands it to the worker,
    /// which keeps and retries it). For a producer thread's own descriptor of a file sink.
    func writeDirectly(_ line: UnsafeRawBufferPointer) -> Bool {
        tryWrite(line, report: false)  // the worker reports it, once, when it takes the line over
    }

    /// True for sinks a producer may write itself: local files (a write of one line lands in the page
    /// cache; `O_APPEND` keeps lines whole across writers). Standard output may be a slow pipe.
    var acceptsDirectWrites: Bool {
        if case .file = target { return true }
        return false
    }

    /// Reopens a file whose name now points elsewhere (rotated away, or SIGHUP): the new descriptor first,
    /// so a failure keeps the old one (alerts then still land in the rotated file, not nowhere).
    private func reopenIfRotated() {
        guard let generation, case .file(let path) = target else { return }
        let current = generation.value.load(ordering: .acquiring)
        guard current != openedGeneration else { return }
        let old = descriptor
        do {
            try open()
            if old >= 0 && old != descriptor { Syscall.close(old) }
        } catch {
            descriptor = old
            openedGeneration = current
            logger.error(
                "Failed to reopen alert file '\(path)' after it was rotated: \(error); still writing to the old file"
            )
        }
    }

    private func tryWrite(_ line: UnsafeRawBufferPointer, report: Bool = true) -> Bool {
        reopenIfRotated()
        do {
            try Syscall.writeAll(descriptor, line)
            return true
        } catch {
            guard report else { return false }
            let message =
                "Failed to write an alert to sink '\(name)' ('\(label)'): \(error); "
                + "holding it and retrying (\(backlog.count + 1) held)"
            if lastErrorReported == nil {
                logger.error("\(message)")
                lastErrorReported = message
            }
            return false
        }
    }

    private static func makeParentDirectories(of path: String) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        FileTree.makeDirectories(String(path[..<slash]), mode: 0o750)
    }
}

/// A sink that cannot be set up.
struct SinkError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
