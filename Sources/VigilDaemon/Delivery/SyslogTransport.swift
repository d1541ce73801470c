import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `type: syslog`: each alert as one RFC 5424 datagram to the local syslog socket (journald's
/// `/run/systemd/journal/dev-log` behind `/dev/log`, or rsyslog's). See RFC 5424 and `man 3 syslog`.
///
/// A datagram is sent to the socket's path each time (`sendto`, not `connect` once), so a syslog daemon
/// that restarts and binds a new socket at the same path is found again without reconnecting.
final class SyslogTransport: DeliveryTransport {
    /// The private enterprise number in the structured data's SD-ID (`vigil@32473`). 32473 is the number
    /// IANA reserves for documentation and examples (RFC 5612); Vigil has none of its own.
    static let enterpriseNumber = 32473
    /// The smallest MSG a datagram the socket refuses as too large is cut down to (RFC 5424 §6.1 asks
    /// every receiver to take 480 octets).
    static let minimumMessageBytes = 480
    /// How long one datagram may wait for room in the receiver's queue before the send counts as failed.
    static let sendTimeoutMilliseconds = 500

    let batchLimit = 1
    private let spec: SyslogSink
    private let socketPath: String
    private let hostName: String
    private let appName: String
    private let processID: String
    /// The datagram socket, opened at the first delivery; -1 while closed.
    private var descriptor: CInt = -1

    /// A transport for `spec`, sending to `socketPath` (the host path, already resolved inside `--root`)
    /// as `hostName`.
    init(spec: SyslogSink, socketPath: String, hostName: String) {
        self.spec = spec
        self.socketPath = socketPath
        self.hostName = Self.printable(hostName, limit: 255)
        appName = Self.printable(spec.appName, limit: 48)
        processID = String(getpid())
    }

    deinit { close() }

    func deliver(_ batch: [AlertRecord], lines: [[UInt8]]) -> DeliveryOutcome {
        for record in batch {
            let outcome = send(record)
            guard outcome == .delivered else { return outcome }
        }
        return .delivered
    }

    func close() {
        if descriptor >= 0 { Syscall.close(descriptor) }
        descriptor = -1
    }

    /// The datagram for `record`: the header and structured data, then the message. journald (systemd 252,
    /// `journald-syslog.c`) parses only RFC 3164 headers and keeps everything after `<PRI>` as MESSAGE, so
    /// the UTF-8 BOM that RFC 5424 §6.4 allows before MSG would land in the middle of every journal entry
    /// as an invisible U+FEFF that breaks `journalctl --grep` and copy-paste. The MSG is therefore sent
    /// without a BOM (RFC 5424's MSG-ANY): rsyslog and syslog-ng take it as UTF-8 text anyway.
    func datagram(_ record: AlertRecord) -> (header: [UInt8], message: [UInt8]) {
        let priority = spec.facility * 8 + Self.severityCode(record.severity)
        var header = "<\(priority)>1 "
        header += RFC3339.string(seconds: record.timeSeconds, nanoseconds: record.timeNanoseconds)
        header += " \(hostName) \(appName) \(processID) \(Self.printable(record.kind, limit: 32)) "
        header +=
            "[vigil@\(Self.enterpriseNumber) id=\"\(Self.escaped(record.id))\" rule=\"\(Self.escaped(record.rule))\""
        header += " state=\"\(record.state.rawValue)\" fingerprint=\"\(Self.escaped(record.fingerprint))\""
        if let path = record.path { header += " path=\"\(Self.escaped(path))\"" }
        header += "] "
        return (Array(header.utf8), Array(record.message.utf8))
    }

    /// Sends `record`'s datagram, cutting the message when the socket says the datagram is too large.
    private func send(_ record: AlertRecord) -> DeliveryOutcome {
        if descriptor < 0 {
            let fd = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { return .retry("syslog socket \(socketPath): socket() failed: \(Self.reason(errno))") }
            // A full receiver queue (journald or rsyslog behind on a burst; net.unix.max_dgram_qlen is
            // small) is waited on in the kernel, which wakes the send as soon as the receiver reads, for at
            // most `sendTimeoutMilliseconds`; only then does the sink count a failure and back off. Without
            // this, every momentary EAGAIN cost a growing retry backoff, and a burst of 1,000 alerts to a
            // busy receiver took minutes.
            var timeout = timeval(tv_sec: 0, tv_usec: Self.sendTimeoutMilliseconds * 1000)
            _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            descriptor = fd
        }
        let (header, message) = datagram(record)
        var length = message.count
        while true {
            var bytes = header
            bytes.append(contentsOf: Self.cut(message, to: length))
            let code = sendDatagram(bytes)
            switch code {
            case 0:
                return .delivered
            case EMSGSIZE where length > Self.minimumMessageBytes:
                length = max(length / 2, Self.minimumMessageBytes)
            case EMSGSIZE:
                return .rejected(
                    "syslog socket \(socketPath): a datagram of \(bytes.count) bytes is too large even with the message cut to \(length) bytes; raise the receiver's limit"
                )
            case ENOENT, ECONNREFUSED:
                return .retry(
                    "syslog socket \(socketPath): \(Self.reason(code)); is the syslog daemon (journald, rsyslog) running?"
                )
            case EAGAIN, ENOBUFS:
                return .retry("syslog socket \(socketPath): \(Self.reason(code)); the receiver is not keeping up")
            default:
                return .retry("syslog socket \(socketPath): \(Self.reason(code))")
            }
        }
    }

    /// `sendto(2)` of one datagram to the socket path, waiting at most `SO_SNDTIMEO` for room (a stalled
    /// syslog daemon then gives EAGAIN, and the sink retries later with backoff) and without SIGPIPE.
    /// Returns 0 or the errno.
    @inline(never)
    private func sendDatagram(_ bytes: [UInt8]) -> CInt {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array(socketPath.utf8)
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return ENAMETOOLONG }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: path)
            raw[path.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + path.count + 1)
        while true {
            let sent = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                    bytes.withUnsafeBytes { buffer in
                        sendto(
                            descriptor,
                            buffer.baseAddress,
                            buffer.count,
                            CInt(MSG_NOSIGNAL),
                            socketAddress,
                            length
                        )
                    }
                }
            }
            if sent >= 0 { return 0 }
            let code = errno
            if code == EINTR { continue }
            return code
        }
    }

    /// `strerror(3)` of `code`, for the one-line retry reason.
    static func reason(_ code: CInt) -> String { String(cString: strerror(code)) }

    /// RFC 5424 severity (`man 3 syslog`): critical is LOG_CRIT (2), error LOG_ERR (3), warning
    /// LOG_WARNING (4), info and anything else LOG_INFO (6).
    static func severityCode(_ severity: String) -> Int {
        switch severity {
        case "critical": 2
        case "error": 3
        case "warning": 4
        default: 6
        }
    }

    /// A header field as RFC 5424 wants it: printable US-ASCII without spaces (33...126), at most `limit`
    /// bytes; any other byte becomes `_`, and an empty field is the NILVALUE `-`.
    static func printable(_ text: String, limit: Int) -> String {
        var bytes: [UInt8] = []
        for byte in text.utf8.prefix(limit) { bytes.append((33...126).contains(byte) ? byte : UInt8(ascii: "_")) }
        return bytes.isEmpty ? "-" : String(decoding: bytes, as: UTF8.self)
    }

    /// An SD-PARAM value: `"`, `\` and `]` are escaped with a backslash (RFC 5424 §6.3.3).
    static func escaped(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            if scalar == "\"" || scalar == "\\" || scalar == "]" { out.unicodeScalars.append("\\") }
            out.unicodeScalars.append(scalar)
        }
        return out
    }

    /// The first `length` bytes of `message`, shortened further to end on a whole UTF-8 character.
    static func cut(_ message: [UInt8], to length: Int) -> ArraySlice<UInt8> {
        guard length < message.count else { return message[...] }
        var end = length
        // Step back over continuation bytes (10xxxxxx) to the start of the character the cut splits.
        while end > 0 && message[end] & 0xC0 == 0x80 { end -= 1 }
        return message[0..<end]
    }
}
