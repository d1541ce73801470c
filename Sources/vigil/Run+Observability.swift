import ArgumentParser
import Logging
import VigilDaemon

#if canImport(Glibc)
import Glibc
#endif

/// `vigil run`'s options for what the daemon shows of itself: `/metrics` on a loopback port, a node_exporter
/// textfile, the status socket that `vigil status` talks to. See docs/metrics.md.
struct ObservabilityOptions: ParsableArguments {
    @Option(
        name: .customLong("metrics-listen"),
        help: ArgumentHelp(
            "Serve GET /metrics and GET /status over HTTP on this loopback address (127.0.0.1:9733, [::1]:9733; port 0 picks a free one). Off by default.",
            valueName: "addr:port"
        )
    )
    var metricsListen: String?

    @Option(
        name: .customLong("metrics-textfile"),
        help: ArgumentHelp(
            "Also write the metrics as a node_exporter textfile (atomically, every 15 s and at stop), e.g. /var/lib/node_exporter/textfile_collector/vigil.prom.",
            valueName: "path"
        )
    )
    var metricsTextfile: String?

    @Option(
        name: .customLong("status-socket"),
        help: ArgumentHelp(
            "The Unix socket `vigil status` talks to (mode 0660; default: /run/vigil/status.sock, skipped with a notice when /run/vigil/ is missing or another vigil holds it).",
            valueName: "path"
        )
    )
    var statusSocket: String?

    /// Where the status socket goes when `--status-socket` is not given.
    static let defaultStatusSocket = "/run/vigil/status.sock"

    @Option(
        name: .customLong("status-group"),
        help: ArgumentHelp(
            "Give the status socket this group, so its members may run `vigil status`.",
            valueName: "name"
        )
    )
    var statusGroup: String?

    @Flag(name: .customLong("no-status-socket"), help: "Do not create the status socket.")
    var noStatusSocket = false

    /// How often the textfile is rewritten.
    static let textfileIntervalSeconds: Int64 = 15

    /// Refuses a non-loopback `--metrics-listen` and an unknown `--status-group` before the daemon starts,
    /// with one line and exit code 1 (never the usage text).
    func validate() throws {
        if let metricsListen, case .failure(let message) = Self.parseListen(metricsListen) {
            RuleLoading.printError("vigil: \(message)")
            throw ExitCode(1)
        }
        if let statusGroup, !noStatusSocket, getgrnam(statusGroup) == nil {
            RuleLoading.printError("vigil: \(Self.unknownGroup(statusGroup))")
            throw ExitCode(1)
        }
    }

    private static func unknownGroup(_ name: String) -> String {
        "Failed to give the status socket group '\(name)': no such group; create it (groupadd --system \(name)) or change --status-group"
    }

    /// Starts the metrics and status endpoints for `daemon`; nil when none is asked for.
    func start(daemon: Daemon, logger: Logger) throws -> ObservabilityService? {
        if metricsListen == nil && metricsTextfile == nil && noStatusSocket { return nil }
        var groupID: UInt32?
        if let statusGroup, !noStatusSocket {
            guard let group = getgrnam(statusGroup) else {
                throw DaemonError(Self.unknownGroup(statusGroup))
            }
            groupID = group.pointee.gr_gid
        }
        let server = ObservabilityServer(daemon: daemon, logger: logger)
        do {
            if let metricsListen, case .success(let host, let port) = Self.parseListen(metricsListen) {
                let bound = try server.listen(host: host, port: port)
                logger.info("Metrics served on http://\(bound)/metrics (and /status)")
            }
            if !noStatusSocket {
                let path = statusSocket ?? Self.defaultStatusSocket
                do {
                    try server.listen(unixSocket: path, groupID: groupID)
                    logger.info(
                        "Status socket listening on \(path) (mode 0660\(statusGroup.map { ", group \($0)" } ?? ""))"
                    )
                } catch  where statusSocket == nil {
                    // The default is a convenience (vigil run by hand, in a test, without RuntimeDirectory=):
                    // its absence must not stop the daemon. An explicit --status-socket must work.
                    logger.notice("\(error); `vigil status` is not available (with --status-socket this is fatal)")
                }
            }
            if let metricsTextfile {
                server.startTextfile(path: metricsTextfile, intervalSeconds: Self.textfileIntervalSeconds)
                logger.info(
                    "Metrics written to the textfile \(metricsTextfile) every \(Self.textfileIntervalSeconds) s"
                )
            }
        } catch {
            server.stop()
            throw error
        }
        return ObservabilityService(server: server)
    }

    /// A `--metrics-listen` value split into a loopback host and a port, or the reason it is refused.
    enum Listen: Equatable {
        case success(host: String, port: Int)
        case failure(String)
    }

    /// Parses `HOST:PORT` or `[V6]:PORT`; only loopback hosts (127.0.0.0/8, ::1, localhost) pass.
    static func parseListen(_ value: String) -> Listen {
        let host: String
        let portText: Substring
        if value.hasPrefix("[") {
            guard let close = value.firstIndex(of: "]"), value[value.index(after: close)...].hasPrefix(":") else {
                return .failure("--metrics-listen '\(value)': expected ADDR:PORT, e.g. 127.0.0.1:9733 or [::1]:9733")
            }
            host = String(value[value.index(after: value.startIndex)..<close])
            portText = value[value.index(close, offsetBy: 2)...]
        } else {
            guard let colon = value.lastIndex(of: ":") else {
                return .failure("--metrics-listen '\(value)': expected ADDR:PORT, e.g. 127.0.0.1:9733 or [::1]:9733")
            }
            host = String(value[..<colon])
            portText = value[value.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port) else {
            return .failure("--metrics-listen '\(value)': the port must be a number from 0 to 65535")
        }
        if host == "localhost" { return .success(host: "127.0.0.1", port: port) }
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            // s_addr is in network byte order: its first byte in memory is the first octet.
            let first = withUnsafeBytes(of: &v4.s_addr) { $0[0] }
            if first == 127 { return .success(host: host, port: port) }
            return .failure(Self.notLoopback(value))
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes == [UInt8](repeating: 0, count: 15) + [1] { return .success(host: "::1", port: port) }
            return .failure(Self.notLoopback(value))
        }
        return .failure(
            "--metrics-listen '\(value)': '\(host)' is not an IP address; use 127.0.0.1, [::1] or localhost"
        )
    }

    private static func notLoopback(_ value: String) -> String {
        "--metrics-listen '\(value)' is refused: metrics and status are served on loopback only (127.0.0.0/8 or [::1]), because they are unauthenticated and tell what this host watches. To expose them, put a reverse proxy with TLS and authentication in front of 127.0.0.1:9733, or use --metrics-textfile with node_exporter's textfile collector"
    }
}

/// The running metrics and status endpoints.
final class ObservabilityService {
    private let server: ObservabilityServer

    init(server: ObservabilityServer) {
        self.server = server
    }

    /// Stops serving (before the daemon stops), removes the status socket and writes the textfile a last time.
    func stop() { server.stop() }
}
