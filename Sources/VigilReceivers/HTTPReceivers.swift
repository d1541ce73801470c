import Foundation
public import VigilHarness
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

// Real HTTP receivers for the webhook and Alertmanager sinks, on 127.0.0.1: a small Python server that
// records every request, and Debian's Alertmanager itself. Tests talk to them as the daemon would talk to
// the real thing, over TCP, through libcurl.

/// A webhook receiver: Python's `ThreadingHTTPServer` on 127.0.0.1 (an ephemeral port), which appends each
/// request as one JSON line `{method, path, headers, body, status}` to `requests.jsonl` in its directory
/// before it answers.
///
/// It answers 500 to the first `failFirst` requests and 200 after that, so a test can watch a sink retry.
/// A request to `/status/NNN` is answered with status NNN whatever `failFirst` says (a 3xx with
/// `Location: /moved`), for tests of refusals and redirects.
///
/// The server's standard output is a FIFO that this object reads: the server writes `PORT n` when it
/// listens and one `R` line after each request it recorded, so `start` and `waitForRequests` wait for those
/// lines (`poll` with a deadline) instead of sleeping or re-reading the file in a loop.
public final class WebhookReceiver: @unchecked Sendable {
    // @unchecked Sendable: a test uses it from one task at a time; the server runs in its own process.

    /// One request the receiver got.
    public struct Request: Sendable {
        /// `POST`, `GET` …
        public var method: String
        /// The request target: path and query.
        public var path: String
        /// Header names lower-cased; a repeated header keeps its last value.
        public var headers: [String: String]
        /// The body as text (ill-formed UTF-8 replaced).
        public var body: String
        /// The status the receiver answered with.
        public var status: Int
        /// When the receiver had read the whole request: Unix time in nanoseconds (for latency figures).
        public var receivedNanoseconds: Int64
    }

    /// The port the server listens on (127.0.0.1); 0 before `start`.
    public private(set) var port = 0
    /// `http://127.0.0.1:<port>`.
    public var url: String { "http://127.0.0.1:\(port)" }

    private var process: ChildProcess?
    private var requestsPath = ""
    /// The read end of the server's standard output (a FIFO); -1 when not started.
    private var events: Int32 = -1
    /// Bytes read from `events` that do not yet end a line.
    private var pending: [UInt8] = []

    /// A receiver that is not yet running.
    public init() {}

    deinit { stop() }

    /// Writes the server script into `directory`, starts it, and waits up to 10 s for it to listen.
    public func start(directory: String, failFirst: Int = 0) throws(HarnessError) {
        let script = directory + "/webhook_receiver.py"
        requestsPath = directory + "/requests.jsonl"
        let fifo = directory + "/webhook_receiver.out"
        do {
            try Self.script.write(toFile: script, atomically: true, encoding: .utf8)
        } catch {
            throw HarnessError("Failed to write '\(script)': \(error)")
        }
        unlink(fifo)
        guard mkfifo(fifo, 0o600) == 0 else {
            throw HarnessError("Failed to create the FIFO '\(fifo)': \(String(cString: strerror(errno)))")
        }
        // Opened before the server starts, non-blocking: the server's open for writing then finds a reader
        // and does not block, and this end never blocks either.
        events = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard events >= 0 else {
            throw HarnessError("Failed to open the FIFO '\(fifo)': \(String(cString: strerror(errno)))")
        }
        process = try ChildProcess(
            executable: "/usr/bin/python3",
            arguments: [script, requestsPath, String(failFirst)],
            standardOutput: fifo,
            standardError: directory + "/webhook_receiver.log"
        )
        let deadline = Clock.monotonicNanoseconds() + 10_000_000_000
        while port == 0 {
            for line in readLines(until: deadline) where line.hasPrefix("PORT ") {
                port = Int(line.dropFirst(5)) ?? 0
            }
            if port == 0 && Clock.monotonicNanoseconds() >= deadline {
                let log = ProcFile.readText(directory + "/webhook_receiver.log", limit: 1 << 16) ?? ""
                stop()
                throw HarnessError("the webhook receiver did not report its port within 10 s; its log:\n\(log)")
            }
        }
    }

