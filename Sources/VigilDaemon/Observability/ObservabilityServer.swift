public import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
import VigilSystem
#endif

/// The HTTP side of `/metrics` and `/status`, on SwiftNIO: one event loop thread (`vigil-observe`) serves
/// the loopback TCP listener (`--metrics-listen`), the status socket (`--status-socket`) and the
/// node_exporter textfile timer (`--metrics-textfile`).
///
/// It never touches the hot path: an answer reads atomics and copies the alert book, the firing ledger and
/// the spools' depths under their own short locks. A slow client costs this thread only.
///
/// ```
/// GET /metrics  → 200 text/plain; version=0.0.4   (Prometheus text exposition)
/// GET /status   → 200 application/json            (DaemonStatus.json())
/// other paths   → 404;  other methods → 405 (Allow: GET)
/// ```
public final class ObservabilityServer: Sendable {
    private let group: MultiThreadedEventLoopGroup
    private let daemon: Daemon
    private let logger: Logger
    /// Listening channels, and the status socket's path (removed at stop).
    private let state = Locked<(channels: [any Channel], socketPath: String?, textfile: RepeatedTask?)>(([], nil, nil))

    /// Starts the event loop thread; nothing listens until `listen…` is called.
    public init(daemon: Daemon, logger: Logger) {
        self.daemon = daemon
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // NIO names its threads NIO-ELT-…; ours are vigil-* (N7), so `top -H` shows what each one is. Written
        // through /proc/thread-self/comm (what pthread_setname_np does), which needs no C shim here.
        group.next().execute {
            let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { return }
            _ = "vigil-observe".withCString { write(fd, $0, strlen($0)) }
            close(fd)
        }
    }

