import Logging
import VigilCore
import VigilRules
import VigilSystem

// Alert records of rotate rules. Noise is kept low: one `log.rotated` event per rotation, sent when its work
// is done (rename, new file, postrotate and, when the rotation is compressed right away, its compression:
// the record then carries the compressed size); one `log.rotation_failed` event per failure, a repeated
// failure with the same cause alerted once. A compression that happens later (delaycompress, a retry) is
// not a record of its own when it succeeds: it is counted (`PipelineCounters.logCompressions`) and logged at
// debug; when it fails it is a `log.rotation_failed`.
extension RotationWatcher {
    /// The fields of a rotate rule's message.
    private func fields(
        _ rule: Rule,
        path: String,
        rotated: String,
        size: String,
        reason: String,
        outcome: String
    )
        -> (String) -> String?
    {
        let host = settings.host
        return { field in
            switch field {
            case "rule": rule.id
            case "severity": rule.severity.rawValue
            case "host": host
            case "path": path
            case "rotated": rotated
            case "size": size
            case "reason": reason
            case "outcome": outcome
            default: nil
            }
        }
    }

    /// One rotation, done: `log.rotated`, an event.
    func emitRotated(_ rotation: Rotation) {
        let compiled = rules[rotation.rule]
        let rotated = rotation.compressedPath ?? rotation.rotatedPath
        let outcome = rotation.outcome.isEmpty ? "done" : rotation.outcome.joined(separator: ", ")
        let message = compiled.rule.message.render(
            fields(
                compiled.rule,
                path: rotation.path,
                rotated: rotated,
                size: String(rotation.bytes),
                reason: rotation.reason.text,
                outcome: outcome
            )
        )
        var labels = compiled.labels
        labels["rotated"] = rotation.rotatedPath
        labels["bytes"] = String(rotation.bytes)
        labels["reason"] = rotation.reason.label
        labels["milliseconds"] = Self.milliseconds(rotation.nanoseconds)
        if let compressed = rotation.compressedPath { labels["compressed"] = compressed }
        if let bytes = rotation.compressedBytes { labels["compressed_bytes"] = String(bytes) }
        if let nanoseconds = rotation.compressNanoseconds {
            labels["compress_milliseconds"] = Self.milliseconds(nanoseconds)
        }
        emit(
            rule: rotation.rule,
            kind: "log.rotated",
            severity: compiled.rule.severity,
            path: rotation.path,
            message: message,
            version: "rotated:\(rotation.rotatedPath):\(rotation.identity.device):\(rotation.identity.inode)",
            labels: labels,
            sinkMask: compiled.sinkMask
        )
    }

    /// A step failed: `log.rotation_failed`, an event, at least at severity `error`.
    func emitFailure(rule index: Int, path: String, _ failure: Failure, version: String) {
        let compiled = rules[index]
        var labels = compiled.labels
        labels["step"] = failure.step
        if failure.errno != 0 { labels["errno"] = String(failure.errno) }
        logger.error("\(failure.message)")
        emit(
            rule: index,
            kind: "log.rotation_failed",
            severity: max(compiled.rule.severity, .error),
            path: path,
            message: failure.message,
            version: "failed:" + version,
            labels: labels,
            // A rule that sends no alerts of its rotations still reports what went wrong, to every sink.
            // (`exec:` alone is not a sink: its bit is kept, the failure goes to every sink too.)
            sinkMask: compiled.sinkMask & SinkMasks.everySink == 0 ? allSinks | compiled.sinkMask : compiled.sinkMask
        )
    }

    private func emit(
        rule index: Int,
        kind: String,
        severity: Severity,
        path: String,
        message: String,
        version: String,
        labels: [String: String],
        sinkMask: UInt64
    ) {
        let compiled = rules[index]
        outlet.sendRuleAlert(
            host: settings.host,
            rule: compiled.rule.id,
            severity: severity.rawValue,
            instance: path,
            state: .event,
            version: version,
            kind: kind,
            path: path,
            message: message,
            labels: labels,
            sinkMask: sinkMask,
            eventTime: 0
        )
    }

    /// Milliseconds with two decimals.
    static func milliseconds(_ nanoseconds: UInt64) -> String {
        let hundredths = (nanoseconds + 5000) / 10000
        let fraction = hundredths % 100
        return "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
