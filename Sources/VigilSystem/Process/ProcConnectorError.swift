public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Why subscribing to process events failed (E1): a code named for what the user experiences (N4), the
/// step that failed, the errno as the cause, and a message that says what failed, why, and what to do
/// (E2, E4).
public struct ProcConnectorError: Error, Sendable, CustomStringConvertible {
    /// What the user experiences; opaque so that codes can be added without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: Hashable, Sendable {
            case permissionDenied
            case unsupported
            case addressFamilyRestricted
            case notInitialNetworkNamespace
            case other(CInt)
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) { self.wrapped = wrapped }

        /// The kernel or a security policy refused a step: on kernels before 6.6 binding the connector needs
        /// `CAP_NET_ADMIN`; a seccomp filter or security module can refuse any step.
        public static var permissionDenied: Code { Code(.permissionDenied) }
        /// The kernel has no process events connector (`EPROTONOSUPPORT`: built without
        /// `CONFIG_CONNECTOR`/`CONFIG_PROC_EVENTS`).
        public static var unsupported: Code { Code(.unsupported) }
        /// `AF_NETLINK` sockets are not allowed here (`EAFNOSUPPORT`, what systemd's
        /// `RestrictAddressFamilies=` returns).
        public static var addressFamilyRestricted: Code { Code(.addressFamilyRestricted) }
        /// The process is not in the host's initial network namespace, where the connector lives: the kernel
        /// refuses the subscription (`ECONNREFUSED`: no kernel socket to receive it). `PrivateNetwork=yes`,
        /// a container, `ip netns exec`.
        public static var notInitialNetworkNamespace: Code { Code(.notInitialNetworkNamespace) }
        /// Any other errno.
        public static func other(_ errno: Errno) -> Code { Code(.other(errno.rawValue)) }

        /// The code for `errno` at `step`.
        init(errno: Errno, step: Step) {
            switch errno {
            case .notPermitted, .permissionDenied: self = .permissionDenied
            case .protocolNotSupported: self = .unsupported
            case .addressFamilyNotSupported where step == .socket: self = .addressFamilyRestricted
            case .connectionRefused where step == .subscribe: self = .notInitialNetworkNamespace
            default: self = .other(errno)
            }
        }

        /// The code's name, e.g. `permissionDenied`.
        public var description: String {
            switch wrapped {
            case .permissionDenied: "permissionDenied"
            case .unsupported: "unsupported"
            case .addressFamilyRestricted: "addressFamilyRestricted"
            case .notInitialNetworkNamespace: "notInitialNetworkNamespace"
            case .other(let code): "other(\(code))"
            }
        }
    }

    /// The step of `ProcConnector.init` that failed.
    public enum Step: Sendable, Equatable, CustomStringConvertible {
        /// `socket(AF_NETLINK, SOCK_DGRAM, NETLINK_CONNECTOR)`.
        case socket
        /// `bind` to the multicast group `CN_IDX_PROC`.
        case bind
        /// Sending `PROC_CN_MCAST_LISTEN` to the kernel.
        case subscribe

        /// What the step does, for messages.
        public var description: String {
            switch self {
            case .socket: "opening a netlink connector socket"
            case .bind: "binding the netlink proc connector"
            case .subscribe: "sending the proc connector subscription (PROC_CN_MCAST_LISTEN)"
            }
        }
    }

    /// What the user experiences.
    public let code: Code
    /// Which step failed.
    public let step: Step
    /// The errno the step returned.
    public let errno: Errno
    /// What failed → cause → what to do, one line.
    public let message: String
    /// The underlying error (the `Errno`).
    public let cause: (any Error & Sendable)?
    /// Where the error was made.
    public let fileID: String
    /// Where the error was made.
    public let line: Int

    /// The error for `errno` returned at `step`.
    public init(step: Step, errno: Errno, fileID: String = #fileID, line: Int = #line) {
        self.code = Code(errno: errno, step: step)
        self.step = step
        self.errno = errno
        self.cause = errno
        self.fileID = fileID
        self.line = line
        self.message = Self.message(code: code, step: step, errno: errno)
    }

    /// One line (E1).
    public var description: String { message }

    /// The message, the code and the cause, one per line, with where the error was made.
    public func detailedDescription() -> String {
        var lines = [message, "  code: \(code) at step \(step) (\(fileID):\(line))"]
        if let cause {
            lines.append("  cause: \(String(describing: type(of: cause))): \(cause) (errno \(errno.rawValue))")
        }
        return lines.joined(separator: "\n")
    }

    private static func message(code: Code, step: Step, errno: Errno) -> String {
        let failed = "Failed to subscribe to process events: \(step) returned '\(errno)'."
        switch code {
        case .permissionDenied where step == .socket:
            return failed + " A security policy refused the socket (seccomp SystemCallFilter=, SELinux or AppArmor);"
                + " allow AF_NETLINK sockets for vigil, or run 'vigil probe'."
                + " See docs/troubleshooting.md#proc-connector-permission"
        case .permissionDenied:
            return failed + " This kernel requires CAP_NET_ADMIN for it (kernels before 6.6 do)."
                + " Add CAP_NET_ADMIN to CapabilityBoundingSet= in vigil.service, or run 'vigil probe'."
                + " See docs/troubleshooting.md#proc-connector-permission"
        case .unsupported:
            return failed + " This kernel has no process events connector (built without CONFIG_CONNECTOR and"
                + " CONFIG_PROC_EVENTS); process rules cannot run on this host. Run 'vigil probe'."
                + " See docs/troubleshooting.md#proc-connector-silent"
        case .addressFamilyRestricted:
            return failed + " Netlink sockets are not allowed for this process;"
                + " add AF_NETLINK to 'RestrictAddressFamilies=' in vigil.service, or run 'vigil probe'."
                + " See docs/troubleshooting.md#proc-connector-permission"
        case .notInitialNetworkNamespace:
            return failed + " The proc connector exists only in the host's initial network namespace, and vigil runs"
                + " in another one (PrivateNetwork=yes, a container, ip netns exec); run vigil in the host's network"
                + " namespace, or run 'vigil probe'. See docs/troubleshooting.md#proc-connector-silent"
        default:
            return failed + " Run 'vigil probe' to see what this host supports."
                + " See docs/troubleshooting.md#proc-connector-silent"
        }
    }
}
