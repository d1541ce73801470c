import Testing
import VigilRules

/// The listening subject of a rule, or a recorded issue.
func listeningSubject(
    _ rule: Rule,
    sourceLocation: Testing.SourceLocation = #_sourceLocation
) throws -> ListeningSubject {
    guard case .listening(let subject) = rule.subject else {
        Issue.record("not a listening rule: \(String(describing: rule.subject))", sourceLocation: sourceLocation)
        throw ListeningRuleTestError.wrongSubject
    }
    return subject
}

enum ListeningRuleTestError: Error {
    case wrongSubject
}

/// The diagnostics of `text` as printed.
private func diagnostics(_ text: String) -> [String] {
    compileText(text).diagnostics.map(\.description)
}

@Suite struct ListeningRuleTests {
    private func at(_ line: Int, _ column: Int) -> VigilRules.SourceLocation {
        VigilRules.SourceLocation(file: "test.yaml", line: line, column: column)
    }

    @Test func allowListOfMapsAndStringsIsAStateRule() throws {
        let rule = try onlyRule(
            """
            - rule: unexpected-listener
              severity: error
              listening: any
              allow:
                - { port: 22, exe: /usr/sbin/sshd }
                - { address: 127.0.0.1, port: 5432, exe: "/usr/lib/postgresql/*/bin/postgres" }
                - { port: 8080-8081 }
                - { proto: udp, port: 53 }
                - "[::1]:631"
                - ":9100"
                - { address: "[::]", exe: [/usr/bin/a, /usr/bin/b] }

            """
        )
        #expect(rule.isListeningRule && rule.isStateRule && !rule.isProcessRule)
        let subject = try listeningSubject(rule)
        #expect(subject.scope == ListenerPattern(location: at(3, 14)))
        #expect(
            subject.trigger
                == .allow([
                    ListenerPattern(ports: 22...22, executables: ["/usr/sbin/sshd"], location: at(5, 7)),
                    ListenerPattern(
                        address: "127.0.0.1",
                        ports: 5432...5432,
                        executables: ["/usr/lib/postgresql/*/bin/postgres"],
                        location: at(6, 7)
                    ),
                    ListenerPattern(ports: 8080...8081, location: at(7, 7)),
                    ListenerPattern(proto: .udp, ports: 53...53, location: at(8, 7)),
                    ListenerPattern(address: "::1", ports: 631...631, location: at(9, 7)),
                    ListenerPattern(ports: 9100...9100, location: at(10, 7)),
                    ListenerPattern(address: "::", executables: ["/usr/bin/a", "/usr/bin/b"], location: at(11, 7)),
                ])
        )
        #expect(rule.message.render { $0 == "status" ? "S" : nil } == "S")
        #expect(rule.resolvedMessage?.render { $0 == "status" ? "S" : nil } == "Resolved: S")
    }

    @Test func expectListeningWithAPatternScope() throws {
        let rule = try onlyRule(
            """
            - rule: postgres-listening
              severity: critical
              listening: { proto: tcp, address: 127.0.0.1, port: 5432 }
              expect: listening
              message: "{expected}: {count} listening ({endpoint} {pid} {name} {exe} {user} {unit} {inode})"

            """
        )
        let subject = try listeningSubject(rule)
        #expect(subject.trigger == .expect)
        #expect(
            subject.scope == ListenerPattern(proto: .tcp, address: "127.0.0.1", ports: 5432...5432, location: at(3, 14))
        )
    }

    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"), ("\"[::]\"", "::"), ("\"::\"", "::"), ("\"0:0::0\"", "::"),
        ("\"[::ffff:127.0.0.1]\"", "::ffff:127.0.0.1"), ("\"FE80::1\"", "fe80::1"),
    ])
    func addressesAreNormalisedAsTheKernelPrintsThem(_ written: String, _ normalised: String) throws {
        let rule = try onlyRule("- rule: r\n  listening: { address: \(written) }\n  expect: listening\n")
        #expect(try listeningSubject(rule).scope.address == normalised)
    }

    @Test func starIsAnyAddress() throws {
        let rule = try onlyRule("- rule: r\n  listening: { address: \"*\", port: 80 }\n  expect: listening\n")
        #expect(try listeningSubject(rule).scope.address == nil)
    }

    @Test func badValuesAreReportedWithTheirPositionAndFix() {
        #expect(
            diagnostics(
                """
                - rule: r
                  listening: { proto: tpc, address: localhost, port: 0 }
                  allow:
                    - { port: 9000-8000 }
                    - { port: 70000 }
                    - "::1:53"
                    - {}
                    - { exe: sshd }
                    - { adress: 1.2.3.4 }

                """
            ) == [
                "test.yaml:2:23: error: unknown proto 'tpc'; did you mean 'tcp'? (expected one of: tcp, udp)",
                "test.yaml:2:37: error: address 'localhost' is not an IPv4 or IPv6 address; write e.g. 0.0.0.0, 127.0.0.1, \"[::]\" or ::1 (no host names, no port), or * for any address",
                "test.yaml:2:54: error: port 0 is out of range; expected a port from 1 to 65535",
                "test.yaml:4:15: error: port range '9000-8000' is reversed; write 8000-9000",
                "test.yaml:5:15: error: port 70000 is out of range; expected a port from 1 to 65535",
                "test.yaml:6:7: error: allow entry '::1:53' has no valid address before the port; write IPv6 in brackets (\"[::1]:53\"), IPv4 as is (\"127.0.0.1:5432\"), or \":PORT\" for any address",
                "test.yaml:7:7: error: an allow: entry is an empty map; name at least one of proto, address, port, exe",
                "test.yaml:8:14: error: executable 'sshd' is not absolute; write it from the root, such as '/usr/bin/sshd', or '/*/sshd' for any directory",
                "test.yaml:9:9: error: unknown key 'adress' in an allow: entry; did you mean 'address'? (expected one of: proto, address, port, exe)",
            ]
        )
    }

    @Test func allowAndExpectAreOneOrTheOther() {
        #expect(
            diagnostics("- rule: r\n  listening: any\n  allow: [\":22\"]\n  expect: listening\n") == [
                "test.yaml:4:3: error: rule 'r' has both allow: and expect:; use allow: to alert on listeners not on the list, or expect: listening to alert when none is there, not both"
            ]
        )
        #expect(
            diagnostics("- rule: r\n  listening: any\n") == [
                "test.yaml:1:3: error: listening rule 'r' has neither allow: nor expect:; add allow: with the listeners that may exist, or expect: listening"
            ]
        )
        #expect(
            diagnostics("- rule: r\n  listening: any\n  expect: running\n") == [
                "test.yaml:3:11: error: expect: 'running' does not apply to listening rules; write expect: listening"
            ]
        )
        #expect(
            diagnostics("- rule: r\n  listening: tcp\n  expect: listening\n") == [
                "test.yaml:2:14: error: 'listening' is 'tcp'; expected any, or a map such as { proto: tcp, port: 5432 }"
            ]
        )
    }

    @Test func otherKindsKeysAreForeignButAllowIsNot() {
        #expect(
            diagnostics("- rule: r\n  listening: any\n  allow: [\":22\"]\n  grace: 5s\n") == [
                "test.yaml:4:3: error: 'grace' does not apply to listening rules; it belongs to process: rules"
            ]
        )
        #expect(
            diagnostics("- rule: r\n  listening: any\n  allow: [\":22\"]\n  message: \"{argv}\"\n").count == 1
        )
    }

    @Test func listeningFieldsAreTheDocumentedOnes() {
        #expect(
            MessageTemplate.listeningFields == [
                "rule", "severity", "host", "status", "proto", "address", "port", "endpoint", "pid", "name", "exe",
                "user", "unit", "inode", "count", "expected",
            ]
        )
    }
}
