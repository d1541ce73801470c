import Logging
import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

extension Daemon {
    /// Every alert sink, in mask-bit order: the rules' sinks as written, then `--alerts` files, or stdout
    /// when there is none. Local sinks are opened; remote ones get their spool (recovered from the last run)
    /// and transport. Throws a one-line error naming the sink and the fix.
    static func makeSinkSlots(
        options: Options,
        root: RootedPath,
        host: String,
        stateDirectory: String,
        logger: Logger
    ) throws(DaemonError) -> (slots: [SinkSlot], specs: [SinkSpec]) {
        var specs = options.ruleSet.sinks
        let location = SourceLocation(file: "command line", line: 0, column: 0)
        for (i, file) in options.extraAlertFiles.enumerated() {
            let name = "--alerts" + (i == 0 ? "" : "#\(i + 1)")
            specs.append(SinkSpec(name: name, location: location, kind: file == "-" ? .stdout : .jsonl(path: file)))
        }
        if options.dryRun && !specs.contains(where: { if case .stdout = $0.kind { true } else { false } }) {
            // A dry run prints every alert (the rules' sinks were set aside by `dryRunOptions`).
            specs.append(SinkSpec(name: "stdout", location: location, kind: .stdout))
        }
        if specs.isEmpty {
            logger.notice("No alert sink is configured in the rules or with --alerts; alerts go to stdout")
            specs.append(SinkSpec(name: "stdout", location: location, kind: .stdout))
        }
        // A rule's sinks are bits of a 64-bit mask whose top bit marks `exec:` (SinkMasks.execBit).
        let maximumSinks = SinkMasks.execBit.trailingZeroBitCount
        if specs.count > maximumSinks {
            throw DaemonError(
                "Failed to start: \(specs.count) alert sinks configured (the rules' sinks: and --alerts files); at most \(maximumSinks) are supported: merge or remove \(specs.count - maximumSinks)"
            )
        }
        let extraStart = options.ruleSet.sinks.count
        let allMask: UInt64 = specs.count >= 64 ? .max : (UInt64(1) << UInt64(specs.count)) - 1
        if specs.contains(where: {
            if case .webhook = $0.kind { true } else if case .alertmanager = $0.kind { true } else { false }
        }) {
            HTTPClient.globalInit()
        }
        var slots: [SinkSlot] = []
        for (index, spec) in specs.enumerated() {
            // `--alerts` paths are host paths; the rules' paths are inside the root.
            let hostPath = { (path: String) in index >= extraStart ? path : root.hostPath(path) }
            let transport: any DeliveryTransport
            switch spec.kind {
            case .stdout:
                slots.append(.local(AlertSink(name: spec.name, target: .standardOutput, logger: logger)))
                continue
            case .jsonl(let path):
                slots.append(.local(AlertSink(name: spec.name, target: .file(path: hostPath(path)), logger: logger)))
                continue
            case .syslog(let syslog):
                transport = SyslogTransport(spec: syslog, socketPath: hostPath(syslog.socket), hostName: host)
            case .email(var email):
                // The program is found inside the root like every command a rule names (a sandbox's
                // stand-in sendmail in the tests and the demo); the rest of argv is passed as written.
                if let program = email.sendmail.first { email.sendmail[0] = hostPath(program) }
                transport = SendmailTransport(
                    spec: email,
                    hostName: host,
                    timeoutMilliseconds: spec.delivery.timeoutMilliseconds,
                    masker: SecretMasker(detectors: Set(SecretDetector.allCases))
                )
            case .webhook(let webhook):
                let secret = try webhook.secretFile.map { file throws(DaemonError) in
                    try readSecret(hostPath(file), sink: spec)
                }
                transport = WebhookTransport(
                    spec: webhook,
                    secret: secret,
                    timeoutMilliseconds: spec.delivery.timeoutMilliseconds
                )
            case .alertmanager(let alertmanager):
                transport = AlertmanagerTransport(
                    spec: alertmanager,
                    timeoutMilliseconds: spec.delivery.timeoutMilliseconds
                )
            }
            let spool: Spool
            do {
                spool = try Spool(
                    directory: stateDirectory + "/spool/" + spec.name,
                    limits: Spool.Limits(maximumBytes: spec.delivery.spoolMaximumBytes)
                )
            } catch {
                throw DaemonError("\(spec.location): alert sink '\(spec.name)': \(error)")
            }
            for note in spool.recoveryNotes { logger.warning("Alert sink '\(spec.name)': \(note)") }
            let depth = spool.depth
            if depth.records > 0 {
                logger.notice(
                    "Alert sink '\(spec.name)': \(depth.records) alerts from before the restart are in its spool \(spool.directory); delivering them first"
                )
            }
            do {
                slots.append(
                    .remote(
                        try DeliverySink(
                            index: index,
                            spec: spec,
                            spool: spool,
                            transport: transport,
                            host: host,
                            allSinksMask: allMask,
                            logger: logger
                        )
                    )
                )
            } catch {
                throw DaemonError("Failed to set up alert sink '\(spec.name)': \(error)")
            }
        }
        for slot in slots {
            guard case .local(let sink) = slot else { continue }
            do { try sink.open() } catch { throw DaemonError(error.description) }
        }
        return (slots, specs)
    }

