import Foundation
import Testing
import VigilCore
import VigilHarness
import VigilReceivers
import VigilRules
import VigilSystem
import VigilTestSupport

@testable import VigilDaemon

/// A record at a fixed time: 2026-11-20T04:53:35.123456789Z, a Friday.
private func record(
    _ index: Int = 0,
    rule: String = "ssl-expiry",
    severity: String = "critical",
    path: String? = "/etc/nginx/ssl/site.pem",
    message: String = "Certificate expires in 3 days",
    labels: [String: String] = [:]
) -> AlertRecord {
    AlertRecord(
        id: String(format: "%032x", 0xabc000 + index),
        timeSeconds: 1_795_150_415 + Int64(index),
        timeNanoseconds: 123_456_789,
        host: "web-1",
        rule: rule,
        severity: severity,
        state: .firing,
        kind: "file.changed",
        path: path,
        message: message,
        fingerprint: String(format: "%016x", 0xf00d + index),
        labels: labels
    )
}

/// The JSON lines the sink worker would pass along; the transports here do not read them.
private func lines(_ batch: [AlertRecord]) -> [[UInt8]] { batch.map { _ in Array("{}\n".utf8) } }

@Suite(.serialized, .timeLimit(.minutes(2)))
struct MailSyslogTransportTests {
    // MARK: syslog

    @Test func syslogDatagramIsExactRFC5424() throws {
        let tree = TempTree("syslog")
        defer { tree.remove() }
        let receiver = try SyslogReceiver(path: tree.path("log.sock"))
        defer { receiver.close() }
        let transport = SyslogTransport(
            spec: SyslogSink(socket: "/dev/log", facility: 16, appName: "vigil"),
            socketPath: receiver.path,
            hostName: "web-1"
        )
        defer { transport.close() }
        #expect(transport.batchLimit == 1)
        let alert = record()
        #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        #expect(receiver.waitForDatagrams(count: 1, timeoutSeconds: 5))
        // local0 (16) * 8 + crit (2) = 130; PROCID is this process.
        let expected =
            "<130>1 2026-11-20T04:53:35.123456Z web-1 vigil \(getpid()) file.changed "
            + "[vigil@32473 id=\"00000000000000000000000000abc000\" rule=\"ssl-expiry\" state=\"firing\" "
            + "fingerprint=\"000000000000f00d\" path=\"/etc/nginx/ssl/site.pem\"] Certificate expires in 3 days"
        #expect(receiver.datagrams() == [expected])
    }

