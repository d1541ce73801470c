internal import Yams

// `- sink:` items: the six sink types, their keys, and the values the delivery workers rely on. Everything
// a worker would otherwise have to reject at run time (a header with a line break, an address with a
// comma, an Alertmanager URL that already names the API) is refused here, at the key, before any alert
// is sent.

extension RuleFileParser {
    /// Every sink type, in the order the docs list them.
    static let sinkTypes = ["stdout", "jsonl", "syslog", "email", "webhook", "alertmanager"]
    /// Keys every sink takes.
    static let commonSinkKeys = ["sink", "type", "min_severity", "override"]
    /// Keys of the sinks that deliver through a spool (every type but stdout and jsonl).
    static let deliveryKeys = ["timeout", "retry", "spool", "heartbeat"]
    /// The keys each type takes beyond `commonSinkKeys`.
    static let sinkTypeKeys: [String: [String]] = [
        "stdout": [],
        "jsonl": ["path"],
        "syslog": deliveryKeys + ["socket", "facility", "app_name"],
        "email": deliveryKeys + ["to", "from", "sendmail", "subject", "body", "digest"],
        "webhook": deliveryKeys + ["url", "headers", "secret_file", "signature_header"],
        "alertmanager": deliveryKeys + ["url", "labels", "event_ttl", "resend", "generator_url"],
    ]
    /// Keys of `retry: { … }`.
    static let retryKeys = ["initial", "max"]
    /// syslog facility names and their RFC 5424 numbers (section 6.2.1); 12–15 (ntp, audit, alert,
    /// clock) have no name in syslog(3) on Linux and are left out.
    static let syslogFacilities: [(name: String, number: Int)] = [
        ("kern", 0), ("user", 1), ("mail", 2), ("daemon", 3), ("auth", 4), ("syslog", 5), ("lpr", 6), ("news", 7),
        ("uucp", 8), ("cron", 9), ("authpriv", 10), ("ftp", 11), ("local0", 16), ("local1", 17), ("local2", 18),
        ("local3", 19), ("local4", 20), ("local5", 21), ("local6", 22), ("local7", 23),
    ]
    /// Request headers the webhook worker writes itself; a second copy from `headers:` would make the
    /// request ambiguous (two lengths, two hosts) or mislabel the JSON body.
    static let reservedHeaders = ["content-type", "content-length", "transfer-encoding", "host", "connection"]
    /// Alertmanager labels Vigil sets on every alert; `labels:` may not override them.
    static let reservedAlertLabels = ["alertname", "host", "severity"]
    /// The smallest `spool:`: a few alerts' worth, below which the spool would fill at the first outage.
    static let smallestSpool: UInt64 = 64 << 10
    /// Alertmanager's default `resolve_timeout`: alerts not posted again within it are resolved.
    static let alertmanagerResolveTimeout = 300_000

    /// Parses a `- sink:` item.
    mutating func parseSink(_ mapping: Node.Mapping, at item: Node) {
        guard let nameNode = mapping.first?.value else { return }
        let errorsBefore = errorCount
        let location = item.location(in: file)
        let name = parseName(nameNode, label: "sink name")
        let context = Self.describe("sink", name)
        // With a known type, unknown keys are matched against that type's keys only; keys of other types
        // are reported by `reportForeignSinkKeys`, naming the types that take them.
        let writtenType = mapping.first { $0.key.scalar?.string == "type" }?.value.scalar?.string
        let ownKeys = writtenType.flatMap { Self.sinkTypeKeys[$0] }.map { Self.commonSinkKeys + $0 } ?? Self.sinkKeys
        let (keys, _) = checkKeys(
            mapping,
            allowed: ownKeys,
            ignoring: Self.sinkKeys.filter { !ownKeys.contains($0) },
            context: context
        )

        var minimumSeverity = Severity.info
        if let (_, node) = keys["min_severity"], let text = parseString(node, key: "min_severity") {
            if let severity = Severity(rawValue: text) {
                minimumSeverity = severity
            } else {
                let names = Severity.allCases.map(\.rawValue)
                error("min_severity '\(text)' is not known" + Spelling.hint(for: text, among: names), at: node)
            }
        }

        var kind: SinkKind?
        var delivery = DeliveryPolicy()
        if let (_, typeNode) = keys["type"], let type = parseString(typeNode, key: "type") {
            if Self.sinkTypes.contains(type) {
                reportForeignSinkKeys(mapping, type: type)
                if !["stdout", "jsonl"].contains(type) { delivery = parseDeliveryPolicy(keys) }
                kind = parseSinkKind(type, keys: keys, context: context, at: location)
            } else {
                error(
                    "sink type '\(type)' is not known" + Spelling.hint(for: type, among: Self.sinkTypes),
                    at: typeNode
                )
            }
        } else if keys["type"] == nil {
            error("\(context) has no type:; expected one of: \(Self.sinkTypes.joined(separator: ", "))", at: location)
        }
        guard let name else { return }
        var draft = SinkDraft(
            name: name,
            nameLocation: nameNode.location(in: file),
            location: location,
            spec: nil,
            override: parseOverride(keys)
        )
        if errorCount == errorsBefore, let kind {
            draft.spec = SinkSpec(
                name: name,
                location: location,
                kind: kind,
                minimumSeverity: minimumSeverity,
                delivery: delivery
            )
        }
        sinks.append(draft)
    }