    /// The options of a dry run: the rules' sinks are set aside (no JSON Lines file, syslog, mail, webhook or
    /// Alertmanager is written or paged, and no spool is created), and every `alert: [sink, ...]` goes to
    /// stdout and the `--alerts` files instead, once. Logs the start-up line that says what is left out.
    /// Returns `options` unchanged when it is not a dry run.
    /// The rules of a dry run (at start-up and at every reload): no sink of their own, every `alert` to the
    /// outputs that remain.
    static func dryRunRules(_ ruleSet: RuleSet) -> RuleSet {
        var ruleSet = ruleSet
        ruleSet.sinks = []
        for index in ruleSet.rules.indices {
            ruleSet.rules[index].actions = ruleSet.rules[index].actions.map { action in
                if case .alert(_, let location) = action { return .alert(sinks: nil, location: location) }
                return action
            }
        }
        return ruleSet
    }

    static func dryRunOptions(_ options: Options, stateDirectory: String, logger: Logger) -> Options {
        guard options.dryRun else { return options }
        var options = options
        let leftOut = options.ruleSet.sinks.map { "\($0.name) (\($0.kind.dryRunName))" }
        options.ruleSet = dryRunRules(options.ruleSet)
        let outputs = ["stdout"] + options.extraAlertFiles.filter { $0 != "-" }
        logger.notice(
            "Dry run: nothing on the host is changed and nobody is paged; alerts go to \(outputs.joined(separator: ", ")) with a dry_run label for each action not done; sinks left out: \(leftOut.isEmpty ? "none" : leftOut.joined(separator: ", ")); state in \(stateDirectory) is read, not written (log offsets, spools, pattern cache)"
        )
        return options
    }

    /// Reads a webhook's HMAC key: the whole file without its trailing newline. A key others can read is
    /// used, with a warning in the log (it would let them forge alerts); a missing or empty one is an error.
    private static func readSecret(_ path: String, sink: SinkSpec) throws(DaemonError) -> [UInt8] {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw DaemonError(
                "\(sink.location): alert sink '\(sink.name)': cannot read its secret_file '\(path)' (\(String(cString: strerror(errno)))); create it (a regular file, mode 0600) or remove secret_file:"
            )
        }
        guard case .content(var bytes, _) = WholeFileReader.read(path, limit: 64 << 10) else {
            throw DaemonError(
                "\(sink.location): alert sink '\(sink.name)': cannot read its secret_file '\(path)'; check its mode and owner"
            )
        }
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        if bytes.isEmpty {
            throw DaemonError(
                "\(sink.location): alert sink '\(sink.name)': its secret_file '\(path)' is empty; write the shared key into it"
            )
        }
        return bytes
    }

}

extension SinkKind {
    /// The kind and where it writes, for the dry run's start-up line: "webhook https://…", "jsonl /var/…".
    fileprivate var dryRunName: String {
        switch self {
        case .stdout: "stdout"
        case .jsonl(let path): "JSON Lines \(path)"
        case .syslog(let syslog): "syslog \(syslog.socket)"
        case .email: "e-mail"
        case .webhook(let webhook): "webhook \(webhook.url)"
        case .alertmanager(let alertmanager): "Alertmanager \(alertmanager.url)"
        }
    }
}
