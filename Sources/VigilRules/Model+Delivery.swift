// The delivery side of the rule files: the sink kinds beyond JSON Lines and stdout (syslog, e-mail,
// webhooks, Alertmanager), how each retries and spools, and the per-rule noise control (dedup windows and
// reminders). `RuleFileParser+Sinks` and `RuleFileParser+Noise` fill them in; the daemon's delivery
// workers (`VigilDaemon/Delivery`) carry them out.

/// How a sink that talks to another program or server retries, spools and announces itself.
public struct DeliveryPolicy: Sendable, Equatable {
    /// `timeout:` — longest one delivery attempt may take (connect, send, answer), in milliseconds.
    public var timeoutMilliseconds: Int
    /// `retry: { initial: 1s, max: 5m }` — the delay after the first failed attempt, doubled after each
    /// further failure up to `retryMaximumMilliseconds`.
    public var retryInitialMilliseconds: Int
    public var retryMaximumMilliseconds: Int
    /// `spool: 64M` — the most bytes of undelivered alerts kept on disk for this sink. When it is full, new
    /// alerts for this sink are not spooled: they are counted, stay in the JSON Lines file, and a
    /// `vigil.spool_full` alert goes to the other sinks (see docs/alerts.md).
    public var spoolMaximumBytes: Int64
    /// `heartbeat: 60s` — send Vigil's always-firing `vigil-watchdog` alert to this sink on this period
    /// (the dead-man's switch Alertmanager users route to a heartbeat service); nil: none.
    public var heartbeatMilliseconds: Int?

    public init(
        timeoutMilliseconds: Int = 5000,
        retryInitialMilliseconds: Int = 1000,
        retryMaximumMilliseconds: Int = 300_000,
        spoolMaximumBytes: Int64 = 64 << 20,
        heartbeatMilliseconds: Int? = nil
    ) {
        self.timeoutMilliseconds = timeoutMilliseconds
        self.retryInitialMilliseconds = retryInitialMilliseconds
        self.retryMaximumMilliseconds = retryMaximumMilliseconds
        self.spoolMaximumBytes = spoolMaximumBytes
        self.heartbeatMilliseconds = heartbeatMilliseconds
    }
}

/// `type: syslog` — RFC 5424 datagrams to the local syslog socket (journald and rsyslog read it).
public struct SyslogSink: Sendable, Equatable {
    /// `socket:` — the datagram socket, resolved inside `--root` like every rule path.
    public var socket: String
    /// `facility:` — its number (`daemon` is 3, `local0` 16 …); rules name it.
    public var facility: Int
    /// `app_name:` — RFC 5424 APP-NAME (printable ASCII, at most 48 characters).
    public var appName: String

    public init(socket: String = "/dev/log", facility: Int = 3, appName: String = "vigil") {
        self.socket = socket
        self.facility = facility
        self.appName = appName
    }
}

/// `type: email` — messages handed to the host's sendmail interface (`sendmail -t -oi`, which every MTA
/// and msmtp provide).
public struct EmailSink: Sendable, Equatable {
    /// `to:` — one address or a list.
    public var to: [String]
    /// `from:` — nil: the MTA's default sender.
    public var from: String?
    /// `sendmail:` — argv of the sendmail interface; the program is an absolute path. The message (headers
    /// with the recipients, then the body) is written to its standard input.
    public var sendmail: [String]
    /// `subject:` — nil: `[{severity}] {host}: {rule}` for one alert, and a count for a digest.
    public var subject: MessageTemplate?
    /// `body:` — the text for each alert; nil: the message, then the alert's fields, one per line.
    public var body: MessageTemplate?
    /// `digest:` — the most alerts one message carries when several are waiting (1: one message each).
    public var digest: Int

    public init(
        to: [String],
        from: String? = nil,
        sendmail: [String] = ["/usr/sbin/sendmail", "-t", "-oi"],
        subject: MessageTemplate? = nil,
        body: MessageTemplate? = nil,
        digest: Int = 100
    ) {
        self.to = to
        self.from = from
        self.sendmail = sendmail
        self.subject = subject
        self.body = body
        self.digest = digest
    }
}

/// `type: webhook` — an HTTP POST of each alert's JSON record.
public struct WebhookSink: Sendable, Equatable {
    /// `url:` — `http://` or `https://`.
    public var url: String
    /// `headers:` — extra request headers, as written.
    public var headers: [String: String]
    /// `secret_file:` — a file holding the HMAC-SHA256 key (resolved inside `--root`); each request then
    /// carries `signatureHeader: sha256=<hex of HMAC(key, body)>`. nil: unsigned.
    public var secretFile: String?
    /// `signature_header:`.
    public var signatureHeader: String

    public init(
        url: String,
        headers: [String: String] = [:],
        secretFile: String? = nil,
        signatureHeader: String = "X-Vigil-Signature"
    ) {
        self.url = url
        self.headers = headers
        self.secretFile = secretFile
        self.signatureHeader = signatureHeader
    }
}

/// `type: alertmanager` — Prometheus Alertmanager's API v2 (`POST {url}/api/v2/alerts`).
public struct AlertmanagerSink: Sendable, Equatable {
    /// `url:` — the Alertmanager's base URL, such as `http://127.0.0.1:9093`.
    public var url: String
    /// `labels:` — static labels added to every alert (`env: prod`).
    public var labels: [String: String]
    /// `event_ttl:` — how long a one-off event stays active in Alertmanager (its `endsAt`), in milliseconds.
    public var eventTTLMilliseconds: Int
    /// `resend:` — how often alerts that are still firing are posted again, in milliseconds; must stay
    /// below Alertmanager's `resolve_timeout` (5 minutes by default), or it resolves them itself.
    public var resendMilliseconds: Int
    /// `generator_url:` — a link back, shown in Alertmanager's UI; nil: none.
    public var generatorURL: String?

    public init(
        url: String,
        labels: [String: String] = [:],
        eventTTLMilliseconds: Int = 300_000,
        resendMilliseconds: Int = 60_000,
        generatorURL: String? = nil
    ) {
        self.url = url
        self.labels = labels
        self.eventTTLMilliseconds = eventTTLMilliseconds
        self.resendMilliseconds = resendMilliseconds
        self.generatorURL = generatorURL
    }
}

/// `dedup: { key: "{path}", window: 60s, max: 1 }` — per rule: alerts with the same rendered key pass at
/// most `maximum` times per window; the rest are counted, and one summary record per key and window says
/// how many were held back ("999 more in the last 1 s"). Nothing is dropped without a count.
public struct NoiseControl: Sendable, Equatable {
    /// `key:` — a template over the alert's fields (`rule`, `host`, `severity`, `kind`, `path`, `message`,
    /// `fingerprint` and its labels); default `{fingerprint}` (the rule and the thing it is about).
    public var key: MessageTemplate
    /// `window:` — in milliseconds.
    public var windowMilliseconds: Int
    /// `max:` — alerts per key and window that pass (default 1).
    public var maximum: Int
    public var location: SourceLocation

    public init(key: MessageTemplate, windowMilliseconds: Int, maximum: Int = 1, location: SourceLocation) {
        self.key = key
        self.windowMilliseconds = windowMilliseconds
        self.maximum = maximum
        self.location = location
    }
}
