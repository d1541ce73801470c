import Glibc
internal import Yams

extension RuleFileParser {
    /// Keys of `exec: { … }`.
    static let execKeys = ["command", "timeout", "on_resolved"]
    /// The longest `timeout:`: a program still running after an hour is a service, not an action.
    static let longestExecTimeout = 3_600_000

    /// Parses the value of `exec:`: `{ command: [/abs/program, args...], timeout: 10s, on_resolved: false }`.
    /// The program must exist, be executable, and be a file in a directory only root can change (checked
    /// here, so `vigil check`, `vigil run` and every reload refuse the same rules).
    mutating func parseExec(_ value: Node, at location: SourceLocation) -> ExecSpec? {
        let example = "{ command: [/usr/local/sbin/on-drift, --quiet], timeout: 10s }"
        guard case .mapping(let mapping) = value else {
            if case .sequence = value {
                error(
                    "'exec' is a list; write the program under command:, such as exec: { command: [/usr/local/sbin/on-drift] }",
                    at: value
                )
            } else {
                error("'exec' is \(value.kindDescription); expected a map such as \(example)", at: value)
            }
            return nil
        }
        let errorsBefore = errorCount
        let (keys, _) = checkKeys(mapping, allowed: Self.execKeys, context: "exec:")
        var spec = ExecSpec(location: location, command: [])
        if let (_, node) = keys["command"] {
            if let command = parseCommand(node, example: "[/usr/local/sbin/on-drift, --quiet]") {
                spec.command = command
                if let programNode = node.sequence?.first, let problem = Self.untrustedProgram(command[0]) {
                    error(problem, at: programNode)
                }
            }
        } else {
            error("exec: has no command:; add command: [/absolute/program, arguments...]", at: value)
        }
        if let (_, node) = keys["timeout"],
            let timeout = parseDuration(node, key: "timeout", within: 100...Self.longestExecTimeout)
        {
            spec.timeoutMilliseconds = timeout
        }
        if let (_, node) = keys["on_resolved"], let flag = parseBool(node, key: "on_resolved") {
            spec.onResolved = flag
        }
        return errorCount == errorsBefore ? spec : nil
    }

    /// Why `exec:` must not run `program` as root: missing, not a regular executable file, or changeable by
    /// others than root (the file, or the directory holding it), as cron and sudo judge their input; nil
    /// when it may run. Uses the same judgement as rule files (`RuleFileTrust`).
    static func untrustedProgram(_ program: String) -> String? {
        var info = stat()
        guard stat(program, &info) == 0 else {
            let cause = String(cString: strerror(errno))
            return
                "program '\(program)' in exec: cannot be used: \(cause); install it there or correct the path (vigil does not search PATH)"
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            return "program '\(program)' in exec: is not a regular file; name the program itself"
        }
        guard info.st_mode & 0o111 != 0, access(program, X_OK) == 0 else {
            return
                "program '\(program)' in exec: is not executable; name the right program, or make it executable with chmod 0755 '\(program)'"
        }
        let trust = RuleFileTrust()
        if let problem = trust.problem(uid: info.st_uid, mode: info.st_mode, isDirectory: false) {
            return
                "refusing program '\(program)' in exec: \(problem), so others than root could change what vigil runs as root; run \(trust.fix(program))"
        }
        var resolved = program
        if let real = realpath(program, nil) {
            resolved = String(cString: real)
            free(real)
        }
        let directory = RuleFileTrust.directory(of: resolved)
        var directoryInfo = stat()
        if stat(directory, &directoryInfo) == 0,
            let problem = trust.problem(uid: directoryInfo.st_uid, mode: directoryInfo.st_mode, isDirectory: true)
        {
            return
                "refusing program '\(program)' in exec: its directory '\(directory)' \(problem.dropFirst(3)), so others than root could replace it; run \(trust.fix(directory)), or move the program to a directory only root can write"
        }
        return nil
    }
}
