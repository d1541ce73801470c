import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Draws for the corpus, on the harness's fixed-seed SplitMix64 (no Foundation, no system randomness: every
/// run writes the same bytes).
extension SplitMix64 {
    /// Uniform in `0..<bound` (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(next(below: UInt64(bound))) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// True with probability `perMillion` / 1,000,000.
    mutating func chance(_ perMillion: Int) -> Bool { below(1_000_000) < perMillion }
}

/// The benchmark's log and rule sets: a log in the seed's unified format (`YYYY-MM-DD HH:MM:SS SERVICE LEVEL
/// [Component] message`; services UPLOAD, ANALYTICS, PROCESSING, POSTGRES; a few SSL/insecure lines as in the
/// seed, some lines with secrets) and sets of N patterns, each written both as Vigil log rules and as a
/// `grep -f` file. Patterns use only what POSIX ERE (GNU grep -E) and Vectorscan read alike: literals,
/// bracket classes, bounded repeats, alternation, groups; no `\d`/`\w`/`\b`, no `%` (fail2ban's config
/// interpolation) and no quote characters (YAML single quotes).
enum LogCorpus {
    static let logSeed: UInt64 = 0x5EED_0413
    static let patternSeed: UInt64 = 0x0000_0000_00C0_FFEE

    // MARK: Vocabulary shared by the log and the patterns, so patterns hit some lines

    static let users: [String] = {
        let first = [
            "ana", "ben", "carl", "dina", "eli", "fay", "gus", "hana", "ivan", "jin", "kai", "lea", "mina",
            "nils", "omar", "pia", "quin", "rosa", "sam", "tara", "uma", "vic", "wen", "xia", "yara", "zeno",
        ]
        var names: [String] = []
        for (index, name) in first.enumerated() {
            for suffix in 0..<8 { names.append("\(name)\(10 + (index * 7 + suffix * 13) % 90)") }
        }
        return names
    }()
    static let tables = [
        "events", "sessions", "uploads", "reports", "users", "orders", "invoices", "metrics",
        "pageviews", "clicks", "jobs", "audit_log", "partners", "devices", "payments", "refunds",
    ]
    static let buckets = ["cc-raw-eu", "cc-raw-us", "cc-reports", "cc-archive", "cc-exports", "cc-tmp"]
    static let jobs = [
        "daily_rollup", "hourly_rollup", "export_csv", "reindex", "gdpr_purge", "backfill",
        "partner_sync", "invoice_run", "churn_model", "dedupe", "thumbnailer", "geoip_refresh",
    ]
    static let resources = ["orders", "users", "reports", "uploads", "sessions", "invoices", "metrics", "health"]
    static let partners = [
        "api.analytics-partner.com", "metrics.analytics-partner.com", "ingest.adnet.io",
        "cdn.partner-cloud.net", "eu.collector.example",
    ]
    static let reasons = [
        "missing field", "bad timestamp", "duplicate id", "schema mismatch", "value out of range",
        "invalid utf8",
    ]
    static let errors = [
        "connection reset by peer", "timeout after 30000 ms", "503 Service Unavailable",
        "connection refused", "broken pipe", "TLS handshake failed",
    ]
    static let components: [String: [String]] = [
        "UPLOAD": ["SSLConnector", "HTTPClient", "Uploader", "S3Sink", "Chunker", "Billing", "Auth", "Api"],
        "ANALYTICS": ["Ingest", "Aggregator", "QueryEngine", "Scheduler", "Mailer", "Cache", "Api"],
        "PROCESSING": ["Worker", "Batch", "Queue", "Transformer", "Validator", "Exporter", "Orders"],
        "POSTGRES": ["checkpoint", "autovacuum", "conn", "auth", "stat", "wal"],
    ]
    static let services = ["UPLOAD", "ANALYTICS", "PROCESSING", "POSTGRES"]

    // MARK: The log