    /// The type-specific part of a sink whose `type:` is known; nil when it had errors.
    private mutating func parseSinkKind(
        _ type: String,
        keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> SinkKind? {
        switch type {
        case "stdout":
            return .stdout
        case "jsonl":
            guard let (_, pathNode) = keys["path"] else {
                error("\(context) of type jsonl has no path:; add path: /var/log/vigil/alerts.jsonl", at: location)
                return nil
            }
            return parsePath(pathNode, key: "sink path", allowGlob: false).map { .jsonl(path: $0.normalised) }
        case "syslog":
            return parseSyslogSink(keys).map(SinkKind.syslog)
        case "email":
            return parseEmailSink(keys, context: context, at: location).map(SinkKind.email)
        case "webhook":
            return parseWebhookSink(keys, context: context, at: location).map(SinkKind.webhook)
        default:
            return parseAlertmanagerSink(keys, context: context, at: location).map(SinkKind.alertmanager)
        }
    }

    /// Reports keys that another sink type takes, naming the types that do; in the order written.
    private mutating func reportForeignSinkKeys(_ mapping: Node.Mapping, type: String) {
        let own = Self.commonSinkKeys + (Self.sinkTypeKeys[type] ?? [])
        for (keyNode, _) in mapping {
            guard let key = keyNode.scalar?.string, Self.sinkKeys.contains(key), !own.contains(key) else { continue }
            if key == "path" && type == "stdout" {
                error("'path' does not apply to stdout sinks; remove it, or use type: jsonl", at: keyNode)
            } else if Self.deliveryKeys.contains(key) {
                error(
                    "'\(key)' applies only to sinks delivered through a spool (syslog, email, webhook, alertmanager); this sink is \(Self.describeSinkType(type)), written in place, so remove \(key):",
                    at: keyNode
                )
            } else {
                let owners = Self.sinkTypes.filter { Self.sinkTypeKeys[$0]?.contains(key) == true }
                error(
                    "'\(key)' is a key of \(owners.joined(separator: " and ")) sinks; this sink is \(Self.describeSinkType(type)), so remove \(key): (or change type:)",
                    at: keyNode
                )
            }
        }
    }

    /// "a webhook", "an email sink": how errors name a sink's type.
    static func describeSinkType(_ type: String) -> String {
        switch type {
        case "webhook": "a webhook"
        case "email", "alertmanager": "an \(type) sink"
        default: "a \(type) sink"
        }
    }

    // MARK: Delivery policy

    /// `timeout:`, `retry:`, `spool:` and `heartbeat:`; defaults for the keys not given.
    private mutating func parseDeliveryPolicy(_ keys: [String: (key: Node, value: Node)]) -> DeliveryPolicy {
        var policy = DeliveryPolicy()
        if let (_, node) = keys["timeout"], let timeout = parseDuration(node, key: "timeout", within: 100...300_000) {
            policy.timeoutMilliseconds = timeout
        }
        if let (_, node) = keys["retry"] { parseRetry(node, into: &policy) }
        if let (_, node) = keys["spool"], let bytes = parseSize(node, key: "spool", example: "64M") {
            if bytes < Self.smallestSpool {
                error(
                    "spool \(node.scalar?.string ?? "") is smaller than the minimum of 64k; expected a size of at least 64k, such as 64M",
                    at: node
                )
            } else {
                policy.spoolMaximumBytes = Int64(bytes)
            }
        }
        if let (_, node) = keys["heartbeat"],
            let heartbeat = parseDuration(node, key: "heartbeat", within: 1000...RuleDuration.longestMilliseconds)
        {
            policy.heartbeatMilliseconds = heartbeat
        }
        return policy
    }

    /// `retry: { initial: 1s, max: 5m }`: each part within its bounds, and `max` not below `initial`
    /// (counting a part not given at its default).
    private mutating func parseRetry(_ node: Node, into policy: inout DeliveryPolicy) {
        guard case .mapping(let mapping) = node else {
            error("'retry' is \(node.kindDescription); expected a map such as { initial: 1s, max: 5m }", at: node)
            return
        }
        let (keys, _) = checkKeys(mapping, allowed: Self.retryKeys, context: "retry:")
        let range = 10...RuleDuration.longestMilliseconds
        var initial: Int? = policy.retryInitialMilliseconds
        var maximum: Int? = policy.retryMaximumMilliseconds
        if let (_, value) = keys["initial"] { initial = parseDuration(value, key: "initial", within: range) }
        if let (_, value) = keys["max"] { maximum = parseDuration(value, key: "max", within: range) }
        guard let initial, let maximum else { return }
        if maximum < initial {
            let initialText = Self.boundText(initial)
            let maximumText = Self.boundText(maximum) + (keys["max"] == nil ? " (the default)" : "")
            let at = keys["max"]?.value ?? keys["initial"]?.value ?? node
            error(
                "retry max: \(maximumText) is shorter than initial: \(initialText); raise max: to at least \(initialText), or lower initial:",
                at: at
            )
            return
        }
        policy.retryInitialMilliseconds = initial
        policy.retryMaximumMilliseconds = maximum
    }

    // MARK: syslog

    /// `socket:`, `facility:` and `app_name:`; nil when any had errors.
    private mutating func parseSyslogSink(_ keys: [String: (key: Node, value: Node)]) -> SyslogSink? {
        let errorsBefore = errorCount
        var sink = SyslogSink()
        if let (_, node) = keys["socket"], let path = parsePath(node, key: "socket", allowGlob: false) {
            sink.socket = path.normalised
        }
        if let (_, node) = keys["facility"], let text = parseString(node, key: "facility") {
            if let facility = Self.syslogFacilities.first(where: { $0.name == text }) {
                sink.facility = facility.number
            } else {
                let names = Self.syslogFacilities.map(\.name)
                error("facility '\(text)' is not known" + Spelling.hint(for: text, among: names), at: node)
            }
        }
        if let (_, node) = keys["app_name"], let text = parseString(node, key: "app_name") {
            if let problem = Self.appNameProblem(text) {
                error(
                    "app_name '\(text)' \(problem); expected 1 to 48 printable ASCII characters without spaces, such as vigil",
                    at: node
                )
            } else {
                sink.appName = text
            }
        }
        return errorCount == errorsBefore ? sink : nil
    }

    /// Why `text` cannot be an RFC 5424 APP-NAME (1*48PRINTUSASCII: `!` to `~`), or nil when it can.
    static func appNameProblem(_ text: String) -> String? {
        if text.unicodeScalars.contains(where: { $0 == " " || $0 == "\t" }) { return "has a space" }
        if !text.unicodeScalars.allSatisfy({ (0x21...0x7E).contains($0.value) }) {
            return "has a character that is not printable ASCII"
        }
        if text.utf8.count > 48 { return "is \(text.utf8.count) characters long" }
        return nil
    }

    // MARK: email

    /// `to:`, `from:`, `sendmail:`, `subject:`, `body:` and `digest:`; nil when any had errors or `to:` is
    /// missing.
    private mutating func parseEmailSink(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> EmailSink? {
        let errorsBefore = errorCount
        var recipients: [String] = []
        if let (_, node) = keys["to"] {
            for (text, element) in parseStringList(node, key: "to") ?? [] {
                if checkAddress(text, at: element, key: "to") { recipients.append(text) }
            }
        } else {
            error("\(context) of type email has no to:; add to: ops@example.com (or a list of addresses)", at: location)
        }
        var sink = EmailSink(to: recipients)
        if let (_, node) = keys["from"], let text = parseString(node, key: "from", expected: "an e-mail address"),
            checkAddress(text, at: node, key: "from")
        {
            sink.from = text
        }
        if let (_, node) = keys["sendmail"], let argv = parseSendmail(node) { sink.sendmail = argv }
        if let (_, node) = keys["subject"] {
            sink.subject = parseFreeTemplate(node, key: "subject", example: "\"[{severity}] {host}: {rule}\"")
            if let subject = sink.subject, subject.source.unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) {
                error("'subject' has a line break; a mail subject is one line, so write it on one line", at: node)
            }
        }
        if let (_, node) = keys["body"] {
            sink.body = parseFreeTemplate(node, key: "body", example: "\"{message}\"")
        }
        if let (_, node) = keys["digest"], let digest = parseWholeNumber(node, what: "digest", range: 1...1000) {
            sink.digest = digest
        }
        return errorCount == errorsBefore ? sink : nil
    }

    /// Reports an address (`to:`, `from:`) that is not a bare `local@domain`; true when it is one.
    ///
    /// The address goes into a header of the message sendmail reads (`-t`), so a line break would add
    /// headers and a comma or `<…>` would add recipients: those are refused, not escaped.
    private mutating func checkAddress(_ text: String, at node: Node, key: String) -> Bool {
        guard let problem = Self.addressProblem(text) else { return true }
        error(
            "address '\(text)' in \(key): \(problem); expected a bare address local@domain such as ops@example.com, one per entry",
            at: node
        )
        return false
    }

    /// Why `text` is not a bare e-mail address, or nil when it is one.
    static func addressProblem(_ text: String) -> String? {
        if text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            return "contains a line break or a control character"
        }
        if let special = text.first(where: { ",<>\"".contains($0) }) {
            return "contains '\(special)' (display names and several addresses in one entry are not supported)"
        }
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace }) { return "contains a blank" }
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else {
            return parts.count == 1 ? "has no '@'" : "has more than one '@'"
        }
        if parts[0].isEmpty { return "has nothing before the '@'" }
        if parts[1].isEmpty { return "has no domain after the '@'" }
        return nil
    }

    /// `sendmail:` — a program path (then `-t -oi` are added) or a whole argv whose first entry is one.
    private mutating func parseSendmail(_ node: Node) -> [String]? {
        let program: Node
        var arguments: [String]
        switch node {
        case .scalar(let scalar) where scalar.value != .null:
            program = node
            arguments = ["-t", "-oi"]
        case .sequence:
            guard let entries = parseStringList(node, key: "sendmail"), let first = entries.first else { return nil }
            program = first.1
            arguments = entries.dropFirst().map(\.0)
        default:
            error(
                "'sendmail' is \(node.kindDescription); expected a program path such as /usr/sbin/sendmail, or a whole command such as [/usr/bin/msmtp, -t, --read-envelope-from]",
                at: node
            )
            return nil
        }
        let text = program.scalar?.string ?? ""
        guard text.hasPrefix("/") else {
            error(
                "sendmail program '\(text)' is not an absolute path; write the full path, such as /usr/sbin/sendmail",
                at: program
            )
            return nil
        }
        guard let path = parsePath(program, key: "sendmail program", allowGlob: false) else { return nil }
        arguments.insert(path.normalised, at: 0)
        return arguments
    }

    /// A template whose fields are not known in advance (`subject:`, `body:`: alert labels vary by rule
    /// kind), so any `{identifier}` is allowed; a field name with other characters is a typo.
    private mutating func parseFreeTemplate(_ node: Node, key: String, example: String) -> MessageTemplate? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error("'\(key)' is \(node.kindDescription); expected a string such as \(example)", at: node)
            return nil
        }
        guard let template = parseTemplateText(scalar, node: node, allowedFields: nil, context: key) else {
            return nil
        }
        var failed = false
        for located in TemplateParser.parse(scalar.string, context: key).segments {
            guard case .field(let name) = located.segment, !Self.isIdentifier(name) else { continue }
            error(
                "field '{\(name)}' in \(key) is not a field name; use letters, digits and '_', such as {rule}, or write '{{' for a literal brace",
                at: templateLocation(scalar, node: node, offset: located.offset)
            )
            failed = true
        }
        return failed ? nil : template
    }

    /// `[a-zA-Z_][a-zA-Z0-9_]*`: field names, and Prometheus label names.
    static func isIdentifier(_ text: String) -> Bool {
        guard let first = text.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            return false
        }
        return text.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    // MARK: webhook

    /// `url:`, `headers:`, `secret_file:` and `signature_header:`; nil when any had errors or `url:` is
    /// missing.
    private mutating func parseWebhookSink(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> WebhookSink? {
        let errorsBefore = errorCount
        var url: String?
        if let (_, node) = keys["url"] {
            url = parseHTTPURL(node, key: "url", example: "https://hooks.example.com/vigil")
        } else {
            error("\(context) of type webhook has no url:; add url: https://hooks.example.com/vigil", at: location)
        }
        var sink = WebhookSink(url: url ?? "")
        if let (_, node) = keys["signature_header"], let text = parseString(node, key: "signature_header") {
            if !Self.isToken(text) {
                error(
                    "signature_header '\(text)' is not a header name; use letters, digits and '-', such as X-Vigil-Signature",
                    at: node
                )
            } else if Self.reservedHeaders.contains(text.lowercased()) {
                error(
                    "signature_header '\(text)' is a header vigil sets itself; choose another name, such as X-Vigil-Signature",
                    at: node
                )
            } else {
                sink.signatureHeader = text
            }
        }
        if let (_, node) = keys["headers"], let headers = parseHeaders(node, signatureHeader: sink.signatureHeader) {
            sink.headers = headers
        }
        if let (_, node) = keys["secret_file"], let path = parsePath(node, key: "secret_file", allowGlob: false) {
            sink.secretFile = path.normalised
        }
        return errorCount == errorsBefore && url != nil ? sink : nil
    }

    /// `headers:` — a map of header names (RFC 7230 tokens, each once ignoring case) to values without line
    /// breaks; the headers vigil writes itself and the signature header are refused.
    private mutating func parseHeaders(_ node: Node, signatureHeader: String) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            error(
                "'headers' is \(node.kindDescription); expected a map of header names to values, such as { Authorization: \"Bearer …\" }",
                at: node
            )
            return nil
        }
        var headers: [String: String] = [:]
        var seen: [String: String] = [:]
        var failed = false
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string, !name.isEmpty else {
                error("a header name is \(keyNode.kindDescription); expected a name such as Authorization", at: keyNode)
                failed = true
                continue
            }
            let lowered = name.lowercased()
            if !Self.isToken(name) {
                error(
                    "header name '\(name)' is not a valid HTTP header name; use letters, digits and '-', such as X-Api-Key",
                    at: keyNode
                )
                failed = true
            } else if lowered == "content-type" {
                error(
                    "header 'Content-Type' is set by vigil (application/json, the body is the alert's JSON record); remove it",
                    at: keyNode
                )
                failed = true
            } else if Self.reservedHeaders.contains(lowered) {
                error("header '\(name)' is set by vigil for each request; remove it", at: keyNode)
                failed = true
            } else if lowered == signatureHeader.lowercased() {
                error(
                    "header '\(name)' is the signature header, which vigil computes from secret_file:; remove it, or set signature_header: to another name",
                    at: keyNode
                )
                failed = true
            } else if let first = seen[lowered] {
                error(
                    "header '\(name)' is given twice ('\(first)' and '\(name)'; header names ignore case); remove one",
                    at: keyNode
                )
                failed = true
            }
            seen[lowered] = seen[lowered] ?? name
            guard let value = parseString(valueNode, key: name, expected: "the header's value as a string") else {
                failed = true
                continue
            }
            if value.unicodeScalars.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) {
                error(
                    "the value of header '\(name)' has a line break or a control character; write it on one line",
                    at: valueNode
                )
                failed = true
                continue
            }
            headers[name] = value
        }
        return failed ? nil : headers
    }

    /// An RFC 7230 `token` (header names): one or more of the letters, digits and ``!#$%&'*+-.^_`|~``.
    static func isToken(_ text: String) -> Bool {
        !text.isEmpty
            && text.unicodeScalars.allSatisfy { scalar in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || "!#$%&'*+-.^_`|~".unicodeScalars.contains(scalar))
            }
    }

    /// An `http://` or `https://` URL with a host, without blanks or line breaks; reported at `key`.
    private mutating func parseHTTPURL(_ node: Node, key: String, example: String) -> String? {
        guard let text = parseString(node, key: key, expected: "a URL such as \(example)") else { return nil }
        if let problem = Self.httpURLProblem(text) {
            error("\(key) '\(text)' \(problem); write e.g. \(example)", at: node)
            return nil
        }
        return text
    }

    /// Why `text` is not an `http(s)://host[:port][/…]` URL, or nil when it is one.
    static func httpURLProblem(_ text: String) -> String? {
        if text.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            return "contains a blank, a line break or a control character (encode a space as %20)"
        }
        let lowered = text.lowercased()
        guard let scheme = ["http://", "https://"].first(where: { lowered.hasPrefix($0) }) else {
            return "is not an http:// or https:// URL"
        }
        let rest = text.dropFirst(scheme.count)
        var authority = rest.prefix { !"/?#".contains($0) }
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var host = authority
        var port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return "has an IPv6 host without its closing ']'" }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return "has text after its IPv6 host" }
                port = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        }
        if host.isEmpty || host == "[]" { return "has no host" }
        if let port {
            guard let number = Int(port), (1...65535).contains(number), port.allSatisfy(\.isASCII) else {
                return "has port '\(port)', which is not a number from 1 to 65535"
            }
        }
        return nil
    }

    // MARK: Alertmanager

    /// `url:`, `labels:`, `event_ttl:`, `resend:` and `generator_url:`; nil when any had errors or `url:` is
    /// missing.
    private mutating func parseAlertmanagerSink(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> AlertmanagerSink? {
        let errorsBefore = errorCount
        let example = "http://127.0.0.1:9093"
        var url: String?
        if let (_, node) = keys["url"], let text = parseHTTPURL(node, key: "url", example: example) {
            url = checkAlertmanagerBase(text, at: node, example: example)
        } else if keys["url"] == nil {
            error("\(context) of type alertmanager has no url:; add url: \(example)", at: location)
        }
        var sink = AlertmanagerSink(url: url ?? "")
        if let (_, node) = keys["labels"], let labels = parseAlertLabels(node) { sink.labels = labels }
        let range = 1000...RuleDuration.longestMilliseconds
        if let (_, node) = keys["event_ttl"], let ttl = parseDuration(node, key: "event_ttl", within: range) {
            sink.eventTTLMilliseconds = ttl
        }
        if let (_, node) = keys["resend"], let resend = parseDuration(node, key: "resend", within: range) {
            sink.resendMilliseconds = resend
            if resend >= Self.alertmanagerResolveTimeout {
                warning(
                    "resend: \(node.scalar?.string ?? "") is not shorter than Alertmanager's default resolve_timeout of 5m, so Alertmanager may resolve alerts that are still firing between two posts; use a shorter resend: such as 60s (or raise resolve_timeout in alertmanager.yml)",
                    at: node
                )
            }
        }
        if let (_, node) = keys["generator_url"] {
            sink.generatorURL = parseHTTPURL(node, key: "generator_url", example: "https://wiki.example.com/vigil")
        }
        return errorCount == errorsBefore && url != nil ? sink : nil
    }

    /// The base URL without trailing `/` (the worker appends `/api/v2/alerts`); reports a URL that names
    /// the API already, or has a query or fragment the appended path would land in.
    private mutating func checkAlertmanagerBase(_ text: String, at node: Node, example: String) -> String? {
        var base = Substring(text)
        while base.hasSuffix("/") { base = base.dropLast() }
        let path = base.lowercased()
        if let api = ["/api/v2/alerts", "/api/v1/alerts"].first(where: { path.hasSuffix($0) }) {
            error(
                "url '\(text)' ends in \(api); give the Alertmanager's base URL only, such as \(example) (vigil posts to its /api/v2/alerts)",
                at: node
            )
            return nil
        }
        if base.contains("?") || base.contains("#") {
            error(
                "url '\(text)' has a query or a fragment; give the Alertmanager's base URL only, such as \(example)",
                at: node
            )
            return nil
        }
        return String(base)
    }

    /// `labels:` — a map of Prometheus label names to values; the labels vigil sets are refused.
    private mutating func parseAlertLabels(_ node: Node) -> [String: String]? {
        guard case .mapping(let mapping) = node else {
            error(
                "'labels' is \(node.kindDescription); expected a map of label names to values, such as { env: prod }",
                at: node
            )
            return nil
        }
        var labels: [String: String] = [:]
        var failed = false
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string else {
                error("a label name is \(keyNode.kindDescription); expected a name such as env", at: keyNode)
                failed = true
                continue
            }
            if !Self.isIdentifier(name) {
                error(
                    "label name '\(name)' is not a Prometheus label name; use letters, digits and '_', not starting with a digit, such as env",
                    at: keyNode
                )
                failed = true
            } else if Self.reservedAlertLabels.contains(name) || name.hasPrefix("vigil_") {
                error(
                    "label '\(name)' is set by vigil on every alert (alertname, host, severity and vigil_*); choose another name",
                    at: keyNode
                )
                failed = true
            }
            guard let value = parseString(valueNode, key: name, expected: "the label's value as a string") else {
                failed = true
                continue
            }
            labels[name] = value
        }
        return failed ? nil : labels
    }
}
