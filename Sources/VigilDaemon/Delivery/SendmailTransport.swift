import VigilCore
import VigilRules
import VigilSystem

/// `type: email`: hands each batch to the host's sendmail interface (`sendmail -t -oi`, which Postfix,
/// Exim, OpenSMTPD and msmtp provide) as one message, a digest when the batch has several alerts. The MTA
/// owns queueing and SMTP; this transport only has to know whether it took the message.
///
/// The program runs from `posix_spawn` with an argv (never a shell), the message goes to its standard
/// input, and its exit status decides (`man 3 sysexits`): 0 delivered; 65 `EX_DATAERR` and 67 `EX_NOUSER`
/// rejected for good; anything else (75 `EX_TEMPFAIL`, 69 `EX_UNAVAILABLE`, a signal, the timeout) retried.
final class SendmailTransport: DeliveryTransport {
    /// Bytes of the program's standard error kept for the reason text.
    static let errorLimit = 300

    let batchLimit: Int
    private let spec: EmailSink
    private let message: EmailMessage
    private let timeoutMilliseconds: Int

    /// A transport for `spec`. `timeoutMilliseconds` bounds one whole attempt (start, write, exit); the
    /// daemon passes `SecretMasker(detectors: Set(SecretDetector.allCases))` as `masker`.
    init(spec: EmailSink, hostName: String, timeoutMilliseconds: Int, masker: SecretMasker) {
        self.spec = spec
        batchLimit = max(spec.digest, 1)
        message = EmailMessage(spec: spec, hostName: hostName, masker: masker)
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    func deliver(_ batch: [AlertRecord], lines: [[UInt8]]) -> DeliveryOutcome {
        guard !batch.isEmpty else { return .delivered }
        guard let program = spec.sendmail.first, program.hasPrefix("/") else {
            return .retry(
                "sendmail program '\(spec.sendmail.first ?? "")' is not an absolute path; set sendmail: to e.g. [/usr/sbin/sendmail, -t, -oi]"
            )
        }
        let text = message.build(batch)
        let child: FedChild
        do {
            child = try Spawn.startFeeding(program, arguments: Array(spec.sendmail.dropFirst()))
        } catch {
            return .retry("\(error)")
        }
        let result = Spawn.communicate(
            child,
            input: text,
            errorLimit: Self.errorLimit,
            timeoutMilliseconds: timeoutMilliseconds
        )
        let reason = Self.firstLine(result.errorOutput)
        if result.timedOut {
            return .retry(
                "sendmail '\(program)' timed out after \(timeoutMilliseconds) ms (took \(result.inputWritten) of \(text.count) bytes) and was killed"
            )
        }
        guard let raw = result.status else {
            return .retry("sendmail '\(program)' could not be waited for (reaped elsewhere)")
        }
        let status = WaitStatus(raw)
        if let signal = status.terminatingSignal {
            return .retry(
                "sendmail '\(program)' was killed by signal \(signal) (\(SignalNames.name(of: signal)))\(reason.map { ": \($0)" } ?? "")"
            )
        }
        let code = status.exitCode ?? -1
        let exitText =
            "sendmail exited \(code)" + (reason.map { ": \($0)" } ?? Self.sysexitsName(code).map { " (\($0))" } ?? "")
        switch code {
        case 0:
            // A sendmail that exits 0 without reading the whole message has not queued it.
            if result.inputWritten < text.count {
                return .retry(
                    "sendmail '\(program)' exited 0 after reading \(result.inputWritten) of \(text.count) bytes"
                )
            }
            return .delivered
        case 65, 67: return .rejected(exitText)
        default: return .retry(exitText)
        }
    }

    /// The first non-empty line of the program's error output, controls removed; nil when it wrote nothing.
    static func firstLine(_ bytes: [UInt8]) -> String? {
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let clean = String(
                String.UnicodeScalarView(line.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F })
            )
            let trimmed = clean.drop { $0 == " " }
            if !trimmed.isEmpty { return String(trimmed) }
        }
        return nil
    }

    /// The `sysexits.h` name of an exit code between 64 and 78.
    static func sysexitsName(_ code: Int32) -> String? {
        let names = [
            "EX_USAGE", "EX_DATAERR", "EX_NOINPUT", "EX_NOUSER", "EX_NOHOST", "EX_UNAVAILABLE", "EX_SOFTWARE",
            "EX_OSERR", "EX_OSFILE", "EX_CANTCREAT", "EX_IOERR", "EX_TEMPFAIL", "EX_PROTOCOL", "EX_NOPERM",
            "EX_CONFIG",
        ]
        return (64...78).contains(code) ? names[Int(code) - 64] : nil
    }
}
