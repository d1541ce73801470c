import Synchronization
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The log issue's rotation torture, shared by the integration test (small, debug build) and the
/// benchmark (50,000 lines/s for a minute, release build): a writer appends numbered lines at a fixed
/// rate while the log is rotated every `rotateEveryMilliseconds` (by rename, or by copy-and-truncate), and
/// vigil is killed with SIGKILL and started again `kills` times. With a rule that alerts on every line,
/// each line's alert must be in the JSON Lines file exactly once (rename); with copy-and-truncate, any
/// line lost must be reported by a truncation alert.
public enum RotationTorture {
    public enum Rotation: String, Sendable {
        /// logrotate's default: rename to `app.log.N`, the writer reopens the name.
        case rename
        /// logrotate's `copytruncate`: copy to `app.log.N`, truncate the original; lines in between are lost.
        case copyTruncate = "copy-truncate"
    }

    public struct Settings: Sendable {
        public var linesPerSecond: Int
        public var seconds: Double
        public var rotateEveryMilliseconds: Int
        public var kills: Int
        public var rotation: Rotation

        public init(linesPerSecond: Int, seconds: Double, rotateEveryMilliseconds: Int, kills: Int, rotation: Rotation)
        {
            self.linesPerSecond = linesPerSecond
            self.seconds = seconds
            self.rotateEveryMilliseconds = rotateEveryMilliseconds
            self.kills = kills
            self.rotation = rotation
        }
    }

    public struct Result: Sendable, CustomStringConvertible {
        public var written = 0
        public var rotations = 0
        public var restarts = 0
        /// Lines whose alert is in the file exactly once, more than once, and not at all.
        public var once = 0
        public var duplicated: [Int] = []
        public var missing: [Int] = []
        /// `vigil.log_truncated` alerts.
        public var truncationAlerts = 0
        /// Seconds from the writer's last line to the last alert (catching up after the last restart).
        public var drainSeconds = 0.0

        public var description: String {
            "\(written) lines written, \(rotations) rotations, \(restarts) SIGKILL restarts: \(once) alerted exactly once, \(duplicated.count) more than once, \(missing.count) missing; \(truncationAlerts) truncation alerts; drained \(String(Int(drainSeconds * 1000))) ms after the last line"
        }
    }

    /// The rule the torture needs (alerts on every line of `/var/log/torture/app.log`), as YAML.
    public static let rules = """
        # Rotation torture: every line of the log is an alert.
        - rule: torture-line
          severity: info
          log: /var/log/torture/app.log
          from: start
          message: "{line}"

        """

    /// Runs the torture. `logPath` is the host path of the log (its directory exists); `start` starts vigil
    /// (ready when it returns) with the rules above and alerts to `alertsPath`.
    public static func run(
        _ settings: Settings,
        logPath: String,
        alertsPath: String,
        start: () throws -> DaemonProcess
    ) throws -> Result {
        var result = Result()
        var vigil = try start()
        let total = Int(Double(settings.linesPerSecond) * settings.seconds)
        let writer = Writer(path: logPath, total: total, settings: settings)
        let thread = Threads.spawn(name: "torture-writer") { writer.run() }
        let began = Clock.monotonicNanoseconds()
        let span = UInt64(settings.seconds * 1e9)
        for kill in 1...max(1, settings.kills) where settings.kills > 0 {
            let at = began + span * UInt64(kill) / UInt64(settings.kills + 1)
            while Clock.monotonicNanoseconds() < at { usleep(10_000) }  // pacing the kills, not synchronising
            vigil.process.signal(SIGKILL)
            _ = vigil.process.wait(timeoutMilliseconds: 10_000)
            vigil = try start()
            result.restarts += 1
        }
        Threads.join(thread)
        let finished = Clock.monotonicNanoseconds()
        result.written = writer.written.load(ordering: .acquiring)
        result.rotations = writer.rotations.load(ordering: .acquiring)

        // Wait for the alerts: every line (rename), or until none arrive for three seconds.
        var counts = [UInt8](repeating: 0, count: total)
        var lastAlert = finished
        var distinct = 0
        let follower = try LineFollower(path: alertsPath, fromStart: true)
        while true {
            guard let (line, seenAt) = follower.next(timeoutMilliseconds: 3000) else { break }
            if isTruncationAlert(line) { result.truncationAlerts += 1 }
            guard let number = sequenceNumber(line), number < total else { continue }
            if counts[number] == 0 { distinct += 1 }
            counts[number] &+= 1
            lastAlert = seenAt
            if distinct == total && settings.rotation == .rename {
                // Give a duplicate that would follow a chance to show.
                while let (more, _) = follower.next(timeoutMilliseconds: 500) {
                    if let n = sequenceNumber(more), n < total { counts[n] &+= 1 }
                }
                break
            }
        }
        vigil.stop()
        result.drainSeconds = Double(lastAlert &- min(lastAlert, finished)) / 1e9
        for (number, count) in counts.enumerated() {
            switch count {
            case 0: result.missing.append(number)
            case 1: result.once += 1
            default: result.duplicated.append(number)
            }
        }
        return result
    }

