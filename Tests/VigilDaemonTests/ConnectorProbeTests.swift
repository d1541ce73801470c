import Testing
import VigilSystem

@testable import VigilDaemon

/// The start-up probe of the proc connector: for real on this host, and its diagnosis from detected facts.
@Suite(.timeLimit(.minutes(1)))
struct ConnectorProbeTests {
    static let connectorOpens: Bool = {
        do throws(ProcConnectorError) {
            _ = try ProcConnector(receiveBufferSize: 65536)
            return true
        } catch {
            return false
        }
    }()

    @Test(.enabled(if: connectorOpens, "needs the netlink proc connector: socket, bind and subscribe must succeed"))
    func eventsOfTheProbeChildArrive() throws {
        let result = ConnectorProbe.run(timeout: 5000)
        let cause = result.likelyCause ?? ""
        #expect(result.eventsArrive, "\(cause)")
        #expect(result.sawFork && result.sawExec && result.sawExit)
        #expect(result.exitStatus == 0)
        #expect(result.acknowledged && result.acknowledgementError == 0)
        #expect(result.likelyCause == nil)
        #expect(result.summary.hasPrefix("ok: bind ok, events arrive"))
        #expect((result.exitLatencyNanoseconds ?? .max) < 5_000_000_000)
    }

    @Test(.enabled(if: Capabilities.has(.sysAdmin), "moving a thread into a new network namespace needs CAP_SYS_ADMIN"))
    func inAnotherNetworkNamespaceTheConnectorIsNotAvailable() {
        let summary = Locked<String?>(nil)
        let thread = Threads.spawn(name: "vigil-test-netns") {
            guard (try? Namespaces._unshareNetworkOfCallingThread()) != nil else { return }
            let result = ConnectorProbe.run(timeout: 1000)
            summary.withLock { $0 = result.summary }
        }
        Threads.join(thread)
        let text = summary.withLock { $0 } ?? ""
        #expect(text.hasPrefix("not available: Failed to subscribe to process events"))
        #expect(text.contains("initial network namespace") && text.contains("#proc-connector-silent"))
    }

    private func silent(
        _ namespaces: ConnectorProbe.NamespaceFacts,
        acknowledged: Bool = false,
        events: Int = 0
    ) -> ConnectorProbe.Result {
        var result = ConnectorProbe.Result(
            timeout: 1000,
            connector: .success(.init(requested: 4 << 20, effective: 8 << 20, forced: true, forceError: nil)),
            namespaces: namespaces,
            netAdmin: true
        )
        result.child = 4242
        result.acknowledged = acknowledged
        result.eventsReceived = events
        return result
    }

    @Test func aChildPidNamespaceIsNamedWithWhatArrived() {
        let result = silent(.init(initialPid: false, initialUser: true), events: 7)
        let cause = result.likelyCause ?? ""
        #expect(cause.contains("not in the initial pid namespace (a container)"))
        #expect(cause.contains("the 7 events that did arrive carry the host's pids"))
        #expect(result.summary.hasPrefix("bind ok, but this process is not in the initial pid namespace"))
    }

    @Test func aChildUserNamespaceIsNamed() {
        let result = silent(.init(initialPid: false, initialUser: false))
        #expect(result.likelyCause?.contains("not in the initial user and pid namespaces (a container)") == true)
    }

    @Test func eventsWithoutAcknowledgementCarryACaveat() {
        var result = silent(.init(initialPid: true, initialUser: false), events: 9)
        result.sawExec = true
        result.sawExit = true
        #expect(result.likelyCause == nil)
        #expect(result.caveat?.contains("events arrive only while another process subscribed") == true)
        #expect(result.summary.hasPrefix("ok: bind ok, events arrive"))
        #expect(result.summary.hasSuffix("from the host's namespaces"))
        result.acknowledged = true
        #expect(result.caveat == nil)
    }

    @Test func noAcknowledgementInUnknownNamespaces() {
        let result = silent(.init())
        #expect(result.likelyCause?.contains("did not acknowledge the subscription") == true)
    }

    @Test func aRefusedSubscriptionNamesCapNetAdmin() {
        var result = silent(.init(initialPid: true, initialUser: true), acknowledged: true)
        result.acknowledgementError = 1
        result.netAdmin = false
        #expect(result.likelyCause?.contains("errno 1; CAP_NET_ADMIN is not effective") == true)
    }

    @Test func execWithoutExitAndLostEvents() {
        var result = silent(.init(initialPid: true, initialUser: true), acknowledged: true, events: 3)
        result.sawExec = true
        result.lostEvents = 2
        let cause = result.likelyCause ?? ""
        #expect(cause.contains("events were lost (ENOBUFS 2 times)"))
        #expect(cause.contains("the exec event arrived but the exit did not within 1000 ms"))
    }

    @Test func formats() {
        #expect(ConnectorProbe.formatBytes(8 << 20) == "8 MiB")
        #expect(ConnectorProbe.formatBytes(425_984) == "416 KiB")
        #expect(ConnectorProbe.formatDuration(412_000) == "412 µs")
        #expect(ConnectorProbe.formatDuration(2_345_678) == "2.3 ms")
    }
}