    /// Every request recorded so far, oldest first.
    public func requests() -> [Request] {
        guard let text = ProcFile.readText(requestsPath, limit: 64 << 20) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard
                let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            else { return nil }
            let headers = (object["headers"] as? [String: String]) ?? [:]
            return Request(
                method: object["method"] as? String ?? "",
                path: object["path"] as? String ?? "",
                headers: headers,
                body: object["body"] as? String ?? "",
                status: object["status"] as? Int ?? 0,
                receivedNanoseconds: (object["received"] as? NSNumber)?.int64Value ?? 0
            )
        }
    }

    /// Waits until at least `count` requests were recorded, or `timeoutSeconds` passed; returns whether they
    /// were. Returns early (false) when the server exits.
    public func waitForRequests(count: Int, timeoutSeconds: Double) -> Bool {
        let deadline = Clock.monotonicNanoseconds() + UInt64(max(0, timeoutSeconds) * 1e9)
        while requests().count < count {
            guard events >= 0, Clock.monotonicNanoseconds() < deadline else { return false }
            _ = readLines(until: deadline)
        }
        return true
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s) and closes the FIFO.
    public func stop() {
        process?.terminate()
        process = nil
        if events >= 0 { close(events) }
        events = -1
    }

    /// Waits for the FIFO to become readable (or `deadline`), then returns the whole lines read. When the
    /// server has gone (end of file), closes the FIFO so callers stop waiting.
    private func readLines(until deadline: UInt64) -> [String] {
        guard events >= 0 else { return [] }
        let now = Clock.monotonicNanoseconds()
        guard now < deadline else { return [] }
        var descriptor = pollfd(fd: events, events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(min((deadline - now) / 1_000_000 + 1, 60_000)))
        guard ready > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(events, $0.baseAddress, $0.count) }
        if count == 0 || (count < 0 && errno != EAGAIN && errno != EINTR) {
            close(events)
            events = -1
            return []
        }
        guard count > 0 else { return [] }
        pending.append(contentsOf: buffer[0..<count])
        var lines: [String] = []
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(String(decoding: pending[..<newline], as: UTF8.self))
            pending.removeSubrange(...newline)
        }
        return lines
    }

    /// The server. HTTP/1.1 with keep-alive, as real receivers speak it; the record is written and flushed
    /// before the answer, so a client that has its answer finds its request in the file.
    private static let script = #"""
        import json, sys, threading, time
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        requests_path, fail_first = sys.argv[1], int(sys.argv[2])
        lock = threading.Lock()
        seen = [0]

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # The headers and the body go out in two writes: with Nagle's algorithm the body would wait for
            # the client's delayed ACK of the headers, 40 ms a request on a kept-alive connection.
            disable_nagle_algorithm = True

            def log_message(self, format, *args):
                pass

            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with lock:
                    seen[0] += 1
                    if self.path.startswith("/status/"):
                        status = int(self.path.split("/")[2])
                    else:
                        status = 500 if seen[0] <= fail_first else 200
                    record = {
                        "received": time.time_ns(),
                        "method": self.command,
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode("utf-8", "replace"),
                        "status": status,
                    }
                    with open(requests_path, "a") as f:
                        f.write(json.dumps(record) + "\n")
                        f.flush()
                    print("R", flush=True)
                reply = b'{"ok":true}' if status < 300 else b'{"error":"the test receiver answers %d"}' % status
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/moved")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = handle_any
            do_POST = handle_any
            do_PUT = handle_any

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        print("PORT %d" % server.server_address[1], flush=True)
        server.serve_forever()
        """#
}

/// Prometheus Alertmanager (Debian's `/usr/bin/prometheus-alertmanager`, package `prometheus-alertmanager`)
/// on 127.0.0.1, with a configuration of one route to a receiver without integrations: alerts are stored
/// and shown by the API, and sent nowhere. Clustering is off (`--cluster.listen-address=`), so no gossip
/// port is opened and the server is ready at once.
///
/// What the v2 API shows (checked against Alertmanager 0.25): `GET /api/v2/alerts` takes the boolean
/// query parameters `active`, `silenced`, `inhibited` and `unprocessed` (all true by default) plus
/// `filter` matchers and `receiver`, and **none of them makes a resolved alert visible**: the handler skips
/// every alert whose `endsAt` is before now, and `status.state` is only ever `unprocessed`, `active` or
/// `suppressed`, never `resolved`. A resolved alert therefore shows by its absence from the list (it stays
/// in memory, for notifications, until garbage-collected). An alert posted without `endsAt` is listed with
/// `endsAt` = its last update + `resolve_timeout`; one posted with `endsAt` in the future keeps that
/// `endsAt`.
public final class AlertmanagerServer: @unchecked Sendable {
    // @unchecked Sendable: a test uses it from one task at a time; the server runs in its own process.

    /// The port the server listens on (127.0.0.1); 0 before `start`.
    public private(set) var port = 0
    /// `http://127.0.0.1:<port>`: the base URL for `AlertmanagerSink.url`.
    public var url: String { "http://127.0.0.1:\(port)" }

    private var process: ChildProcess?
    private var logPath = ""

    /// A server that is not yet running.
    public init() {}

    deinit { stop() }

    /// Writes the configuration into `directory`, starts Alertmanager on a free port, and waits up to 20 s
    /// for `GET /-/ready` to answer 200. `resolveTimeout` is the configuration's `resolve_timeout`. With
    /// `notify`, the route sends Alertmanager's own notifications (firing and, with `send_resolved`,
    /// resolved) to that webhook URL, grouped by alert name, flushed every second: the positive proof that
    /// Alertmanager itself considers an alert resolved, which its API cannot show (see above).
    public func start(directory: String, resolveTimeout: String = "5m", notify: String? = nil) throws(HarnessError) {
        let binary = "/usr/bin/prometheus-alertmanager"
        guard access(binary, X_OK) == 0 else {
            throw HarnessError("'\(binary)' is missing; install Debian's prometheus-alertmanager package")
        }
        let config = directory + "/alertmanager.yml"
        let receiver =
            notify.map {
                """
                  - name: nowhere
                    webhook_configs:
                      - url: "\($0)"
                        send_resolved: true
                """
            } ?? "  - name: nowhere"
        let text = """
            global:
              resolve_timeout: \(resolveTimeout)
            route:
              receiver: nowhere
              group_by: [alertname]
              group_wait: 1s
              group_interval: 1s
              repeat_interval: 1h
            receivers:
            \(receiver)
            """
        do {
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        } catch {
            throw HarnessError("Failed to write '\(config)': \(error)")
        }
        logPath = directory + "/alertmanager.log"
        // The free port is found by binding port 0 and closing; another process could take it before
        // Alertmanager binds, so a server that exits at once is started again on a new port.
        var lastLog = ""
        for _ in 0..<3 {
            let candidate = try Self.freePort()
            port = candidate
            process = try ChildProcess(
                executable: binary,
                arguments: [
                    "--config.file=\(config)",
                    "--storage.path=\(directory)/alertmanager-data",
                    "--web.listen-address=127.0.0.1:\(candidate)",
                    "--cluster.listen-address=",
                    "--log.level=warn",
                ],
                standardOutput: logPath,
                standardError: logPath
            )
            if waitUntilReady(timeoutMilliseconds: 20_000) { return }
            lastLog = ProcFile.readText(logPath, limit: 1 << 16) ?? ""
            stop()
        }
        throw HarnessError("Alertmanager did not answer GET /-/ready with 200 within 20 s; its log:\n\(lastLog)")
    }

    /// `GET /api/v2/alerts` (every alert that is not resolved; see the type's comment), decoded.
    public func alerts() throws(HarnessError) -> [[String: Any]] {
        let client = HTTPClient(timeoutMilliseconds: 30_000, bodyLimit: 256 << 20)
        defer { client.close() }
        switch client.get(url: url + "/api/v2/alerts") {
        case .failure(let error):
            throw HarnessError("Failed to query Alertmanager: \(error)")
        case .success(let response):
            guard response.status == 200 else {
                throw HarnessError("GET \(url)/api/v2/alerts answered \(response.status): \(response.text)")
            }
            guard let list = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]] else {
                throw HarnessError("GET \(url)/api/v2/alerts answered something other than a JSON array")
            }
            return list
        }
    }

    /// The server's log so far.
    public func log() -> String {
        ProcFile.readText(logPath, limit: 1 << 20) ?? ""
    }

    /// Stops the server (SIGTERM, then SIGKILL after 5 s).
    public func stop() {
        process?.terminate()
        process = nil
    }

    /// Polls `GET /-/ready` until it answers 200, the process exits, or the deadline passes. There is no
    /// event to wait for (Alertmanager prints nothing on readiness at `warn`), so this asks every 50 ms.
    private func waitUntilReady(timeoutMilliseconds: Int) -> Bool {
        let client = HTTPClient(timeoutMilliseconds: 1000)
        defer { client.close() }
        let deadline = Clock.monotonicNanoseconds() + UInt64(timeoutMilliseconds) * 1_000_000
        while Clock.monotonicNanoseconds() < deadline {
            if case .success(let response) = client.get(url: url + "/-/ready"), response.status == 200 { return true }
            // Exited (the port was taken, a bad flag): waiting longer is pointless.
            if let process, process.wait(timeoutMilliseconds: 50) != nil { return false }
        }
        return false
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound with port 0, read back, closed).
    static func freePort() throws(HarnessError) -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("Failed to create a socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard bound else {
            throw HarnessError("Failed to bind 127.0.0.1:0 for a free port: \(String(cString: strerror(errno)))")
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
