import Testing
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil probe`, run as a user would: here, without CAP_NET_ADMIN, and inside new namespaces.
@Suite(
    .enabled(if: VigilBinary.exists, "build the vigil binary first (swift build), or set VIGIL_BINARY"),
    .timeLimit(.minutes(1))
)
struct ProbeCommandTests {
    static let labels = [
        "kernel", "systemd", "capabilities", "namespaces", "proc connector", "taskstats", "inotify", "pressure cpu",
        "pressure memory", "pressure io", "pid_max", "sock_diag",
    ]

    /// `unshare -U -r` works here: user namespaces are allowed.
    static let userNamespacesAllowed: Bool = {
        guard access("/usr/bin/unshare", X_OK) == 0 else { return false }
        return (try? Command.run("/usr/bin/unshare", ["--user", "--map-root-user", "/bin/true"]).code) == 0
    }()

    /// The value part of the line labelled `label`.
    private func line(_ label: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(label + " ") }.map { String($0.dropFirst(17)) }
    }

    @Test func oneAlignedLinePerFeatureAndExitZero() throws {
        let result = try VigilBinary.run(["probe"])
        #expect(result.code == 0, "\(result)")
        let lines = result.out.split(separator: "\n").map(String.init)
        #expect(lines.count == Self.labels.count, "\(lines)")
        for (line, label) in zip(lines, Self.labels) {
            #expect(line.hasPrefix(label + " "), "\(line)")
            let value = line.dropFirst(17)
            #expect(value.first != " " && line.dropFirst(label.count).prefix(17 - label.count).allSatisfy { $0 == " " })
        }
        #expect(line("kernel", in: result.out) == KernelRelease.current().release)
        #expect(line("pid_max", in: result.out) == HostFeatures.pidMax().map(String.init))
        #expect(line("sock_diag", in: result.out)?.hasPrefix("ok: ") == true, "\(result.out)")
        if Capabilities.has(.netAdmin) {
            #expect(line("proc connector", in: result.out)?.hasPrefix("ok: bind ok, events arrive") == true)
            #expect(line("proc connector", in: result.out)?.contains("(SO_RCVBUFFORCE)") == true)
        }
    }

    @Test func jsonHasTheSameFacts() throws {
        let result = try VigilBinary.run(["probe", "--json"])
        #expect(result.code == 0, "\(result)")
        #expect(result.out.hasPrefix("{\"kernel\":{\"release\":\"\(KernelRelease.current().release)\""))
        #expect(result.out.contains("\"procConnector\":{"))
        #expect(result.out.contains("\"pressure\":{\"cpu\":{\"available\":"))
        if access("/usr/bin/python3", X_OK) == 0 {
            let parsed = try Command.run(
                "/usr/bin/python3",
                ["-c", "import json,sys; d=json.loads(sys.argv[1]); print(sorted(d))", result.out]
            )
            #expect(
                parsed.out == "['capabilities', 'inotify', 'kernel', 'namespaces', 'pidMax', 'pressure', "
                    + "'procConnector', 'sockDiag', 'systemd', 'taskstats']\n",
                "\(parsed)"
            )
        }
    }

    @Test(
        .enabled(if: access("/usr/sbin/capsh", X_OK) == 0 && Capabilities.has(.setpcap), "needs capsh and CAP_SETPCAP")
    )
    func withoutNetAdminTheBufferIsNotForced() throws {
        let result = try Command.run(
            "/usr/sbin/capsh",
            ["--drop=cap_net_admin", "--", "-c", "exec \"$0\" probe", VigilBinary.path]
        )
        #expect(result.code == 0, "\(result)")
        #expect(line("capabilities", in: result.out)?.contains("no CAP_NET_ADMIN: SO_RCVBUFFORCE refused") == true)
        #expect(
            line("proc connector", in: result.out)?.contains("SO_RCVBUFFORCE refused, Operation not permitted") == true
        )
    }

    @Test(.enabled(if: userNamespacesAllowed, "needs unshare(1) and permission to create user namespaces"))
    func inAContainerTheSilenceIsExplained() throws {
        let result = try Command.run(
            "/usr/bin/unshare",
            ["--user", "--map-root-user", "--pid", "--fork", "--mount-proc", VigilBinary.path, "probe"]
        )
        #expect(result.code == 0, "\(result)")
        let connector = line("proc connector", in: result.out) ?? ""
        #expect(connector.hasPrefix("bind ok, but this process is not in the initial user and pid namespaces"))
        #expect(line("namespaces", in: result.out)?.hasPrefix("pid not initial, user not initial") == true)
    }
}
