import ArgumentParser
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil status`: what the running daemon is doing, over its status socket (`GET /status`), as tables or
/// as the daemon's JSON. See docs/metrics.md.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the running daemon is doing: sources, rules and their hits, firing conditions.",
        discussion: """
            Talks to the daemon over its status socket (vigil run --status-socket, default \
            /run/vigil/status.sock, mode 0660: root and members of --status-group may connect). \
            Exits 1 when no daemon answers.
            """
    )

    @Option(help: ArgumentHelp("The daemon's status socket.", valueName: "path"))
    var socket: String = "/run/vigil/status.sock"

    @Flag(help: "Print the daemon's JSON as it is (stable snake_case keys, for scripts).")
    var json = false

    func run() throws {
        let body: [UInt8]
        switch Self.fetch(socket: socket) {
        case .success(let bytes): body = bytes
        case .failure(let failure):
            RuleLoading.printError("vigil status: \(failure.message)")
            throw ExitCode(1)
        }
        if json {
            print(String(decoding: body, as: UTF8.self), terminator: body.last == UInt8(ascii: "\n") ? "" : "\n")
            return
        }
        guard let status = JSONValue.parse(body) else {
            RuleLoading.printError(
                "vigil status: the daemon on \(socket) answered something that is not JSON; is it a vigil of another version? Try --json to see it"
            )
            throw ExitCode(1)
        }
        print(StatusReport.render(status, now: Clock.realtime().seconds), terminator: "")
    }

    /// Why the command failed, as the one line it prints.
    struct Failure: Error {
        let message: String
    }

    /// `GET /status` over the Unix socket; the body, or the line that says what to do.
    static func fetch(socket: String) -> Result<[UInt8], Failure> {
        let noDaemon = Failure(
            message:
                "no daemon is listening on \(socket) (is vigil running? is --status-socket set differently?)"
        )
        var info = stat()
        if lstat(socket, &info) != 0 {
            if errno == EACCES { return .failure(permissionDenied(socket)) }
            return .failure(noDaemon)
        }
        guard (info.st_mode & S_IFMT) == S_IFSOCK else {
            return .failure(
                Failure(message: "'\(socket)' is not a socket; pass the daemon's --status-socket path with --socket")
            )
        }
        // Connecting to a Unix socket needs write permission on it (`man 7 unix`).
        if access(socket, W_OK) != 0 && errno == EACCES { return .failure(permissionDenied(socket)) }
        let client = HTTPClient(timeoutMilliseconds: 5000, bodyLimit: 16 << 20, unixSocketPath: socket)
        defer { client.close() }
        switch client.get(url: "http://localhost/status") {
        case .success(let response) where response.status == 200: return .success(response.body)
        case .success(let response):
            return .failure(
                Failure(message: "the daemon on \(socket) answered HTTP \(response.status): \(response.text)")
            )
        case .failure(let error) where error.isConnect: return .failure(noDaemon)
        case .failure(let error):
            return .failure(Failure(message: "asking the daemon on \(socket) failed: \(error.reason)"))
        }
    }

    private static func permissionDenied(_ socket: String) -> Failure {
        Failure(
            message:
                "permission denied on \(socket): run as root, or add your user to the socket's group (vigil run --status-group NAME; then 'usermod -aG NAME $USER' and log in again)"
        )
    }
}

/// The readable form of `/status`: a header, then one table per part.
enum StatusReport {
    /// Renders the daemon's JSON (as `DaemonStatus.json()` writes it) at wall-clock `now`.
    static func render(_ s: JSONValue, now: Int64) -> String {
        var out = ""
        let rules = s["rules"]?.arrayValue ?? []
        let loaded = rules.filter { $0["enabled"]?.boolValue == true && $0["kind"]?.stringValue != "internal" }.count
        let start = s["start_time_seconds"]?.intValue ?? 0
        var reload = "none since start"
        if let last = s["last_reload_seconds"]?.intValue {
            let result = s["last_reload_ok"]?.boolValue == true ? "ok" : "FAILED"
            reload = "\(time(last, now: now)), \(result)"
        }
        let reloads = s["reloads"]?.intValue ?? 0
        let failed = s["reload_failures"]?.intValue ?? 0
        out +=
            "Vigil \(s["version"]?.stringValue ?? "?"), up \(duration(s["uptime_seconds"]?.intValue ?? 0)) (since \(utc(start)))\n"
        out += "Rules loaded: \(loaded); last reload: \(reload) (\(reloads) ok, \(failed) failed)\n\n"

        let watches = s["watches"]
        out += "SOURCES\n"
        out += table(
            ["SOURCE", "STATE", "RULES", "EVENTS", "WATCHES"],
            (s["sources"]?.arrayValue ?? []).map { source in
                [
                    source["name"]?.stringValue ?? "",
                    source["running"]?.boolValue == true ? "running" : "off",
                    number(source["rules"]),
                    number(source["events"]),
                    source["watches"]?.intValue.map(String.init) ?? "-",
                ]
            },
            right: [2, 3, 4]
        )
        let limit = watches?["inotify_limit"]?.intValue.map(String.init) ?? "unknown"
        out +=
            "Watches: \(number(watches?["directory_watches"])) directory watches for \(number(watches?["watched_files"])) files, \(number(watches?["permission_watches"])) permission watches; inotify limit \(limit)\n\n"

        out += "RULES (most recent first)\n"
        out += table(
            ["RULE", "KIND", "SEVERITY", "HITS", "LAST FIRE"],
            rules.map { rule in
                [
                    rule["id"]?.stringValue ?? "",
                    rule["kind"]?.stringValue ?? "",
                    rule["severity"]?.stringValue ?? "",
                    number(rule["hits"]),
                    rule["last_fire_seconds"]?.intValue.map { time($0, now: now) } ?? "never",
                ]
            },
            right: [3]
        )
        out += "\n"

        let firing = s["firing"]?.arrayValue ?? []
        out += "FIRING (\(firing.count))\n"
        if firing.isEmpty {
            out += "  none\n"
        } else {
            out += table(
                ["RULE", "SEVERITY", "SINCE", "MESSAGE"],
                firing.map { condition in
                    [
                        condition["rule"]?.stringValue ?? "",
                        condition["severity"]?.stringValue ?? "",
                        time(condition["since_seconds"]?.intValue ?? 0, now: now),
                        clip(condition["message"]?.stringValue ?? ""),
                    ]
                }
            )
        }
        out += "\n"

        let recent = s["recent_alerts"]?.arrayValue ?? []
        out += "RECENT ALERTS (\(recent.count), newest last)\n"
        if recent.isEmpty {
            out += "  none\n"
        } else {
            out += table(
                ["TIME", "SEVERITY", "STATE", "RULE", "MESSAGE"],
                recent.map { alert in
                    [
                        utc(alert["time_seconds"]?.intValue ?? 0),
                        alert["severity"]?.stringValue ?? "",
                        alert["state"]?.stringValue ?? "",
                        alert["rule"]?.stringValue ?? "",
                        clip(alert["message"]?.stringValue ?? ""),
                    ]
                }
            )
        }
        out += "\n"

        let losses = s["losses"]
        out += "LOSSES\n"
        out +=
            "  inotify overflows \(number(losses?["inotify_overflows"])), process events lost \(number(losses?["process_events_lost"])), permission rescans \(number(losses?["permission_rescans"])), undecodable inotify buffers \(number(losses?["decode_errors"]))\n"

        let sinks = s["sinks"]?.arrayValue ?? []
        if !sinks.isEmpty {
            out += "\nREMOTE SINKS\n"
            out += table(
                ["SINK", "KIND", "DELIVERED", "REFUSED", "FAILED", "SPOOLED", "SPOOL BYTES"],
                sinks.map { sink in
                    [
                        sink["name"]?.stringValue ?? "", sink["kind"]?.stringValue ?? "", number(sink["delivered"]),
                        number(sink["refused"]), number(sink["failed_attempts"]), number(sink["spool_records"]),
                        number(sink["spool_bytes"]),
                    ]
                },
                right: [2, 3, 4, 5, 6]
            )
        }
        return out
    }

    /// Columns padded to their widest cell, two spaces apart, indented by two; `right` columns are
    /// right-aligned (numbers).
    static func table(_ headers: [String], _ rows: [[String]], right: Set<Int> = []) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], cell.count)
            }
        }
        var out = ""
        for row in [headers] + rows {
            var line = " "
            for (index, cell) in row.enumerated() where index < widths.count {
                let padding = String(repeating: " ", count: widths[index] - cell.count)
                let last = index == row.count - 1
                line +=
                    " " + (right.contains(index) ? padding + cell : cell + (last ? "" : padding)) + (last ? "" : " ")
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    private static func number(_ value: JSONValue?) -> String {
        value?.intValue.map(String.init) ?? "-"
    }

    /// A message cut to 80 characters for a table (the JSON has it whole).
    private static func clip(_ message: String) -> String {
        let line = message.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return line.count > 80 ? String(line.prefix(79)) + "…" : line
    }

    /// `2026-11-27 21:11:16 UTC (5 s ago)`.
    static func time(_ seconds: Int64, now: Int64) -> String {
        "\(utc(seconds)) (\(duration(max(0, now - seconds))) ago)"
    }

    /// `2026-11-27 21:11:16 UTC`, through `gmtime_r(3)` (no Foundation here).
    static func utc(_ seconds: Int64) -> String {
        var t = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&t, &parts) != nil else { return String(seconds) }
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : String(value) }
        return
            "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday)) \(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) UTC"
    }

    /// `42 s`, `5 min 3 s`, `2 h 3 min`, `4 d 2 h`.
    static func duration(_ seconds: Int64) -> String {
        if seconds < 60 { return "\(seconds) s" }
        if seconds < 3600 { return "\(seconds / 60) min \(seconds % 60) s" }
        if seconds < 86400 { return "\(seconds / 3600) h \(seconds % 3600 / 60) min" }
        return "\(seconds / 86400) d \(seconds % 86400 / 3600) h"
    }
}
