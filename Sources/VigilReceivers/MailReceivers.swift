public import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Real receivers for the syslog and e-mail sinks, for the tests and the demo: an SMTP server (aiosmtpd,
// from PyPI, in a small Python script), an msmtp configuration that makes Debian's `/usr/bin/msmtp` a
// sendmail for it, and a syslog datagram socket. No Foundation: VigilHarness is linked into `vigil` itself
// (for `vigil demo`), and the messages are read with `JSONField`.

/// An SMTP server on 127.0.0.1 that accepts every message and records it: aiosmtpd in a Python script
/// that appends each message (envelope and data) as one JSON line to `messages.jsonl` in its directory.
/// Needs `python3` on `$PATH` with aiosmtpd (`pip install aiosmtpd`, or Debian's `python3-aiosmtpd`).
public final class SMTPServer: @unchecked Sendable {
    // @unchecked Sendable: driven by one test thread at a time; the server itself is another process.

    /// One message as the server received it.
    public struct Message: Sendable {
        /// `MAIL FROM:`.
        public var mailFrom: String
        /// Every `RCPT TO:`, in order.
        public var recipients: [String]
        /// The data as sent after `DATA` (CRLF line ends, dots unstuffed).
        public var data: String
        /// The header fields, unfolded, by name as written (the last of a repeated name wins).
        public var headers: [String: String]
        /// When the server had the whole message: Unix time in nanoseconds (for latency figures).
        public var receivedNanoseconds: Int64

        /// The body: everything after the blank line that ends the headers, with LF line ends.
        public var body: String {
            let text = data.replacing("\r\n", with: "\n")
            guard let end = text.firstRange(of: "\n\n") else { return "" }
            return String(text[end.upperBound...])
        }
    }

    /// The port it listens on (known after `start`).
    public private(set) var port = 0
    private var directory = ""
    private var process: ChildProcess?
    private var follower: LineFollower?
    private var seen = 0

    public init() {}

    deinit { stop() }

    /// The Python program: one `aiosmtpd.smtp.SMTP` protocol per connection on an asyncio server, so that
    /// port 0 works (the chosen port is written to the ready file) and the port is reused on restart.
    static let script = """
        import asyncio, json, sys, time
        from aiosmtpd.smtp import SMTP

        messages, ready, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

        class Recorder:
            async def handle_DATA(self, server, session, envelope):
                record = {
                    "received": str(time.time_ns()),
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "data": envelope.original_content.decode("utf-8", "replace"),
                }
                with open(messages, "a", encoding="utf-8") as out:
                    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\\n")
                return "250 OK recorded"

        async def main():
            loop = asyncio.get_running_loop()
            server = await loop.create_server(
                lambda: SMTP(Recorder(), enable_SMTPUTF8=True), "127.0.0.1", port, reuse_address=True)
            with open(ready, "a") as out:
                out.write("%d\\n" % server.sockets[0].getsockname()[1])
            await server.serve_forever()

        asyncio.run(main())

        """

    /// Writes the script into `directory` and starts the server on `port` (0: a free one); returns once it
    /// listens, or throws after 20 s.
    public func start(directory: String, port: Int = 0) throws(HarnessError) {
        self.directory = directory
        try Self.writeFile(directory + "/smtp-server.py", Self.script, mode: 0o644)
        if follower == nil { follower = try LineFollower(path: directory + "/messages.jsonl", fromStart: true) }
        try launch(port: port)
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s): connections to its port are refused afterwards.
    public func stop() {
        process?.terminate()
        process = nil
    }

    /// Starts the server again on the same port.
    public func restart() throws(HarnessError) {
        stop()
        try launch(port: port)
    }

    /// Every message received so far, oldest first.
    public func messages() -> [Message] {
        guard let text = Self.readFile(directory + "/messages.jsonl") else { return [] }
        return text.split(separator: "\n").compactMap { Self.parse(String($0)) }
    }

    /// Waits until at least `count` messages have arrived in all, or `timeoutSeconds` passed.
    public func waitForMessages(count: Int, timeoutSeconds: Double) -> Bool {
        guard let follower else { return false }
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutSeconds * 1e9)
        while seen < count {
            let now = Clock.monotonicNanoseconds()
            guard now < deadline, follower.next(timeoutMilliseconds: Int((deadline - now) / 1_000_000) + 1) != nil
            else { return false }
            seen += 1
        }
        return true
    }

    /// Starts the Python process and waits for the port it listens on.
    private func launch(port: Int) throws(HarnessError) {
        let ready = directory + "/smtp-ready"
        unlink(ready)
        let readyLines = try LineFollower(path: ready, fromStart: true)
        process = try ChildProcess(
            executable: try Self.python(),
            arguments: [directory + "/smtp-server.py", directory + "/messages.jsonl", ready, String(port)],
            standardOutput: directory + "/smtp-server.log",
            standardError: directory + "/smtp-server.log"
        )
        guard let line = readyLines.next(timeoutMilliseconds: 20_000)?.line, let actual = Int(line) else {
            stop()
            let log = Self.readFile(directory + "/smtp-server.log") ?? ""
            throw HarnessError(
                "Failed to start the aiosmtpd server in '\(directory)': it did not listen within 20 s; install it with 'pip install aiosmtpd'. Its output: \(log.suffix(400))"
            )
        }
        self.port = actual
    }

    /// The first `python3` on `$PATH`.
    static func python() throws(HarnessError) -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where access("\(directory)/python3", X_OK) == 0 {
            return "\(directory)/python3"
        }
        throw HarnessError("Failed to find 'python3' on $PATH; install Debian's python3 and 'pip install aiosmtpd'")
    }

    /// One JSON line of `messages.jsonl` as a message.
    static func parse(_ line: String) -> Message? {
        guard let data = JSONField.string(line, "data") else { return nil }
        var recipients: [String] = []
        if let start = line.firstRange(of: "\"rcpt_tos\":[") {
            // The addresses are JSON strings without `]` or `,` inside; each is unescaped by JSONField.
            let rest = line[start.upperBound...]
            let list = rest.prefix { $0 != "]" }
            for item in list.split(separator: ",") {
                let trimmed = item.trimmingPrefix(" ")
                if let value = JSONField.string("{\"v\":\(trimmed)}", "v") { recipients.append(value) }
            }
        }
        return Message(
            mailFrom: JSONField.string(line, "mail_from") ?? "",
            recipients: recipients,
            data: data,
            headers: headers(data),
            receivedNanoseconds: JSONField.string(line, "received").flatMap { Int64($0) } ?? 0
        )
    }

    /// The header fields of a message, unfolded (RFC 5322 §2.2.3: a line end before white space is removed).
    static func headers(_ data: String) -> [String: String] {
        let text = data.replacing("\r\n", with: "\n")
        let head = text.firstRange(of: "\n\n").map { String(text[..<$0.lowerBound]) } ?? text
        var fields: [String: String] = [:]
        var lastName: String?
        for line in head.split(separator: "\n", omittingEmptySubsequences: false) {
            if let first = line.first, first == " " || first == "\t", let name = lastName {
                fields[name, default: ""] += String(line)
            } else if let colon = line.firstIndex(of: ":") {
                let name = String(line[..<colon])
                fields[name] = String(line[line.index(after: colon)...].drop { $0 == " " })
                lastName = name
            }
        }
        return fields
    }

    /// Writes `text` to `path` (created or truncated) with `mode`.
    static func writeFile(_ path: String, _ text: String, mode: mode_t) throws(HarnessError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw HarnessError("Failed to create '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // open's mode is only used for a new file and is cut by the umask; msmtp insists on 0600.
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw HarnessError("Failed to write '\(path)': \(String(cString: strerror(errno)))") }
            written += n
        }
    }

    /// The whole file as text, or nil when it cannot be read.
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// msmtp (Debian's `msmtp` package) as the sendmail interface for an `SMTPServer`.
public enum MSMTP {
    /// Writes `msmtprc` (mode 0600: msmtp refuses a configuration others can read) into `directory` for
    /// 127.0.0.1:`port` without authentication, TLS or a log file, and returns the argv of a sendmail
    /// that uses it: `/usr/bin/msmtp -C <file> -t -oi` (msmtp reads the recipients from the headers with
    /// `-t`, and accepts and ignores sendmail's `-oi`).
    public static func sendmailArgv(directory: String, port: Int) throws(HarnessError) -> [String] {
        let path = directory + "/msmtprc"
        let config = """
            # Written by VigilHarness.MSMTP for a test SMTP server.
            defaults
            auth off
            tls off
            logfile
            syslog off
            timeout 10

            account vigil
            host 127.0.0.1
            port \(port)
            from vigil@localhost

            account default : vigil

            """
        try SMTPServer.writeFile(path, config, mode: 0o600)
        guard access("/usr/bin/msmtp", X_OK) == 0 else {
            throw HarnessError("Failed to find '/usr/bin/msmtp'; install Debian's msmtp package")
        }
        return ["/usr/bin/msmtp", "-C", path, "-t", "-oi"]
    }
}

