import Testing
import VigilRules

@testable import VigilDaemon

/// The restart policy alone: backoff, the flap limit and confirmation, on a fake clock (nanoseconds).
@Suite struct ServiceSupervisorTests {
    let location = SourceLocation(file: "t.yaml", line: 1, column: 1)
    let ms: UInt64 = 1_000_000

    /// Triggers at `now`; a scheduled run is taken and run at its time, an immediate one at `now`, and the new
    /// process is reported started. Returns the decision.
    @discardableResult
    func restart(_ supervisor: inout ServiceSupervisor, at now: UInt64) -> ServiceSupervisor.Decision {
        let decision = supervisor.trigger(now: now)
        switch decision {
        case .runNow:
            _ = supervisor.ran(now: now, via: "x")
            _ = supervisor.processStarted()
        case .runAt(let at):
            let took = supervisor.takeScheduled()
            #expect(took)
            _ = supervisor.ran(now: at, via: "x")
            _ = supervisor.processStarted()
        default:
            break
        }
        return decision
    }

    @Test func firstRestartRunsAtOnceThenBackoffDoublesUpToTheMaximum() {
        var supervisor = ServiceSupervisor(
            kind: .restart,
            action: ServiceAction(location: location, backoffMilliseconds: 100, maximumBackoffMilliseconds: 250)
        )
        #expect(restart(&supervisor, at: 0) == .runNow)
        #expect(restart(&supervisor, at: 10 * ms) == .runAt(100 * ms))
        #expect(restart(&supervisor, at: 110 * ms) == .runAt(300 * ms))
        #expect(restart(&supervisor, at: 310 * ms) == .runAt(550 * ms))
    }

    @Test func aPendingRestartIsNotRunTwice() {
        var supervisor = ServiceSupervisor(kind: .restart, action: ServiceAction(location: location))
        let first = supervisor.trigger(now: 0)
        #expect(first == .runNow)
        _ = supervisor.ran(now: 0, via: "x")
        let second = supervisor.trigger(now: ms)
        #expect(second == .alreadyPending)
    }

    @Test func flapLimitStopsUntilTheServiceRunsAgain() {
        var supervisor = ServiceSupervisor(
            kind: .restart,
            action: ServiceAction(
                location: location,
                backoffMilliseconds: 1,
                flapLimit: 2,
                flapWindowMilliseconds: 1000
            )
        )
        restart(&supervisor, at: 0)
        restart(&supervisor, at: 5 * ms)
        #expect(restart(&supervisor, at: 10 * ms) == .flapping(restarts: 2, withinMilliseconds: 1000))
        #expect(restart(&supervisor, at: 11 * ms) == .stopped)
        // Someone starts it by hand: the stop lifts and the history is forgotten.
        _ = supervisor.processStarted()
        #expect(restart(&supervisor, at: 12 * ms) == .runNow)
    }

    @Test func restartsOutsideTheWindowAreForgotten() {
        var supervisor = ServiceSupervisor(
            kind: .restart,
            action: ServiceAction(location: location, backoffMilliseconds: 1, flapLimit: 1, flapWindowMilliseconds: 100)
        )
        #expect(restart(&supervisor, at: 0) == .runNow)
        #expect(restart(&supervisor, at: 200 * ms) == .runNow)
    }

    @Test func confirmationExpiresOnlyForItsOwnToken() {
        var supervisor = ServiceSupervisor(kind: .restart, action: ServiceAction(location: location))
        _ = supervisor.trigger(now: 0)
        let token = supervisor.ran(now: 0, via: "systemctl restart x")
        let other = supervisor.confirmationExpired(token: token + 1)
        #expect(other == nil)
        let expired = supervisor.confirmationExpired(token: token)
        #expect(expired?.via == "systemctl restart x")
        let again = supervisor.confirmationExpired(token: token)
        #expect(again == nil)
    }

    @Test func reloadsRunEachTimeWithoutBackoff() {
        var supervisor = ServiceSupervisor(kind: .reload, action: ServiceAction(location: location))
        let first = supervisor.trigger(now: 0)
        _ = supervisor.ran(now: 0, via: "SIGHUP")
        let second = supervisor.trigger(now: 1)
        #expect(first == .runNow && second == .runNow)
    }
}