    @Test func syslogEscapesStructuredDataAndMapsSeverities() throws {
        let tree = TempTree("syslog")
        defer { tree.remove() }
        let receiver = try SyslogReceiver(path: tree.path("log.sock"))
        defer { receiver.close() }
        let transport = SyslogTransport(
            spec: SyslogSink(facility: 3, appName: "vigil watch"),
            socketPath: receiver.path,
            hostName: "web 1"
        )
        let severities = ["critical": 26, "error": 27, "warning": 28, "info": 30]
        for (severity, _) in severities.sorted(by: { $0.value < $1.value }) {
            let alert = record(
                rule: "a\"b\\c]d",
                severity: severity,
                path: "/srv/[x]/\"y\"",
                message: "grüße \"quoted\" ] and \\"
            )
            #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        }
        #expect(receiver.waitForDatagrams(count: 4, timeoutSeconds: 5))
        let datagrams = receiver.datagrams()
        #expect(datagrams.map { $0.prefix(4) } == ["<26>", "<27>", "<28>", "<30>"])
        let first = try #require(datagrams.first)
        // Spaces in HOSTNAME and APP-NAME are not allowed: they become `_`.
        #expect(first.contains(" web_1 vigil_watch \(getpid()) file.changed "), "\(first)")
        #expect(first.contains(#" rule="a\"b\\c\]d" "#), "\(first)")
        #expect(first.contains(#" path="/srv/[x\]/\"y\""] "#), "\(first)")
        // MSG is sent as is, UTF-8 without a BOM.
        #expect(first.hasSuffix(#"] grüße "quoted" ] and \"#), "\(first)")
        #expect(!first.utf8.starts(with: [0xEF, 0xBB, 0xBF]) && !first.contains("\u{FEFF}"))
    }

    @Test func syslogWithoutSocketRetries() throws {
        let tree = TempTree("syslog")
        defer { tree.remove() }
        let path = tree.path("missing.sock")
        let transport = SyslogTransport(spec: SyslogSink(), socketPath: path, hostName: "web-1")
        let alert = record()
        guard case .retry(let reason) = transport.deliver([alert], lines: lines([alert])) else {
            Issue.record("a missing socket must be retried")
            return
        }
        #expect(reason.contains("syslog socket \(path): No such file or directory"), "\(reason)")
        // The socket appears (the syslog daemon started): the same transport delivers.
        let receiver = try SyslogReceiver(path: path)
        defer { receiver.close() }
        #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        #expect(receiver.waitForDatagrams(count: 1, timeoutSeconds: 5))
    }

    /// A bound datagram socket nobody reads until `startReading(every:)`: its queue fills at
    /// `net.unix.max_dgram_qlen` datagrams, like journald's behind on a burst.
    final class SlowReceiver: @unchecked Sendable {
        let path: String
        let descriptor: CInt
        let received = Locked(0)
        private var reader: ThreadHandle?

        init(path: String) throws {
            self.path = path
            descriptor = socket(AF_UNIX, CInt(SOCK_DGRAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                raw.copyBytes(from: Array(path.utf8))
                raw[path.utf8.count] = 0
            }
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard descriptor >= 0, bound == 0 else { throw HarnessError("bind \(path): errno \(errno)") }
        }

        /// Reads one datagram every `milliseconds`, until the socket is closed.
        func startReading(every milliseconds: Int) {
            let descriptor = descriptor
            let received = received
            reader = Threads.spawn(name: "slow-syslog-rx") {
                var buffer = [UInt8](repeating: 0, count: 65536)
                while recv(descriptor, &buffer, buffer.count, 0) > 0 {
                    received.withLock { $0 += 1 }
                    // Pacing, not synchronisation: a receiver this slow keeps the queue full, so every
                    // send in the test has to wait for room; the assertions hold at any pace.
                    usleep(useconds_t(milliseconds * 1000))
                }
            }
        }

        /// Stops the reader (its `recv` returns 0 after the shutdown) and joins it before closing, so it
        /// never reads a descriptor number the next test reuses.
        func close() {
            shutdown(descriptor, CInt(SHUT_RDWR))
            if let reader { Threads.join(reader) }
            Glibc.close(descriptor)
        }
    }

    @Test func aFullReceiverQueueIsWaitedOnNotFailed() throws {
        let tree = TempTree("syslog-full")
        defer { tree.remove() }
        let receiver = try SlowReceiver(path: tree.path("log.sock"))
        defer { receiver.close() }
        let transport = SyslogTransport(spec: SyslogSink(), socketPath: receiver.path, hostName: "web-1")
        defer { transport.close() }
        // Fill the queue: nobody reads yet, so some send must wait, then fail with the receiver named.
        var first: DeliveryOutcome = .delivered
        var sent = 0
        while sent < 1000 {
            let alert = record(sent)
            first = transport.deliver([alert], lines: lines([alert]))
            guard first == .delivered else { break }
            sent += 1
        }
        guard case .retry(let reason) = first else {
            Issue.record("1,000 datagrams into a socket nobody reads were all accepted")
            return
        }
        #expect(reason.contains("the receiver is not keeping up"), "\(reason)")
        // A slow reader (one datagram every 20 ms, far slower than the sends): every send waits for room
        // and succeeds; none is turned into a retry with backoff.
        receiver.startReading(every: 20)
        for index in 0..<30 {
            let alert = record(1000 + index)
            #expect(transport.deliver([alert], lines: lines([alert])) == .delivered, "datagram \(index)")
        }
    }

    @Test func syslogCutsAMessageTooLargeForADatagram() throws {
        let tree = TempTree("syslog")
        defer { tree.remove() }
        let receiver = try SyslogReceiver(path: tree.path("log.sock"))
        defer { receiver.close() }
        let transport = SyslogTransport(spec: SyslogSink(), socketPath: receiver.path, hostName: "web-1")
        // 4 MiB of "é" (2 bytes each): far above the socket's send buffer, so sendto says EMSGSIZE.
        let alert = record(message: String(repeating: "é", count: 2 << 20))
        #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        #expect(receiver.waitForDatagrams(count: 1, timeoutSeconds: 5))
        let datagram = try #require(receiver.datagrams().first)
        let message = try #require(datagram.split(separator: "] ", maxSplits: 1).last)
        #expect(message.utf8.count >= SyslogTransport.minimumMessageBytes)
        #expect(message.utf8.count < 4 << 20)
        // Cut on a character boundary: nothing but whole "é".
        #expect(message.allSatisfy { $0 == "é" })
    }

    // MARK: e-mail

    /// A running aiosmtpd server and an msmtp configured for it, in a temporary directory.
    struct MailFixture {
        let tree = TempTree("mail")
        let server = SMTPServer()
        let sendmail: [String]

        init() throws {
            try server.start(directory: tree.root)
            sendmail = try MSMTP.sendmailArgv(directory: tree.root, port: server.port)
        }

        func transport(_ spec: EmailSink, timeoutMilliseconds: Int = 10_000) -> SendmailTransport {
            SendmailTransport(
                spec: spec,
                hostName: "web-1",
                timeoutMilliseconds: timeoutMilliseconds,
                masker: SecretMasker(detectors: Set(SecretDetector.allCases))
            )
        }

        func remove() {
            server.stop()
            tree.remove()
        }
    }

    @Test func oneAlertIsOneMessageThroughMsmtp() throws {
        let fixture = try MailFixture()
        defer { fixture.remove() }
        let subject = MessageTemplate(
            segments: [
                .literal("Vigil: "), .field("rule"), .literal(" on "), .field("path"), .literal(" "), .field("nope"),
            ],
            source: "Vigil: {rule} on {path} {nope}"
        )
        let spec = EmailSink(
            to: ["ops@example.com", "oncall@example.com"],
            from: "vigil@example.com",
            sendmail: fixture.sendmail,
            subject: subject,
            digest: 1
        )
        let transport = fixture.transport(spec)
        #expect(transport.batchLimit == 1)
        let alert = record(labels: ["cmdline": "mysqldump --password=Sup3rS3cretValue db", "pid": "4242"])
        #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        #expect(fixture.server.waitForMessages(count: 1, timeoutSeconds: 10))
        let message = try #require(fixture.server.messages().first)
        #expect(message.recipients == ["ops@example.com", "oncall@example.com"])
        let headers = message.headers
        #expect(headers["To"] == "ops@example.com, oncall@example.com")
        #expect(headers["From"] == "vigil@example.com")
        #expect(headers["Subject"] == "Vigil: ssl-expiry on /etc/nginx/ssl/site.pem {nope}")
        #expect(headers["Date"] == "Fri, 20 Nov 2026 04:53:35 +0000")
        #expect(headers["Message-ID"] == "<00000000000000000000000000abc000@web-1>")
        #expect(headers["MIME-Version"] == "1.0")
        #expect(headers["Content-Type"] == "text/plain; charset=utf-8")
        #expect(headers["Content-Transfer-Encoding"] == "8bit")
        #expect(headers["Auto-Submitted"] == "auto-generated")
        #expect(headers["X-Vigil-Alerts"] == "1")
        let body = message.body
        #expect(body.hasPrefix("Certificate expires in 3 days\n\nid: 00000000000000000000000000abc000\n"), "\(body)")
        for line in [
            "time: 2026-11-20T04:53:35.123456Z", "host: web-1", "rule: ssl-expiry", "severity: critical",
            "state: firing", "kind: file.changed", "path: /etc/nginx/ssl/site.pem", "fingerprint: 000000000000f00d",
            "pid: 4242",
        ] {
            #expect(body.contains("\n\(line)\n"), "\(line) in \(body)")
        }
        #expect(!body.contains("Sup3rS3cretValue"), "\(body)")
        #expect(body.contains("cmdline: mysqldump --password=**************** db"), "\(body)")
    }

    @Test func fiftyAlertsAreOneDigest() throws {
        let fixture = try MailFixture()
        defer { fixture.remove() }
        let spec = EmailSink(to: ["ops@example.com"], sendmail: fixture.sendmail, digest: 100)
        let transport = fixture.transport(spec)
        #expect(transport.batchLimit == 100)
        let batch = (0..<50).map { index in
            record(
                index,
                rule: ["prüfung-über", "disk", "nginx-conf", "sshd"][index % 4],
                severity: index == 17 ? "critical" : "warning"
            )
        }
        #expect(transport.deliver(batch, lines: lines(batch)) == .delivered)
        #expect(fixture.server.waitForMessages(count: 1, timeoutSeconds: 10))
        let messages = fixture.server.messages()
        #expect(messages.count == 1)
        let message = try #require(messages.first)
        #expect(message.headers["X-Vigil-Alerts"] == "50")
        #expect(message.headers["Message-ID"] == "<00000000000000000000000000abc000.50@web-1>")
        // The newest record's time: index 49.
        #expect(message.headers["Date"] == "Fri, 20 Nov 2026 04:54:24 +0000")
        // Not ASCII: RFC 2047 encoded-words, one per folded line, each at most 75 characters.
        let raw = try #require(message.headers["Subject"])
        let words = raw.split(separator: " ")
        #expect(words.allSatisfy { $0.hasPrefix("=?UTF-8?B?") && $0.hasSuffix("?=") && $0.count <= 75 }, "\(raw)")
        let decoded = words.map { word -> String in
            let base64 = word.dropFirst(10).dropLast(2)
            return String(decoding: Data(base64Encoded: String(base64)) ?? Data(), as: UTF8.self)
        }.joined()
        #expect(decoded == "[critical] web-1: 50 alerts (prüfung-über, disk, nginx-conf, …)")
        let body = message.body
        for alert in batch { #expect(body.contains("id: \(alert.id)\n"), "\(alert.id)") }
        #expect(body.components(separatedBy: "\n---\n").count == 50)
        #expect(body.split(separator: "\n", omittingEmptySubsequences: false).allSatisfy { $0.utf8.count <= 998 })
    }

    @Test func stoppedServerRetriesWithMsmtpsReasonThenDelivers() throws {
        let fixture = try MailFixture()
        defer { fixture.remove() }
        let transport = fixture.transport(EmailSink(to: ["ops@example.com"], sendmail: fixture.sendmail))
        let alert = record()
        fixture.server.stop()
        guard case .retry(let reason) = transport.deliver([alert], lines: lines([alert])) else {
            Issue.record("a stopped server must be retried")
            return
        }
        #expect(reason.hasPrefix("sendmail exited "), "\(reason)")
        #expect(reason.contains("msmtp: cannot connect to 127.0.0.1, port \(fixture.server.port)"), "\(reason)")
        #expect(!reason.contains("Certificate expires"), "no message text in the reason: \(reason)")

        try fixture.server.restart()
        #expect(transport.deliver([alert], lines: lines([alert])) == .delivered)
        #expect(fixture.server.waitForMessages(count: 1, timeoutSeconds: 10))
        #expect(fixture.server.messages().count == 1)
    }

    @Test func hungSendmailIsKilledAtTheTimeout() throws {
        let tree = TempTree("mail")
        defer { tree.remove() }
        let transport = SendmailTransport(
            spec: EmailSink(to: ["ops@example.com"], sendmail: ["/bin/sleep", "30"]),
            hostName: "web-1",
            timeoutMilliseconds: 500,
            masker: SecretMasker(detectors: [])
        )
        let alert = record()
        let start = Clock.monotonicNanoseconds()
        let outcome = transport.deliver([alert], lines: lines([alert]))
        let elapsed = (Clock.monotonicNanoseconds() - start) / 1_000_000
        guard case .retry(let reason) = outcome else {
            Issue.record("a hung sendmail must be retried, not \(outcome)")
            return
        }
        #expect(reason.contains("sendmail '/bin/sleep' timed out after 500 ms"), "\(reason)")
        #expect(elapsed >= 500 && elapsed < 5000, "\(elapsed) ms")
    }

    @Test func sendmailExitCodesDecide() throws {
        let tree = TempTree("mail")
        defer { tree.remove() }
        tree.write(
            "nouser",
            "#!/bin/sh\ncat >/dev/null\necho 'sendmail: ops@example.com... User unknown' >&2\nexit 67\n",
            mode: 0o755
        )
        tree.write("tempfail", "#!/bin/sh\ncat >/dev/null\nexit 75\n", mode: 0o755)
        tree.write("deaf", "#!/bin/sh\nexit 0\n", mode: 0o755)
        func deliver(_ program: String) -> DeliveryOutcome {
            let transport = SendmailTransport(
                spec: EmailSink(to: ["ops@example.com"], sendmail: [tree.path(program), "-t", "-oi"]),
                hostName: "web-1",
                timeoutMilliseconds: 10_000,
                masker: SecretMasker(detectors: [])
            )
            let batch = [record(message: String(repeating: "long body ", count: 100_000))]
            return transport.deliver(batch, lines: lines(batch))
        }
        #expect(deliver("nouser") == .rejected("sendmail exited 67: sendmail: ops@example.com... User unknown"))
        #expect(deliver("tempfail") == .retry("sendmail exited 75 (EX_TEMPFAIL)"))
        // Exit 0 without reading the message: not queued.
        guard case .retry(let reason) = deliver("deaf") else {
            Issue.record("a sendmail that did not read the message must be retried")
            return
        }
        #expect(reason.contains("exited 0 after reading"), "\(reason)")
        let missing = SendmailTransport(
            spec: EmailSink(to: ["ops@example.com"], sendmail: [tree.path("absent")]),
            hostName: "web-1",
            timeoutMilliseconds: 1000,
            masker: SecretMasker(detectors: [])
        )
        guard case .retry(let startFailure) = missing.deliver([record()], lines: lines([record()])) else {
            Issue.record("a missing sendmail must be retried")
            return
        }
        #expect(startFailure.hasPrefix("Failed to start '\(tree.path("absent"))'"), "\(startFailure)")
    }
}
