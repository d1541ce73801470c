import VigilCore
import VigilRules

/// Builds the e-mail for a batch of alerts: RFC 5322 headers and a UTF-8 plain-text body, with LF line
/// ends (the sendmail interface takes LF and converts). One alert makes one message; several make a digest.
///
/// Everything taken from alerts goes through the secret masker (the subject and the body), and nothing
/// from an alert can add a header: CR, LF and other controls are removed from header values.
struct EmailMessage {
    /// Octets per line that RFC 5322 §2.1.1 allows, without the line end.
    static let lineLimit = 998
    /// Octets per header line RFC 5322 recommends; longer subjects are folded.
    static let foldWidth = 78
    /// Raw octets in one RFC 2047 encoded-word: `=?UTF-8?B?` + base64 of 45 octets (60) + `?=` is 72,
    /// under the limit of 75.
    static let encodedWordOctets = 45

    let spec: EmailSink
    /// The sending host, for the Message-ID and a digest's subject.
    let hostName: String
    let masker: SecretMasker

    /// The whole message for `batch` (oldest first, never empty): headers, a blank line, the body.
    func build(_ batch: [AlertRecord]) -> [UInt8] {
        var headers: [(String, String)] = [("To", Self.headerValue(spec.to.joined(separator: ", ")))]
        if let from = spec.from { headers.append(("From", Self.headerValue(from))) }
        var text = ""
        for (name, value) in headers { text += Self.folded(name, value, at: ", ") + "\n" }
        text += Self.encodedSubject(subject(batch)) + "\n"
        let newest = batch.max { ($0.timeSeconds, $0.timeNanoseconds) < ($1.timeSeconds, $1.timeNanoseconds) }
        text += "Date: \(Self.date(seconds: newest?.timeSeconds ?? 0))\n"
        text += "Message-ID: \(messageID(batch))\n"
        text += "MIME-Version: 1.0\n"
        text += "Content-Type: text/plain; charset=utf-8\n"
        text += "Content-Transfer-Encoding: 8bit\n"
        // RFC 3834: vacation responders and the like must not answer.
        text += "Auto-Submitted: auto-generated\n"
        text += "X-Vigil-Alerts: \(batch.count)\n"
        text += "\n"
        var bytes = Array(text.utf8)
        bytes.append(contentsOf: body(batch))
        return bytes
    }

    /// The subject before encoding: `subject:` rendered, or the default; controls removed and masked.
    ///
    /// One alert: the template over its fields (default `[{severity}] {host}: {rule}`). A digest: the
    /// default is `[<highest severity>] <host>: <N> alerts (<its first rules>)`; a `subject:` template sees
    /// `{severity}` as the highest severity, `{host}` as this host, `{count}` and `{rules}`, and every
    /// other field from the first alert.
    func subject(_ batch: [AlertRecord]) -> String {
        guard let first = batch.first else { return "" }
        let text: String
        if batch.count == 1 {
            let template = spec.subject
            let lookup = { (name: String) in AlertFields.value(name, of: first) }
            text = template?.render(lookup) ?? "[\(first.severity)] \(first.host): \(first.rule)"
        } else {
            let severity = batch.max { Self.rank($0.severity) < Self.rank($1.severity) }?.severity ?? first.severity
            var rules: [String] = []
            for record in batch where !rules.contains(record.rule) { rules.append(record.rule) }
            let ruleList = rules.prefix(3).joined(separator: ", ") + (rules.count > 3 ? ", …" : "")
            let lookup = { (name: String) -> String? in
                switch name {
                case "severity": severity
                case "host": hostName
                case "count": String(batch.count)
                case "rules": ruleList
                default: AlertFields.value(name, of: first)
                }
            }
            text = spec.subject?.render(lookup) ?? "[\(severity)] \(hostName): \(batch.count) alerts (\(ruleList))"
        }
        return masker.masked(Self.headerValue(text))
    }

    /// The body: each alert's text (`body:` rendered, or the default), separated by lines `---`; masked,
    /// CR and NUL removed, lines longer than 998 octets split.
    func body(_ batch: [AlertRecord]) -> [UInt8] {
        var parts: [String] = []
        for record in batch {
            if let template = spec.body {
                parts.append(template.render { AlertFields.value($0, of: record) })
            } else {
                parts.append(Self.defaultText(record))
            }
        }
        var text = parts.joined(separator: "\n---\n")
        if !text.hasSuffix("\n") { text += "\n" }
        var clean: [UInt8] = []
        clean.reserveCapacity(text.utf8.count)
        var previous: UInt8 = 0
        for byte in text.utf8 {
            defer { previous = byte }
            if byte == 0 { continue }
            // CRLF and lone CR become LF.
            if byte == 0x0D { continue }
            if previous == 0x0D && byte != 0x0A { clean.append(0x0A) }
            clean.append(byte)
        }
        return Self.splitLongLines(Array(masker.masked(String(decoding: clean, as: UTF8.self)).utf8))
    }

    /// The default text for one alert: the message, a blank line, then its fields one per line.
    static func defaultText(_ record: AlertRecord) -> String {
        var text = record.message + "\n\n"
        for name in ["id", "time", "host", "rule", "severity", "state", "kind", "path", "fingerprint"] {
            if let value = AlertFields.value(name, of: record) { text += "\(name): \(value)\n" }
        }
        for name in record.labels.keys.sorted() { text += "\(name): \(record.labels[name] ?? "")\n" }
        return text
    }