    /// Listens on `host:port` (a loopback address; the caller checked). Returns the bound address as
    /// `HOST:PORT` (the port the kernel chose when `port` is 0).
    public func listen(host: String, port: Int) throws(DaemonError) -> String {
        let channel: any Channel
        do {
            channel = try bootstrap().bind(host: host, port: port).wait()
        } catch {
            let privileged =
                port > 0 && port < 1024
                ? " (ports below 1024 need CAP_NET_BIND_SERVICE, which vigil has dropped by then; 9733 is the usual one)"
                : ""
            throw DaemonError(
                "Failed to listen for metrics on '\(host):\(port)': \(Self.reason(error))\(privileged); choose another port with --metrics-listen"
            )
        }
        state.withLock { $0.channels.append(channel) }
        let bound = channel.localAddress?.port ?? port
        return host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)"
    }

    /// Listens on the Unix stream socket `path` with mode 0660 and, when `groupID` is given, that group.
    /// A stale socket (no one accepting) is replaced; a live one (another vigil) is an error.
    public func listen(unixSocket path: String, groupID: UInt32?) throws(DaemonError) {
        if Self.someoneListens(on: path) {
            throw DaemonError(
                "Failed to create the status socket '\(path)': another process (a running vigil?) is listening on it; stop it or choose another path with --status-socket"
            )
        }
        let directory = Self.directory(of: path)
        var info = stat()
        if stat(directory, &info) != 0 || (info.st_mode & S_IFMT) != S_IFDIR {
            throw DaemonError(
                "Failed to create the status socket '\(path)': its directory '\(directory)/' does not exist; create it (RuntimeDirectory=vigil in vigil.service) or choose another path with --status-socket"
            )
        }
        let channel: any Channel
        do {
            channel = try bootstrap().bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        } catch {
            throw DaemonError(
                "Failed to create the status socket '\(path)': \(Self.reason(error)); choose another path with --status-socket"
            )
        }
        state.withLock {
            $0.channels.append(channel)
            $0.socketPath = path
        }
        // The daemon's umask (UMask=0077 in the unit) made the socket narrower than this until now, never
        // wider: the window between bind and chmod grants nothing.
        if chmod(path, 0o660) != 0 {
            throw DaemonError(
                "Failed to set the mode of the status socket '\(path)' to 0660: \(String(cString: strerror(errno)))"
            )
        }
        guard let groupID else { return }
        // In a setgid directory of that group (install -d -g GROUP -m 2750 /run/vigil) the socket already
        // has it: no chown, and so no CAP_CHOWN, which the daemon has dropped by now unless a rule needs it.
        if lstat(path, &info) == 0 && info.st_gid == gid_t(groupID) { return }
        if chown(path, uid_t.max, gid_t(groupID)) != 0 {
            let reason = String(cString: strerror(errno))
            throw DaemonError(
                "Failed to give the status socket '\(path)' group \(groupID): \(reason); vigil has dropped CAP_CHOWN by the time it listens, so make the socket's directory belong to that group with the setgid bit (install -d -g GROUP -m 2750 \(Self.directory(of: path)); in vigil.service: ExecStartPre=+/usr/bin/install -d -g GROUP -m 2750 \(Self.directory(of: path))). See docs/metrics.md#status-socket"
            )
        }
    }

    /// Writes the scrape to the node_exporter textfile `path` now and every `intervalSeconds` (and once
    /// more at `stop`). A failure is logged once, with the path and the fix, and retried at each period;
    /// recovery is logged too.
    public func startTextfile(path: String, intervalSeconds: Int64) {
        let writer = TextfileWriter(path: path)
        let daemon = self.daemon
        let logger = self.logger
        let failing = Locked<String?>(nil)
        let task = group.next().scheduleRepeatedTask(
            initialDelay: .zero,
            delay: .seconds(intervalSeconds)
        ) { _ in
            Self.writeTextfile(writer, daemon: daemon, logger: logger, failing: failing)
        }
        state.withLock { $0.textfile = task }
        // The final write at stop reuses the same writer and failure memory.
        finalTextfile.withLock { $0 = { Self.writeTextfile(writer, daemon: daemon, logger: logger, failing: failing) } }
    }

    /// The textfile write `stop` runs last, if a textfile is asked for.
    private let finalTextfile = Locked<(@Sendable () -> Void)?>(nil)

    private static func writeTextfile(
        _ writer: TextfileWriter,
        daemon: Daemon,
        logger: Logger,
        failing: Locked<String?>
    ) {
        let problem = writer.write(daemon.metricsExposition())
        failing.withLock { last in
            if let problem, problem != last {
                logger.error("\(problem)")
            } else if problem == nil, last != nil {
                logger.notice("Metrics textfile '\(writer.path)' written again")
            }
            last = problem
        }
    }

    /// Closes the listeners, removes the status socket, writes the textfile a last time and stops the thread.
    public func stop() {
        let (channels, socketPath, textfile) = state.withLock { state in
            defer { state = ([], nil, nil) }
            return state
        }
        textfile?.cancel()
        for channel in channels { try? channel.close().wait() }
        if let socketPath { _ = unlink(socketPath) }
        if let final = finalTextfile.withLock({ $0 }) { final() }
        try? group.syncShutdownGracefully()
    }

    private func bootstrap() -> ServerBootstrap {
        let daemon = self.daemon
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 16)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ObservabilityHandler(daemon: daemon))
                }
            }
    }

    /// A system error as its text ("Address already in use"), not NIO's description of the call.
    private static func reason(_ error: any Error) -> String {
        if let io = error as? IOError { return String(cString: strerror(io.errnoCode)) }
        return "\(error)"
    }

    /// The directory part of `path` ("." when it has none).
    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// True when a process accepts connections on the Unix socket `path` (a stale file refuses them).
    private static func someoneListens(on path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in bytes.enumerated() { raw[index] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        return rc == 0
    }
}

/// Answers one HTTP connection's requests: `/metrics` and `/status`, on the event loop thread.
final class ObservabilityHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let daemon: Daemon
    private var head: HTTPRequestHead?

    init(daemon: Daemon) {
        self.daemon = daemon
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path =
            head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let status: HTTPResponseStatus
        let contentType: String
        let body: [UInt8]
        var extra: [(String, String)] = []
        switch (head.method, path) {
        case (.GET, "/metrics"):
            status = .ok
            contentType = PrometheusText.contentType
            body = Array(daemon.metricsExposition().utf8)
        case (.GET, "/status"):
            status = .ok
            contentType = "application/json"
            body = daemon.statusReport().json() + [UInt8(ascii: "\n")]
        case (_, "/metrics"), (_, "/status"):
            status = .methodNotAllowed
            contentType = "text/plain; charset=utf-8"
            body = Array("only GET is served here\n".utf8)
            extra.append(("Allow", "GET"))
        default:
            status = .notFound
            contentType = "text/plain; charset=utf-8"
            body = Array("not found; vigil serves GET /metrics and GET /status\n".utf8)
        }
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", String(body.count))] + extra)
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
            promise: nil
        )
        var buffer = context.channel.allocator.buffer(capacity: body.count)
        buffer.writeBytes(body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        if head.isKeepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
