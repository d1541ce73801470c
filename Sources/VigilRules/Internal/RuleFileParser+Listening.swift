internal import Yams

#if canImport(Glibc)
import Glibc
#endif

extension RuleFileParser {
    /// Keys of `listening:` rules besides `listening:` itself. Both are also process-rule keys with other
    /// meanings; the dispatch calls this parser only for `listening:` rules.
    static let listeningOnlyKeys: [String] = ["allow", "expect"]

    /// The keys of a listener pattern (`listening: {…}` and each `allow:` entry).
    static let listenerPatternKeys = ["proto", "address", "port", "exe"]

    /// Parses a `listening:` rule's subject and its own keys; nil after reporting errors.
    ///
    /// `listening:` is `any` or a pattern; exactly one of `allow:` (a list of patterns, or `"ADDRESS:PORT"`
    /// strings) and `expect: listening` says when the rule fires.
    mutating func parseListeningSubject(
        _ keys: [String: (key: Node, value: Node)],
        context: String,
        at location: SourceLocation
    ) -> ListeningSubject? {
        let errorsBefore = errorCount
        var scope: ListenerPattern?
        if let (_, node) = keys["listening"] {
            if case .scalar(let scalar) = node, scalar.string == "any" {
                scope = ListenerPattern(location: node.location(in: file))
            } else if case .mapping = node {
                scope = parseListenerPattern(node, context: "listening:", allowEmpty: true)
            } else {
                error(
                    "'listening' is \(Self.describeListeningValue(node)); expected any, or a map such as { proto: tcp, port: 5432 }",
                    at: node
                )
            }
        }
        var trigger: ListeningTrigger?
        switch (keys["allow"], keys["expect"]) {
        case (.some, .some(let expect)):
            error(
                "\(context) has both allow: and expect:; use allow: to alert on listeners not on the list, or expect: listening to alert when none is there, not both",
                at: expect.key
            )
        case (nil, nil):
            error(
                "listening \(context) has neither allow: nor expect:; add allow: with the listeners that may exist, or expect: listening",
                at: location
            )
        case (.some(let allow), nil):
            if let entries = parseListenerAllowList(allow.value) { trigger = .allow(entries) }
        case (nil, .some(let expect)):
            if case .scalar(let scalar) = expect.value, scalar.string == "listening" {
                trigger = .expect
            } else if case .scalar(let scalar) = expect.value, scalar.value != .null {
                error(
                    "expect: '\(scalar.string)' does not apply to listening rules; write expect: listening",
                    at: expect.value
                )
            } else {
                error("'expect' is \(expect.value.kindDescription); write expect: listening", at: expect.value)
            }
        }
        guard errorCount == errorsBefore, let scope, let trigger else { return nil }
        return ListeningSubject(scope: scope, trigger: trigger)
    }

    /// `allow:`: a list whose entries are patterns (maps) or `"ADDRESS:PORT"` / `":PORT"` strings.
    private mutating func parseListenerAllowList(_ node: Node) -> [ListenerPattern]? {
        let elements: [Node]
        switch node {
        case .sequence(let sequence): elements = Array(sequence)
        case .mapping: elements = [node]
        case .scalar(let scalar) where scalar.value != .null: elements = [node]
        default:
            error(
                "'allow' is \(node.kindDescription); expected a list of listeners such as - { port: 22, exe: /usr/sbin/sshd }",
                at: node
            )
            return nil
        }
        if elements.isEmpty {
            error(
                "'allow' is an empty list; name the listeners that may exist, or use expect: listening",
                at: node
            )
            return nil
        }
        var patterns: [ListenerPattern] = []
        var failed = false
        for element in elements {
            let pattern: ListenerPattern?
            switch element {
            case .mapping: pattern = parseListenerPattern(element, context: "an allow: entry", allowEmpty: false)
            case .scalar(let scalar) where scalar.value != .null: pattern = parseEndpoint(scalar.string, at: element)
            default:
                error(
                    "an entry of 'allow' is \(element.kindDescription); expected a map such as { port: 22, exe: /usr/sbin/sshd } or a string such as \"127.0.0.1:5432\"",
                    at: element
                )
                pattern = nil
            }
            if let pattern { patterns.append(pattern) } else { failed = true }
        }
        return failed ? nil : patterns
    }