    /// `<firstId@host>` for one alert, `<firstId.N@host>` for a digest of N: stable for a batch, so a
    /// retried delivery that did reach the server once is recognisable as the same message.
    func messageID(_ batch: [AlertRecord]) -> String {
        var domain = String(
            hostName.unicodeScalars.filter {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "-")
            }.map(Character.init)
        )
        if domain.isEmpty { domain = "localhost" }
        let id = batch.first?.id ?? "0"
        return batch.count > 1 ? "<\(id).\(batch.count)@\(domain)>" : "<\(id)@\(domain)>"
    }

    /// Orders severities: critical above error above warning above info (and anything unknown).
    static func rank(_ severity: String) -> Int {
        switch severity {
        case "critical": 3
        case "error": 2
        case "warning": 1
        default: 0
        }
    }

    /// A header value with CR, LF and tab turned into spaces and other control characters removed, so no
    /// alert text can start a header of its own.
    static func headerValue(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x09, 0x0A, 0x0D: out.append(" ")
            case 0..<0x20, 0x7F, 0x80..<0xA0: continue
            default: out.append(scalar)
            }
        }
        return String(out)
    }

    /// `name: value`, folded after `separator` (a space stays at the start of each continuation line)
    /// where the line would pass 78 characters.
    static func folded(_ name: String, _ value: String, at separator: String) -> String {
        let pieces = value.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
        var out = "\(name): "
        var lineLength = out.utf8.count
        for (index, piece) in pieces.enumerated() {
            let last = index == pieces.count - 1
            let chunk = last ? piece : piece + separator.trimmingTrailingSpaces()
            if lineLength + chunk.utf8.count > foldWidth && lineLength > name.utf8.count + 2 {
                out += "\n "
                lineLength = 1
            } else if index > 0 {
                out += " "
                lineLength += 1
            }
            out += chunk
            lineLength += chunk.utf8.count
        }
        return out
    }

    /// The `Subject:` header line(s). Plain US-ASCII is folded at spaces; text that is not ASCII, or has a
    /// word too long to fold, is RFC 2047 B-encoded as UTF-8 in encoded-words of whole characters, one per
    /// line. Either way no line reaches 998 octets.
    static func encodedSubject(_ subject: String) -> String {
        let words = subject.split(separator: " ", omittingEmptySubsequences: false)
        let plain =
            subject.unicodeScalars.allSatisfy(\.isASCII)
            && words.allSatisfy { $0.utf8.count < lineLimit - 20 }
            && !subject.contains("=?")
        if plain { return folded("Subject", subject, at: " ") }
        var encoded: [String] = []
        var chunk: [UInt8] = []
        for scalar in subject.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > encodedWordOctets {
                encoded.append("=?UTF-8?B?\(base64(chunk))?=")
                chunk = []
            }
            chunk.append(contentsOf: bytes)
        }
        if !chunk.isEmpty || encoded.isEmpty { encoded.append("=?UTF-8?B?\(base64(chunk))?=") }
        return "Subject: " + encoded.joined(separator: "\n ")
    }

    /// RFC 4648 base64 with padding.
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group: UInt32 = 0
            for offset in 0..<3 { group = group << 8 | UInt32(offset < count ? bytes[index + offset] : 0) }
            for position in 0..<4 {
                if position <= count {
                    out.append(alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 5322 date-time in UTC: `Fri, 27 Nov 2026 04:53:35 +0000`. Taken apart from VigilCore's RFC 3339
    /// text, so the calendar arithmetic lives in one place; the weekday counts from Thursday, 1 January 1970.
    static func date(seconds: Int64) -> String {
        let stamp = RFC3339.string(seconds: seconds, nanoseconds: 0)
        let parts = stamp.split(separator: "T")
        let dateParts = parts.first?.split(separator: "-") ?? []
        guard parts.count == 2, dateParts.count >= 3, let month = Int(dateParts[dateParts.count - 2]),
            (1...12).contains(month)
        else { return "Thu, 01 Jan 1970 00:00:00 +0000" }
        let year = dateParts[0..<(dateParts.count - 2)].joined(separator: "-")
        let day = dateParts[dateParts.count - 1]
        let time = parts[1].prefix(8)
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let weekday = weekdays[Int(((days + 4) % 7 + 7) % 7)]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        return "\(weekday), \(day) \(months[month - 1]) \(year) \(time) +0000"
    }

    /// Splits every line longer than 998 octets into lines of at most 998, at UTF-8 character starts.
    static func splitLongLines(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var lineStart = 0
        for (index, byte) in bytes.enumerated() {
            if byte == 0x0A {
                lineStart = index + 1
            } else if index - lineStart >= lineLimit && byte & 0xC0 != 0x80 {
                out.append(0x0A)
                lineStart = index
            } else if index - lineStart >= lineLimit + 3 {
                // Never happens with valid UTF-8 (a character has at most 3 continuation bytes).
                out.append(0x0A)
                lineStart = index
            }
            out.append(byte)
        }
        return out
    }
}

extension String {
    /// The string without spaces at its end.
    fileprivate func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.hasSuffix(" ") { copy.removeLast() }
        return copy
    }
}
