import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// What an HTTP server answered: the status and the start of the body.
public struct HTTPResponse: Sendable {
    /// The HTTP status code (200, 404, 503 …).
    public var status: Int
    /// The start of the body, up to the client's `bodyLimit` (64 KiB by default; the rest is read, so the
    /// connection can be reused, and dropped): a bound on what a hostile server can make us hold.
    public var body: [UInt8]
    /// The `Location` of a 3xx answer, resolved against the request URL (`CURLINFO_REDIRECT_URL`); nil for
    /// other answers. Redirects are never followed: a webhook that moved must be configured at its new URL.
    public var redirectURL: String?

    /// A response, for callers' tests; `HTTPClient` makes the real ones.
    public init(status: Int, body: [UInt8], redirectURL: String? = nil) {
        self.status = status
        self.body = body
        self.redirectURL = redirectURL
    }

    /// The body as text (ill-formed UTF-8 replaced), for error messages and JSON decoding in tests.
    public var text: String { String(decoding: body, as: UTF8.self) }
}

/// Why a request got no HTTP answer at all (no connection, a timeout, a TLS failure): one line naming the
/// method, the URL (without its user, password and query, which may hold secrets) and curl's reason.
public struct HTTPError: Error, Sendable, CustomStringConvertible {
    /// `GET` or `POST`.
    public let method: String
    /// The URL without userinfo and query; see `HTTPClient.redacted(_:)`.
    public let url: String
    /// curl's explanation (its error buffer, or `curl_easy_strerror` when that is empty).
    public let reason: String
    /// The request ran out of time (`CURLE_OPERATION_TIMEDOUT`): while connecting, or waiting for the answer.
    public let isTimeout: Bool
    /// No connection could be made: refused, unreachable, or the name did not resolve
    /// (`CURLE_COULDNT_CONNECT`, `CURLE_COULDNT_RESOLVE_HOST`, `CURLE_COULDNT_RESOLVE_PROXY`).
    public let isConnect: Bool

    /// An error with every field given.
    public init(method: String, url: String, reason: String, isTimeout: Bool = false, isConnect: Bool = false) {
        self.method = method
        self.url = url
        self.reason = reason
        self.isTimeout = isTimeout
        self.isConnect = isConnect
    }

    /// `POST 'http://127.0.0.1:9093/api/v2/alerts': Failed to connect to 127.0.0.1 port 9093 …`, one line.
    public var description: String { "\(method) '\(url)': \(reason)" }
}

/// A blocking HTTP/1.1 client over one libcurl easy handle (see `man 3 libcurl-easy`), reused for every
/// request so that the connection to a receiver stays open between alerts (keep-alive) and TLS is
/// negotiated once.
///
/// Why libcurl: webhooks of chat and paging services are https, and a hand-written HTTP parser or
/// SwiftNIO's client (minutes of build, an event loop per process) would be worse for a daemon whose
/// sinks each block on their own thread anyway.
///
/// The handle is set up once: `CURLOPT_NOSIGNAL` (curl must not use `SIGALRM` for DNS timeouts in a
/// threaded process), `CURLOPT_TIMEOUT_MS` and `CURLOPT_CONNECTTIMEOUT_MS` (the whole request, and the
/// connection, each bounded by the sink's timeout), no redirects followed (`CURLOPT_FOLLOWLOCATION` 0),
/// TCP keep-alive probes (`CURLOPT_TCP_KEEPALIVE`, so a silently dropped idle connection is noticed),
/// and only http and https (`CURLOPT_PROTOCOLS_STR`: a `file://` or `gopher://` URL in a rule file is
/// refused, not fetched). POSTs send `Expect:` empty, so curl never waits a second for
/// `100 Continue` before sending a body over 1 KiB.
///
/// Not thread-safe: one thread at a time (a sink's own thread) uses a client.
public final class HTTPClient: @unchecked Sendable {
    // @unchecked Sendable: never shared; a client may be made on one thread and handed to the one that uses
    // it (libcurl allows a handle to move between threads, never to be used by two at once).
    /// The curl handle; nil after `close()` or when `curl_easy_init` failed.
    private var handle: UnsafeMutableRawPointer?
    /// `CURLOPT_ERRORBUFFER`: curl writes its detailed reason here on failure (`CURL_ERROR_SIZE` bytes).
    private let errorBuffer: UnsafeMutablePointer<CChar>
    /// Where the write callback puts the body; its address is `CURLOPT_WRITEDATA`, so it lives as long as
    /// the handle.
    private let sink: BodyBuffer