    /// Writes `lines` lines to `path`, or stops at the first line that makes it at least `bytes` long
    /// (the rotation scenario's 1 GiB log). The clock advances 0–2 s every `pace` lines (about `pace` lines
    /// a second; a 1 GiB day of the unified log is some 120 a second). Returns false when the file cannot be
    /// written.
    static func writeLog(path: String, lines: Int = .max, atLeastBytes bytes: Int = .max, pace: Int = 1) -> Bool {
        var random = SplitMix64(seed: logSeed)
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var written = 0
        var count = 0
        var seconds = 7 * 3600  // 2025-04-13 07:00:00, advancing a little per line
        while count < lines && written + out.count < bytes {
            count += 1
            let step = random.below(3)
            if count % pace == 0 { seconds += step }
            let day = 13 + seconds / 86_400
            let time = seconds % 86_400
            out += Array("2025-04-\(two(day)) \(two(time / 3600)):\(two(time / 60 % 60)):\(two(time % 60)) ".utf8)
            out += Array(line(&random).utf8)
            out.append(0x0A)
            if out.count >= 1 << 20 {
                guard (try? out.withUnsafeBytes { try Syscall.writeAll(fd, $0) }) != nil else { return false }
                written += out.count
                out.removeAll(keepingCapacity: true)
            }
        }
        return (try? out.withUnsafeBytes { try Syscall.writeAll(fd, $0) }) != nil
    }

    static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

    static func ip(_ random: inout SplitMix64) -> String {
        "10.\(random.below(4)).\(random.below(16)).\(random.below(256))"
    }

    static func hex(_ random: inout SplitMix64, _ digits: Int) -> String {
        let symbols = Array("0123456789abcdef")
        return String((0..<digits).map { _ in symbols[random.below(16)] })
    }

    /// A card number that passes Luhn (a Visa test range).
    static func card(_ random: inout SplitMix64) -> String {
        var digits = [4] + (0..<14).map { _ in random.below(10) }
        var sum = 0
        for (index, digit) in digits.reversed().enumerated() {
            var value = digit
            if index % 2 == 0 {
                value *= 2
                if value > 9 { value -= 9 }
            }
            sum += value
        }
        digits.append((10 - sum % 10) % 10)
        return digits.map(String.init).joined()
    }

    /// One line after the timestamp: `SERVICE LEVEL [Component] message`.
    static func line(_ random: inout SplitMix64) -> String {
        // The seed's findings, rare as in a real day: 1 in 5,000 lines each.
        if random.chance(200) {
            return "UPLOAD WARN [SSLConnector] SSL certificate verification disabled for endpoint: https://"
                + random.pick(partners)
        }
        if random.chance(200) { return "UPLOAD INFO [HTTPClient] Connected to external API with insecure flag" }
        // Secrets that a sanitize rule must mask: 1 in 500 lines.
        if random.chance(2_000) { return secretLine(&random) }
        let service = random.pick(services)
        let component = random.pick(components[service]!)
        let roll = random.below(1000)
        let level: String
        if service == "POSTGRES" {
            level = roll < 900 ? "LOG" : roll < 960 ? "WARNING" : roll < 995 ? "ERROR" : "FATAL"
        } else {
            level = roll < 700 ? "INFO" : roll < 850 ? "DEBUG" : roll < 950 ? "WARN" : roll < 995 ? "ERROR" : "FATAL"
        }
        return "\(service) \(level) [\(component)] " + message(service, level, &random)
    }