extension MSMTP {
    /// Installs `/usr/sbin/sendmail` as a server has it, at `path` (a host path, usually inside a `--root`
    /// sandbox): a script that runs Debian's msmtp with the config of `sendmailArgv(directory:port:)`, so
    /// the e-mail sink's default `sendmail -t -oi` reaches the SMTP server on `port`.
    public static func installSendmail(at path: String, directory: String, port: Int) throws(HarnessError) {
        let argv = try sendmailArgv(directory: directory, port: port)
        let script = "#!/bin/sh\nexec " + argv.prefix(3).map { "'\($0)'" }.joined(separator: " ") + " \"$@\"\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o755)
        guard fd >= 0 else { throw HarnessError("Failed to write '\(path)': \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let bytes = Array(script.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
            throw HarnessError("Failed to write '\(path)': \(String(cString: strerror(errno)))")
        }
        fchmod(fd, 0o755)
    }
}

/// The log rule the delivery tests and benchmark drive: one alert per appended `ERROR job=N failed` line of
/// `/var/log/jobs.log`, its message `job N failed`.
public enum JobLog {
    public static let path = "/var/log/jobs.log"

    public static let rule = """
        - rule: job-failed
          severity: error
          log: /var/log/jobs.log
          match: 'ERROR job=(?<job>[0-9]+) failed'
          from: start
          message: "job {job} failed"

        """

    /// The line for job `number`, newline included.
    public static func line(_ number: Int) -> String {
        "2026-11-27 10:00:00 worker ERROR job=\(number) failed: upstream timeout\n"
    }

    /// The alert message for job `number`.
    public static func message(_ number: Int) -> String { "job \(number) failed" }
}