    /// A pattern map: `proto`, `address`, `port`, `exe`, each optional. An allow: entry must name one.
    private mutating func parseListenerPattern(_ node: Node, context: String, allowEmpty: Bool) -> ListenerPattern? {
        guard case .mapping(let mapping) = node else { return nil }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.listenerPatternKeys, context: context)
        var pattern = ListenerPattern(location: node.location(in: file))
        if let (_, value) = keys["proto"] { pattern.proto = parseSocketProtocol(value) }
        if let (_, value) = keys["address"] { pattern.address = parseListenerAddress(value) }
        if let (_, value) = keys["port"] { pattern.ports = parsePortRange(value) }
        if let (_, value) = keys["exe"], let entries = parseStringList(value, key: "exe") {
            for (text, element) in entries {
                if let problem = Self.executableProblem(text, anyDirectoryHint: true) {
                    error(problem, at: element)
                } else {
                    pattern.executables.append(text)
                }
            }
        }
        if !allowEmpty && mapping.isEmpty {
            error("an allow: entry is an empty map; name at least one of proto, address, port, exe", at: node)
        }
        return errorCount == errorsBefore ? pattern : nil
    }

    /// `proto:` — tcp or udp.
    private mutating func parseSocketProtocol(_ node: Node) -> SocketProtocol? {
        guard let text = parseString(node, key: "proto", expected: "tcp or udp") else { return nil }
        if let proto = SocketProtocol(rawValue: text.lowercased()) { return proto }
        let names = SocketProtocol.allCases.map(\.rawValue)
        error("unknown proto '\(text)'" + Spelling.hint(for: text.lowercased(), among: names), at: node)
        return nil
    }

    /// `address:` — an IPv4 or IPv6 literal (`[::]` as well as `::`), or `*`. Normalised the way the kernel's
    /// answer is printed (`inet_ntop`), so that `0:0::0` and `::` are one address. Returns nil for `*`
    /// (any address) and after an error (the error count tells them apart). An unquoted `[::]` never gets
    /// here: YAML refuses it, so the docs write it quoted.
    private mutating func parseListenerAddress(_ node: Node) -> String? {
        guard let text = parseString(node, key: "address", expected: "an IP address such as 0.0.0.0 or ::")
        else { return nil }
        if text == "*" { return nil }
        guard let normalised = Self.normalisedAddress(text) else {
            error(
                "address '\(text)' is not an IPv4 or IPv6 address; write e.g. 0.0.0.0, 127.0.0.1, \"[::]\" or ::1 (no host names, no port), or * for any address",
                at: node
            )
            return nil
        }
        return normalised
    }

    /// `text` (brackets allowed around IPv6) as `inet_ntop` prints it, or nil when it is no address.
    static func normalisedAddress(_ text: String) -> String? {
        var body = Substring(text)
        if body.hasPrefix("[") && body.hasSuffix("]") && body.count > 2 { body = body.dropFirst().dropLast() }
        let family = body.contains(":") ? AF_INET6 : AF_INET
        return withUnsafeTemporaryAllocation(byteCount: 16, alignment: 4) { bytes -> String? in
            guard String(body).withCString({ inet_pton(family, $0, bytes.baseAddress) }) == 1 else { return nil }
            return withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(INET6_ADDRSTRLEN)) { out -> String? in
                guard let base = out.baseAddress, let bytesBase = bytes.baseAddress,
                    inet_ntop(family, bytesBase, base, socklen_t(out.count)) != nil
                else { return nil }
                return String(cString: base)
            }
        }
    }

    /// `port:` — a port, or a range `LOW-HIGH`, within 1…65535.
    private mutating func parsePortRange(_ node: Node) -> ClosedRange<Int>? {
        guard case .scalar(let scalar) = node, scalar.value != .null else {
            error(
                "'port' is \(node.kindDescription); expected a port such as 5432 or a range such as 8000-8099",
                at: node
            )
            return nil
        }
        return parsePortText(scalar.string, at: node)
    }

    /// A port or range as written (`5432`, `8000-8099`), reporting errors at `node`.
    private mutating func parsePortText(_ text: String, at node: Node) -> ClosedRange<Int>? {
        let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            .map { $0.trimmingSpaces }
        var bounds: [Int] = []
        for part in parts {
            guard !part.isEmpty, part.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                part.utf8.count <= 6, let value = Int(part)
            else {
                error(
                    "port '\(text)' is not a port number; expected a port from 1 to 65535 such as 5432, or a range such as 8000-8099",
                    at: node
                )
                return nil
            }
            guard (1...65535).contains(value) else {
                error("port \(value) is out of range; expected a port from 1 to 65535", at: node)
                return nil
            }
            bounds.append(value)
        }
        if bounds.count == 2 {
            guard bounds[0] <= bounds[1] else {
                error("port range '\(text)' is reversed; write \(bounds[1])-\(bounds[0])", at: node)
                return nil
            }
            return bounds[0]...bounds[1]
        }
        return bounds[0]...bounds[0]
    }

    /// An allow: string: `ADDRESS:PORT`, `[IPV6]:PORT`, `:PORT` or `*:PORT` (the port may be a range).
    private mutating func parseEndpoint(_ text: String, at node: Node) -> ListenerPattern? {
        guard let colon = text.lastIndex(of: ":") else {
            error(
                "allow entry '\(text)' is not ADDRESS:PORT; write e.g. \"127.0.0.1:5432\", \"[::]:443\" or \":22\", or a map such as { port: 22, exe: /usr/sbin/sshd }",
                at: node
            )
            return nil
        }
        let host = String(text[..<colon])
        let portText = String(text[text.index(after: colon)...])
        var pattern = ListenerPattern(location: node.location(in: file))
        if !host.isEmpty && host != "*" {
            let bracketed = host.hasPrefix("[") && host.hasSuffix("]")
            guard !host.contains(":") || bracketed, let normalised = Self.normalisedAddress(host) else {
                error(
                    "allow entry '\(text)' has no valid address before the port; write IPv6 in brackets (\"[::1]:53\"), IPv4 as is (\"127.0.0.1:5432\"), or \":PORT\" for any address",
                    at: node
                )
                return nil
            }
            pattern.address = normalised
        }
        guard let ports = parsePortText(portText, at: node) else { return nil }
        pattern.ports = ports
        return pattern
    }

    /// How the `listening:` value is named in its error.
    private static func describeListeningValue(_ node: Node) -> String {
        if case .scalar(let scalar) = node, scalar.value != .null { return "'\(scalar.string)'" }
        return node.kindDescription
    }
}

extension Substring {
    /// The text without leading and trailing spaces.
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while text.first == " " { text = text.dropFirst() }
        while text.last == " " { text = text.dropLast() }
        return text
    }
}