    /// `"message":"torture 123 …"` → 123 (a byte search: the benchmark reads millions of these).
    static func sequenceNumber(_ line: String) -> Int? {
        var copy = line
        return copy.withUTF8 { bytes -> Int? in
            guard let base = bytes.baseAddress, let found = find(messageMarker, in: base, count: bytes.count) else {
                return nil
            }
            var value = 0
            var any = false
            var index = found + messageMarker.count
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                value = value * 10 + Int(bytes[index] - 48)
                any = true
                index += 1
            }
            return any ? value : nil
        }
    }

    /// True for a `vigil.log_truncated` alert line.
    static func isTruncationAlert(_ line: String) -> Bool {
        var copy = line
        return copy.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return false }
            return find(truncationMarker, in: base, count: bytes.count) != nil
        }
    }

    private static let messageMarker = Array("\"message\":\"torture ".utf8)
    private static let truncationMarker = Array("\"kind\":\"vigil.log_truncated\"".utf8)

    /// Offset of `needle` in the bytes (memchr for its first byte, then memcmp).
    private static func find(_ needle: [UInt8], in base: UnsafePointer<UInt8>, count: Int) -> Int? {
        needle.withUnsafeBytes { n -> Int? in
            var offset = 0
            while count - offset >= n.count {
                guard let hit = memchr(base + offset, Int32(n[0]), count - offset - n.count + 1) else { return nil }
                let at = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
                if memcmp(base + at, n.baseAddress!, n.count) == 0 { return at }
                offset = at + 1
            }
            return nil
        }
    }

    /// Appends `total` numbered lines at the rate, one write(2) per line like an application, rotating.
    final class Writer: Sendable {
        let path: String
        let total: Int
        let settings: Settings
        let written = Atomic<Int>(0)
        let rotations = Atomic<Int>(0)

        init(path: String, total: Int, settings: Settings) {
            self.path = path
            self.total = total
            self.settings = settings
        }

        func run() {
            var fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            let start = Clock.monotonicNanoseconds()
            let perLine = 1e9 / Double(settings.linesPerSecond)
            let rotateEvery = UInt64(settings.rotateEveryMilliseconds) * 1_000_000
            var nextRotation = start + rotateEvery
            var generation = 0
            var line = [UInt8]()
            line.reserveCapacity(128)
            for number in 0..<total {
                let due = start + UInt64(Double(number) * perLine)
                while Clock.monotonicNanoseconds() < due { sched_yield() }
                if Clock.monotonicNanoseconds() >= nextRotation {
                    generation += 1
                    rotate(&fd, generation: generation)
                    rotations.add(1, ordering: .relaxed)
                    nextRotation += rotateEvery
                }
                line.removeAll(keepingCapacity: true)
                // Lengths vary like real lines (the padding depends on the number).
                line.append(contentsOf: "torture \(number) UPLOAD INFO [Torture] payload ".utf8)
                line.append(contentsOf: repeatElement(UInt8(ascii: "x"), count: number % 37))
                line.append(UInt8(ascii: "\n"))
                _ = line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                written.add(1, ordering: .relaxed)
            }
            close(fd)
        }

        private func rotate(_ fd: inout CInt, generation: Int) {
            let rotated = "\(path).\(generation)"
            switch settings.rotation {
            case .rename:
                _ = rename(path, rotated)
                close(fd)
                fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            case .copyTruncate:
                let input = open(path, O_RDONLY | O_CLOEXEC)
                let output = open(rotated, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    _ = buffer.withUnsafeBytes { write(output, $0.baseAddress, n) }
                }
                close(input)
                close(output)
                _ = ftruncate(fd, 0)
            }
        }
    }
}
