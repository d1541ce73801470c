/// A program root runs, and the line that makes it run.
struct RootProgram: Equatable {
    /// Absolute server path of the program or script (`/home/aanya/scripts/analytics_maintenance.sh`).
    var path: String
    /// Where: `/etc/crontab:12`, `/etc/systemd/system/backup.service:7`.
    var source: String
    /// Something the line makes Vigil assume, said in the alert (a system crontab line without a user).
    var note: String?
}

/// Reads what root runs from cron tables and systemd units: pure text → programs, no I/O (the watcher reads
/// the files). Only absolute paths are taken; `cd DIR && ./x.sh`, programs found through `PATH` and what
/// `run-parts` runs are out of scope (`also:` names them).
enum RootPrograms {
    /// Basenames of programs that run the program named by an argument: a shell, a script interpreter, or a
    /// wrapper (`env`, `nice`, `nohup`). For these the first absolute argument is taken as well.
    static func isInterpreter(_ name: Substring) -> Bool {
        let base = name.split(separator: "/").last ?? name
        switch base {
        case "sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "perl", "ruby", "php", "node", "lua", "env", "nice",
            "nohup":
            return true
        default:
            // python, python3, python3.11
            return base.hasPrefix("python")
                && base.dropFirst(6).allSatisfy { $0.isNumber || $0 == "." }
        }
    }

    /// Whether a shell option word (`-c`, `-ec`) says that the next word is a command string.
    private static func takesCommandString(_ word: Substring, interpreter: Substring) -> Bool {
        let base = interpreter.split(separator: "/").last ?? interpreter
        guard ["sh", "bash", "dash", "zsh", "ksh", "mksh", "ash"].contains(base) else { return false }
        return word.hasPrefix("-") && !word.hasPrefix("--") && word.contains("c")
    }

    // MARK: Cron

    /// The root jobs of a system crontab (`/etc/crontab`, `/etc/cron.d/*`): five time fields or an
    /// `@keyword`, the user, the command. Only lines whose user is `root` or `0`. A line whose sixth field
    /// is an absolute path has no user field (as the seed's `/etc/crontab` shows it): cron would skip it
    /// for want of a user named like the path, but it was meant to run as root and one word makes it do so,
    /// so it is taken as root's and the alert says so.
    static func systemCrontab(_ text: String, file: String) -> [RootProgram] {
        crontab(text, file: file, hasUserField: true)
    }

    /// The jobs of root's own crontab (`/var/spool/cron/crontabs/root`): no user field.
    static func userCrontab(_ text: String, file: String) -> [RootProgram] {
        crontab(text, file: file, hasUserField: false)
    }