    /// Runs `curl_global_init` once per process (through `pthread_once` in the shim). `init` calls it too;
    /// call it early from the main thread anyway, before threads start, as libcurl advises.
    public static func globalInit() {
        _ = CVigilLinux_curl_global_init()
    }

    /// A client whose requests each take at most `timeoutMilliseconds` (connecting included), sending
    /// `User-Agent: userAgent`, keeping the first `bodyLimit` bytes of each answer (64 KiB: a sink reads
    /// only a status and an error text; a test reading Alertmanager's whole alert list asks for more).
    /// With `unixSocketPath`, every request goes over that Unix stream socket (`CURLOPT_UNIX_SOCKET_PATH`)
    /// whatever the URL's host: how `vigil status` reaches the daemon's status socket.
    public init(
        timeoutMilliseconds: Int,
        userAgent: String = "vigil",
        bodyLimit: Int = 64 << 10,
        unixSocketPath: String? = nil
    ) {
        Self.globalInit()
        sink = BodyBuffer(limit: max(0, bodyLimit))
        let size = CVigilLinux_curl_error_size()
        errorBuffer = .allocate(capacity: size)
        errorBuffer.initialize(repeating: 0, count: size)
        handle = curl_easy_init()
        guard let handle else { return }
        let timeout = max(1, timeoutMilliseconds)
        _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_NOSIGNAL, 1)
        _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_TIMEOUT_MS, timeout)
        _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout)
        _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_FOLLOWLOCATION, 0)
        _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_TCP_KEEPALIVE, 1)
        _ = CVigilLinux_curl_setopt_string(handle, CURLOPT_PROTOCOLS_STR, "http,https")
        _ = CVigilLinux_curl_setopt_string(handle, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        _ = CVigilLinux_curl_setopt_string(handle, CURLOPT_USERAGENT, userAgent)
        _ = CVigilLinux_curl_setopt_ptr(handle, CURLOPT_ERRORBUFFER, errorBuffer)
        if let unixSocketPath { _ = CVigilLinux_curl_setopt_string(handle, CURLOPT_UNIX_SOCKET_PATH, unixSocketPath) }
        let context = Unmanaged.passUnretained(sink).toOpaque()
        _ = CVigilLinux_curl_setopt_write_callback(
            handle,
            { data, size, count, context in
                let total = size &* count
                guard let data, let context else { return total }
                let buffer = Unmanaged<BodyBuffer>.fromOpaque(context).takeUnretainedValue()
                buffer.append(UnsafeRawBufferPointer(start: data, count: total))
                // Always "all taken": a short count would abort the transfer and lose the connection.
                return total
            },
            context
        )
    }

    deinit {
        close()
        errorBuffer.deallocate()
    }

    /// POSTs `body` to `url` with `headers` (name, value) added to curl's own; waits for the answer.
    public func post(url: String, headers: [(String, String)], body: [UInt8]) -> Result<HTTPResponse, HTTPError> {
        perform(method: "POST", url: url, headers: headers, body: body)
    }

    /// GETs `url` with `headers` added; waits for the answer.
    public func get(url: String, headers: [(String, String)] = []) -> Result<HTTPResponse, HTTPError> {
        perform(method: "GET", url: url, headers: headers, body: nil)
    }

    /// Closes the connection and frees the handle (`curl_easy_cleanup`); later requests fail.
    public func close() {
        if let handle { curl_easy_cleanup(handle) }
        handle = nil
    }

    /// `url` without its userinfo (`user:password@`) and with its query and fragment replaced by `?…`, for
    /// messages and logs: tokens travel in both. A token in the path (some chat webhooks put one there)
    /// cannot be told from a path and stays.
    public static func redacted(_ url: String) -> String {
        var text = Substring(url)
        var cut = false
        if let mark = text.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            text = text[..<mark]
            cut = true
        }
        var result = String(text)
        if let scheme = text.firstRange(of: "://") {
            let authorityStart = scheme.upperBound
            let rest = text[authorityStart...]
            let authorityEnd = rest.firstIndex(of: "/") ?? rest.endIndex
            if let at = rest[..<authorityEnd].lastIndex(of: "@") {
                result = String(text[..<authorityStart]) + String(text[text.index(after: at)...])
            }
        }
        return cut ? result + "?…" : result
    }

    /// One request: headers checked and listed, body (POST) or `CURLOPT_HTTPGET`, `curl_easy_perform`, then
    /// the status and redirect target read back. Every per-request option is set each time, so one request
    /// never inherits another's method, body or headers.
    private func perform(
        method: String,
        url: String,
        headers: [(String, String)],
        body: [UInt8]?
    ) -> Result<HTTPResponse, HTTPError> {
        let shown = Self.redacted(url)
        guard let handle else {
            return .failure(
                HTTPError(method: method, url: shown, reason: "the HTTP client is closed (or curl_easy_init failed)")
            )
        }
        var list: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(list) }
        for (name, value) in headers {
            // A line break in a header (from a rule file) would let it inject headers or a second request.
            guard Self.isHeaderSafe(name, allowEmpty: false), Self.isHeaderSafe(value, allowEmpty: true) else {
                return .failure(
                    HTTPError(
                        method: method,
                        url: shown,
                        reason:
                            "header '\(name)' has an empty name or a control character; fix headers: in the rule file"
                    )
                )
            }
            // "Name;" is curl's spelling of a header with an empty value ("Name:" would remove it).
            list = curl_slist_append(list, value.isEmpty ? "\(name);" : "\(name): \(value)")
        }
        if body != nil { list = curl_slist_append(list, "Expect:") }
        errorBuffer[0] = 0
        sink.reset()
        _ = CVigilLinux_curl_setopt_string(handle, CURLOPT_URL, url)
        _ = CVigilLinux_curl_setopt_ptr(handle, CURLOPT_HTTPHEADER, list)
        defer { _ = CVigilLinux_curl_setopt_ptr(handle, CURLOPT_HTTPHEADER, nil) }
        let code: CURLcode
        if let body {
            _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_POST, 1)
            _ = CVigilLinux_curl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, Int64(body.count))
            // An empty body still needs a non-NULL pointer: with NULL, curl reads the body from stdin.
            let bytes = body.isEmpty ? [0] : body
            code = bytes.withUnsafeBytes { raw in
                _ = CVigilLinux_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, raw.baseAddress)
                defer { _ = CVigilLinux_curl_setopt_ptr(handle, CURLOPT_POSTFIELDS, nil) }
                return curl_easy_perform(handle)
            }
        } else {
            _ = CVigilLinux_curl_setopt_long(handle, CURLOPT_HTTPGET, 1)
            code = curl_easy_perform(handle)
        }
        guard code == CURLE_OK else {
            return .failure(failure(code, method: method, url: shown))
        }
        var status = 0
        _ = CVigilLinux_curl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        var location: UnsafePointer<CChar>?
        _ = CVigilLinux_curl_getinfo_string(handle, CURLINFO_REDIRECT_URL, &location)
        return .success(
            HTTPResponse(status: status, body: sink.bytes, redirectURL: location.map { String(cString: $0) })
        )
    }

    /// The `HTTPError` for a failed `curl_easy_perform`.
    private func failure(_ code: CURLcode, method: String, url: String) -> HTTPError {
        var reason = String(cString: errorBuffer)
        if reason.isEmpty { reason = String(cString: curl_easy_strerror(code)) }
        // curl's own text names the timeout ("Operation timed out after 300 milliseconds …").
        let isTimeout = code == CURLE_OPERATION_TIMEDOUT
        return HTTPError(
            method: method,
            url: url,
            reason: reason,
            isTimeout: isTimeout,
            isConnect: code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST
                || code == CURLE_COULDNT_RESOLVE_PROXY
        )
    }

    /// Whether `text` can go into a header line: no control characters (CR and LF above all), and not
    /// empty unless allowed.
    private static func isHeaderSafe(_ text: String, allowEmpty: Bool) -> Bool {
        if text.isEmpty { return allowEmpty }
        return !text.utf8.contains { $0 < 0x20 || $0 == 0x7F }
    }
}

/// The start of a response body, filled by curl's write callback. A class so that its address can be
/// `CURLOPT_WRITEDATA` for the life of the handle.
private final class BodyBuffer {
    /// The most bytes kept.
    let limit: Int
    /// The bytes kept so far.
    private(set) var bytes: [UInt8] = []

    init(limit: Int) { self.limit = limit }

    /// Empties the buffer for the next request, keeping its storage.
    func reset() {
        bytes.removeAll(keepingCapacity: true)
    }

    /// Keeps as much of `chunk` as fits under `limit`.
    func append(_ chunk: UnsafeRawBufferPointer) {
        let room = limit - bytes.count
        guard room > 0 else { return }
        bytes.append(contentsOf: chunk.prefix(room))
    }
}
