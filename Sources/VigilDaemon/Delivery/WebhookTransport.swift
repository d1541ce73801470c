import VigilCore
import VigilRules
import VigilSystem

/// `type: webhook`: one HTTP POST per alert, its JSON record as the body, over one kept-alive libcurl
/// connection (see `HTTPClient`).
///
/// Each request carries `Content-Type: application/json`, `X-Vigil-Id: <id>` (receivers drop a repeat of
/// an id they have seen: after a timeout the same alert may arrive twice, never zero times) and, when the
/// sink has a `secret_file:`, `<signature_header>: sha256=<hex HMAC-SHA256(secret, body)>` over the exact
/// bytes sent; then the rule file's `headers:` (which may replace the first two, not the signature).
///
/// What an answer means: 2xx delivered; 408, 425, 429, 5xx and no answer at all (refused, timeout, TLS)
/// retry later; a 3xx or another 4xx is a refusal for good (`.rejected`). Redirects are not followed: a
/// POST re-sent to a `Location` could go to a host the rule file never named.
///
/// Used by its sink's thread only.
final class WebhookTransport: DeliveryTransport, @unchecked Sendable {
    // @unchecked Sendable: built on the daemon's setup thread, then handed once to the sink thread, the
    // only one that uses it (the HTTPClient inside is one-thread-at-a-time).

    /// One alert per request: webhook receivers expect one JSON object per body.
    let batchLimit = 1
    private let spec: WebhookSink
    private let secret: [UInt8]?
    private let client: HTTPClient
    /// `spec.url` without userinfo and query, for messages.
    private let shownURL: String
    /// `spec.headers`, sorted by name so requests are the same each time.
    private let extraHeaders: [(String, String)]
    /// Lower-cased names in `extraHeaders`: those replace the transport's own `Content-Type`/`X-Vigil-Id`.
    private let overridden: Set<String>

    /// A transport for `spec`; `secret` is the content of its `secret_file:` (nil: requests are unsigned).
    init(spec: WebhookSink, secret: [UInt8]?, timeoutMilliseconds: Int) {
        self.spec = spec
        self.secret = secret
        client = HTTPClient(timeoutMilliseconds: timeoutMilliseconds)
        shownURL = HTTPClient.redacted(spec.url)
        extraHeaders = spec.headers.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        overridden = Set(spec.headers.keys.map { $0.lowercased() })
    }

    /// POSTs each record (normally one) in order; the first that is not delivered decides the outcome.
    func deliver(_ batch: [AlertRecord], lines: [[UInt8]]) -> DeliveryOutcome {
        for (record, line) in zip(batch, lines) {
            let outcome = post(id: record.id, line: line)
            guard outcome == .delivered else { return outcome }
        }
        return .delivered
    }

    /// Closes the connection.
    func close() {
        client.close()
    }

    /// One POST of `line` (its trailing newline dropped) with the headers and signature.
    private func post(id: String, line: [UInt8]) -> DeliveryOutcome {
        let body = line.last == UInt8(ascii: "\n") ? Array(line.dropLast()) : line
        var headers: [(String, String)] = []
        headers.reserveCapacity(extraHeaders.count + 3)
        if !overridden.contains("content-type") { headers.append(("Content-Type", "application/json")) }
        if !overridden.contains("x-vigil-id") { headers.append(("X-Vigil-Id", id)) }
        let signatureName = spec.signatureHeader.lowercased()
        for header in extraHeaders where !(secret != nil && header.0.lowercased() == signatureName) {
            headers.append(header)
        }
        if let secret {
            headers.append((spec.signatureHeader, "sha256=" + HMAC.hex(HMAC.sha256(key: secret, message: body))))
        }
        switch client.post(url: spec.url, headers: headers, body: body) {
        case .failure(let error):
            return .retry("webhook \(error)")
        case .success(let response):
            return HTTPAnswer.outcome(response, what: "webhook POST '\(shownURL)'", detail: nil)
        }
    }
}

/// What an HTTP status means for a delivery, shared by the webhook and Alertmanager transports.
enum HTTPAnswer {
    /// 2xx: delivered. 408, 425, 429 and 5xx: retry (the receiver is busy, restarting, or rate-limiting).
    /// 3xx: rejected, naming where it points (redirects are not followed). Other statuses: rejected.
    /// `what` names the request (`webhook POST 'https://…'`); `detail` is appended to a refusal (the
    /// receiver's own explanation, already one line and short). Neither may hold a record's content.
    static func outcome(_ response: HTTPResponse, what: String, detail: String?) -> DeliveryOutcome {
        let status = response.status
        let suffix = detail.map { ": \($0)" } ?? ""
        switch status {
        case 200..<300:
            return .delivered
        case 408, 425, 429, 500..<600:
            return .retry("\(what): HTTP \(status)\(suffix); will retry")
        case 300..<400:
            let target = response.redirectURL.map { " to '\(HTTPClient.redacted($0))'" } ?? ""
            return .rejected(
                "\(what): HTTP \(status), a redirect\(target); redirects are not followed, set url: to the final URL"
            )
        default:
            return .rejected("\(what): HTTP \(status)\(suffix); the receiver refused the alert")
        }
    }
}