    static func message(_ service: String, _ level: String, _ random: inout SplitMix64) -> String {
        let failing = level == "ERROR" || level == "FATAL" || level == "WARN" || level == "WARNING"
        switch service {
        case "UPLOAD":
            switch random.below(failing ? 2 : 4) {
            case 0:
                return "Retrying upload \(hex(&random, 8))-\(hex(&random, 4)) after error: \(random.pick(errors))"
            case 1:
                let method = random.pick(["GET", "POST", "PUT", "DELETE"])
                let path =
                    "/api/v\(1 + random.below(3))/\(random.pick(resources))"
                    + (random.below(2) == 0 ? "/\(random.below(100_000))" : "")
                let status =
                    failing
                    ? random.pick([400, 401, 403, 404, 429, 500, 502, 503]) : random.pick([200, 201, 204, 304])
                return
                    "Request \(method) \(path) from \(ip(&random)):\(1024 + random.below(60_000)) status=\(status) duration=\(random.below(5_000))ms"
            case 2:
                let file = "\(random.pick(tables))_\(random.below(10_000)).\(random.pick(["csv", "json", "parquet"]))"
                return
                    "Uploaded file \(file) (\(random.below(50_000_000)) bytes) to bucket \(random.pick(buckets)) in \(random.below(9_000)) ms"
            default:
                return "Chunk \(1 + random.below(64))/64 of upload \(hex(&random, 8))-\(hex(&random, 4)) stored"
            }
        case "ANALYTICS":
            switch random.below(failing ? 2 : 4) {
            case 0:
                return
                    "Query q-\(hex(&random, 6)) on table \(random.pick(tables)) returned \(random.below(100_000)) rows in \(random.below(20_000)) ms"
            case 1:
                let key = "\(random.pick(["session", "user", "report"])):\(random.below(1_000_000))"
                return "Cache miss for key \(key) (ratio \(random.below(100)) pct)"
            case 2:
                return
                    "Ingested \(random.below(50_000)) events from \(random.pick(partners)) in \(random.below(3_000)) ms"
            default:
                return
                    "Scheduled job \(random.pick(jobs)) next run at \(two(random.below(24))):\(two(random.below(60)))"
            }
        case "PROCESSING":
            switch random.below(failing ? 2 : 5) {
            case 0:
                return "Validation failed for record \(random.below(10_000_000)): \(random.pick(reasons))"
            case 1:
                return
                    "Job \(random.pick(jobs)) finished in \(random.below(100_000)) ms: \(random.below(100_000)) records, \(failing ? 1 + random.below(500) : 0) errors"
            case 2:
                return
                    "Job \(random.pick(jobs)) started pid=\(1000 + random.below(60_000)) on worker-\(random.below(16))"
            case 3:
                return
                    "order ORD-202504\(two(1 + random.below(30)))-\(String(100_000 + random.below(900_000)).dropFirst()) processed"
            default:
                return "Queue depth \(random.below(5_000)) (high water \(5_000 + random.below(5_000)))"
            }
        default:  // POSTGRES
            if level == "FATAL" { return "password authentication failed for user \"\(random.pick(users))\"" }
            if level == "ERROR" { return "relation \"\(random.pick(tables))_old\" does not exist" }
            switch random.below(5) {
            case 0:
                return "checkpoint complete: wrote \(random.below(20_000)) buffers; 0 WAL file(s) added"
            case 1:
                return "connection received: host=\(ip(&random)) port=\(1024 + random.below(60_000))"
            case 2:
                return "connection authorized: user=\(random.pick(users)) database=analytics"
            case 3:
                let verb = random.pick(["SELECT", "UPDATE", "DELETE"])
                return
                    "duration: \(random.below(10_000)).\(random.below(1_000)) ms statement: \(verb) * FROM \(random.pick(tables)) WHERE id = \(random.below(1_000_000))"
            default:
                return
                    "automatic vacuum of table \"analytics.public.\(random.pick(tables))\": index scans: \(random.below(4))"
            }
        }
    }

    static func secretLine(_ random: inout SplitMix64) -> String {
        let user = random.pick(users)
        switch random.below(6) {
        case 0: return "UPLOAD ERROR [Auth] login failed for user=\(user) password=\(hex(&random, 10))"
        case 1: return "UPLOAD INFO [Billing] charged card \(card(&random)) amount=\(random.below(500)).99"
        case 2: return "UPLOAD DEBUG [HTTPClient] header Authorization: Bearer \(hex(&random, 32))"
        case 3: return "PROCESSING DEBUG [Exporter] api_key=sk_live_\(hex(&random, 24)) region=eu-west-1"
        case 4: return "ANALYTICS INFO [Mailer] report sent to \(user)@cloudcrest.example"
        default: return "PROCESSING DEBUG [Exporter] using key AKIA\(hex(&random, 16).uppercased()) for bucket reports"
        }
    }

    // MARK: Patterns

    /// `count` distinct patterns; each set of N is the first N. The first two are the seed's findings.
    static func patterns(_ count: Int) -> [String] {
        var random = SplitMix64(seed: patternSeed)
        var seen: Set<String> = []
        var result: [String] = []
        for pattern in [
            "SSL certificate verification disabled for endpoint: https://[a-z.-]+",
            "Connected to external API with insecure flag",
        ] where result.count < count {
            result.append(pattern)
            seen.insert(pattern)
        }
        while result.count < count {
            let pattern = makePattern(&random)
            if seen.insert(pattern).inserted { result.append(pattern) }
        }
        return result
    }