    private static func crontab(_ text: String, file: String, hasUserField: Bool) -> [RootProgram] {
        var found: [RootProgram] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            // Comments, blank lines and VAR=value lines (a job starts with a minute or an @keyword).
            guard let first = line.first, first.isNumber || first == "*" || first == "@" else { continue }
            var fields = line.split(maxSplits: 6, whereSeparator: { $0 == " " || $0 == "\t" })[...]
            let timeFields = first == "@" ? 1 : 5
            guard fields.count > timeFields else { continue }
            fields = fields.dropFirst(timeFields)
            var note: String?
            var rest: Substring
            if hasUserField {
                let user = fields.first!
                if user.hasPrefix("/") {
                    note = "the line has no user field; cron runs it as no one until one is added, root as meant"
                    rest = line[user.startIndex...]
                } else {
                    guard user == "root" || user == "0", fields.count > 1 else { continue }
                    rest = line[fields[fields.startIndex + 1].startIndex...]
                }
            } else {
                rest = line[fields.first!.startIndex...]
            }
            // An unescaped % ends the command (the rest is its standard input).
            var command = ""
            var escaped = false
            for character in rest {
                if character == "%" && !escaped { break }
                escaped = character == "\\" && !escaped
                command.append(character)
            }
            let source = "\(file):\(index + 1)"
            for path in programs(inShellCommand: command) {
                found.append(RootProgram(path: path, source: source, note: note))
            }
        }
        return found
    }

    /// The absolute programs of a shell command line: the first word of each simple command (split at
    /// `;`, `&&`, `||`, `|`, `&`), and for an interpreter its script. Assignments before a command and
    /// redirections are skipped; `sh -c '…'` is read in turn.
    static func programs(inShellCommand command: String, depth: Int = 0) -> [String] {
        var found: [String] = []
        var segment: [Substring] = []
        let words = shellWords(command)
        for word in words + [";"] {
            if [";", "&&", "||", "|", "&", "(", ")", "{", "}"].contains(word) {
                found += programs(inWords: segment[...], depth: depth)
                segment = []
            } else {
                segment.append(word)
            }
        }
        var unique: [String] = []
        for path in found where !unique.contains(path) { unique.append(path) }
        return unique
    }

    /// The programs of one simple command's words (`VAR=x /usr/bin/env bash /x.sh arg`).
    private static func programs(inWords words: ArraySlice<Substring>, depth: Int) -> [String] {
        var words = words.drop { $0.contains("=") && !$0.hasPrefix("/") || $0.first == ">" || $0.first == "<" }
        guard let program = words.popFirst() else { return [] }
        var found: [String] = []
        if program.hasPrefix("/") { found.append(String(program)) }
        guard isInterpreter(program) else { return found }
        var interpreter = program
        while let word = words.popFirst() {
            if takesCommandString(word, interpreter: interpreter) {
                if let inner = words.first, depth < 4 {
                    found += programs(inShellCommand: String(inner), depth: depth + 1)
                }
                break
            }
            if word.hasPrefix("-") || word.contains("=") && !word.hasPrefix("/") { continue }
            if word.hasPrefix("/") { found.append(String(word)) }
            // `env bash /x.sh`, `/usr/bin/env /bin/sh /x.sh`: the interpreter's script comes next.
            guard isInterpreter(word) else { break }
            interpreter = word
        }
        return found
    }

    /// Splits a command line into words: blanks separate, single and double quotes group (and are removed),
    /// a backslash escapes; `;` and `&` glued to a word are split off.
    static func shellWords(_ text: String) -> [Substring] {
        var words: [Substring] = []
        var current = ""
        var quote: Character?
        var escaped = false
        var started = false
        func flush() {
            if started { words.append(Substring(current)) }
            current = ""
            started = false
        }
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                started = true
            } else if character == "\\" && quote != "'" {
                escaped = true
            } else if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                started = true
            } else if character == " " || character == "\t" {
                flush()
            } else if character == ";" {
                flush()
                words.append(";")
            } else {
                current.append(character)
                started = true
            }
        }
        flush()
        return words
    }

    // MARK: systemd

    /// The `Exec*=` keys whose commands run with the unit's credentials.
    static let execKeys: Set<Substring> = [
        "ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "ExecCondition",
    ]

    /// The programs a unit file runs as root: `Exec*=` of `[Service]` in a unit without `User=` (or with
    /// `User=root`/`0`, and without `DynamicUser=yes`), and every command prefixed `+` or `!` (which systemd
    /// runs with full privileges whatever `User=` says). The prefixes `-@:+!` are stripped; after `@` the
    /// second word is argv[0] and is skipped. Drop-ins (`NAME.service.d/*.conf`) are not read.
    static func unit(_ text: String, file: String) -> [RootProgram] {
        var section: Substring = ""
        var runsAsRoot = true
        var dynamicUser = false
        var commands: [(command: String, line: Int, privileged: Bool)] = []
        var pending = ""
        var pendingLine = 0
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, raw) in lines.enumerated() {
            var line = raw.drop { $0 == " " || $0 == "\t" }
            while line.last == " " || line.last == "\t" || line.last == "\r" { line = line.dropLast() }
            if pending.isEmpty {
                if line.first == "#" || line.first == ";" || line.isEmpty { continue }
                pendingLine = index + 1
            }
            if line.last == "\\" {
                pending += line.dropLast() + " "
                continue
            }
            let full = pending + line
            pending = ""
            if full.hasPrefix("[") {
                section = Substring(full)
                continue
            }
            guard section == "[Service]", let equals = full.firstIndex(of: "=") else { continue }
            let key = full[..<equals].trimmingBlanks()
            let value = full[full.index(after: equals)...].trimmingBlanks()
            if key == "User" {
                runsAsRoot = value.isEmpty || value == "root" || value == "0"
            } else if key == "DynamicUser" {
                dynamicUser = ["yes", "true", "1", "on"].contains(value.lowercased())
            } else if execKeys.contains(key) {
                // Several commands may be given on one line, separated by a lone `;`.
                var words: [Substring] = []
                for word in shellWords(String(value)) + [";"] {
                    if word == ";" {
                        if let command = execCommand(words) {
                            commands.append((command.words, pendingLine, command.privileged))
                        }
                        words = []
                    } else {
                        words.append(word)
                    }
                }
            }
        }
        var found: [RootProgram] = []
        for command in commands where command.privileged || runsAsRoot && !dynamicUser {
            for path in programs(inShellCommand: command.command) where !found.contains(where: { $0.path == path }) {
                found.append(RootProgram(path: path, source: "\(file):\(command.line)"))
            }
        }
        return found
    }

    /// One `Exec*=` command without its prefixes, and whether `+` or `!` makes it run as root.
    private static func execCommand(_ words: [Substring]) -> (words: String, privileged: Bool)? {
        guard var first = words.first else { return nil }
        var privileged = false
        var skipArgv0 = false
        while let prefix = first.first, "-@:+!|".contains(prefix) {
            if prefix == "+" || prefix == "!" { privileged = true }
            if prefix == "@" { skipArgv0 = true }
            first = first.dropFirst()
        }
        guard !first.isEmpty else { return nil }
        var rest = Array(words.dropFirst())
        if skipArgv0 && !rest.isEmpty { rest.removeFirst() }
        // Re-quoted so the shell-word reading of the joined line gives back the same words.
        let quoted = ([first] + rest).map { "'" + $0.filter { $0 != "'" } + "'" }
        return (quoted.joined(separator: " "), privileged)
    }
}

extension Substring {
    /// Without leading and trailing blanks.
    fileprivate func trimmingBlanks() -> Substring {
        var result = self.drop { $0 == " " || $0 == "\t" }
        while result.last == " " || result.last == "\t" { result = result.dropLast() }
        return result
    }
}