    /// `.` as a literal.
    static func literal(_ text: String) -> String {
        var out = ""
        for character in text { out += character == "." ? "\\." : String(character) }
        return out
    }

    static func makePattern(_ random: inout SplitMix64) -> String {
        switch random.below(12) {
        case 0:
            return "connection authorized: user=\(random.pick(users)) database=[a-z_]+"
        case 1:
            return "from 10\\.\(random.below(4))\\.\(random.below(16))\\.[0-9]{1,3}:[0-9]+ status=5[0-9]{2}"
        case 2:
            let service = random.pick(services.filter { $0 != "POSTGRES" })
            return "\(service) (ERROR|FATAL) \\[\(random.pick(components[service]!))] .*(timeout|refused|reset)"
        case 3:
            return "Query q-\(hex(&random, 2))[0-9a-f]{4} on table \(random.pick(tables)) returned [0-9]{4,} rows"
        case 4:
            return "Job \(random.pick(jobs)) finished in [0-9]{5,} ms: [0-9]+ records, [1-9][0-9]* errors"
        case 5:
            return "order ORD-202504\(two(1 + random.below(30)))-0{2}[0-9]{3} processed"
        case 6:
            let extension_ = random.pick(["csv", "json", "parquet", "(csv|json)"])
            return
                "Uploaded file \(random.pick(tables))_[0-9]+\\.\(extension_) \\([0-9]{8,} bytes\\) to bucket \(random.pick(buckets))"
        case 7:
            return "password authentication failed for user \"\(random.pick(users))\""
        case 8:
            let kinds = random.pick(["session", "user", "report", "(session|user)"])
            return "Cache miss for key \(kinds):\(random.below(10))[0-9]{4,5} \\(ratio 9[0-9] pct\\)"
        case 9:
            return
                "Validation failed for record [0-9]*\(random.below(100)): (\(random.pick(reasons))|\(random.pick(reasons)))"
        case 10:
            let verb = random.pick(["SELECT", "UPDATE", "DELETE", "(SELECT|UPDATE)"])
            return
                "duration: [0-9]{4}\\.[0-9]+ ms statement: \(verb) .* FROM \(random.pick(tables)) WHERE id = [0-9]+\(random.below(10))"
        default:
            let method = random.pick(["GET", "POST", "PUT", "(GET|POST)"])
            return
                "Request \(method) /api/v[0-9]+/\(random.pick(resources))(/[0-9]+)? from [0-9.]+:[0-9]+ status=4[0-9]{2}"
        }
    }

    /// The same patterns as Vigil log rules (one rule per pattern: the per-rule counts of `vigil match` are
    /// then per pattern) on a path that does not matter to `vigil match`.
    static func rulesYAML(_ patterns: [String]) -> String {
        var out = "# Generated by vigil-bench (LogCorpus.patterns): \(patterns.count) log rules, one pattern each.\n"
        for (index, pattern) in patterns.enumerated() {
            out += "- rule: bench-\(index + 1)\n  log: /var/log/analytics/unified/unified_*.log\n"
            out += "  match: '\(pattern)'\n"
        }
        return out
    }

    /// Writes `text` to `path`.
    static func write(_ text: String, to path: String) -> Bool {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return (try? Array(text.utf8).withUnsafeBytes { try Syscall.writeAll(fd, $0) }) != nil
    }

    /// Writes `log.txt` (`lines` lines), and for each N `rules-N.yaml` and `patterns-N.txt` into `directory`.
    static func generate(directory: String, lines: Int, sizes: [Int]) -> Bool {
        mkdir(directory, 0o755)
        guard writeLog(path: directory + "/log.txt", lines: lines) else { return false }
        let all = patterns(sizes.max() ?? 0)
        for size in sizes {
            let subset = Array(all.prefix(size))
            guard write(rulesYAML(subset), to: directory + "/rules-\(size).yaml"),
                write(subset.joined(separator: "\n") + "\n", to: directory + "/patterns-\(size).txt")
            else { return false }
        }
        return true
    }
}
