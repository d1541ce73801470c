import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Carries out `vigil install` and `vigil install --uninstall`, printing one line per step (or, with
/// `dryRun`, what it would do, changing nothing).
struct Installer {
    /// Where things go.
    let layout: InstallLayout
    /// Print the steps without taking them.
    let dryRun: Bool
    /// Whether files are given to root (only root can; a packager staging with --destdir may not be root).
    let chownsToRoot = geteuid() == 0

    /// The text of `/etc/vigil/local.d/README.txt`, written when the directory is created.
    static let localReadme = """
        Local Vigil rules: files here (*.yaml, *.yml) are loaded after the shipped rules in
        /etc/vigil/rules.d/, which `vigil install` replaces on every upgrade. Nothing here is ever touched
        by an upgrade. Files and this directory must be owned by root and not writable by others.

        Replace a shipped rule: give your rule the shipped rule's id and `override: true`:

            - rule: cpu-hog
              override: true
              process: any
              above: { cpu: 95%, for: 5m }

        Without `override: true` a local rule with a shipped id is an error. Sinks and lists override the
        same way (`- sink: NAME` ... `override: true`).

        Turn shipped rules off by id:

            - disable: [memory-hog, zombie-processes]

        Check with `vigil check /etc/vigil/rules.d` (it lists what is overridden and disabled), then
        `systemctl reload vigil`. See docs/operations.md and docs/rules.md ("Shipped and local rules").

        """

    // MARK: Install

    /// Checks the source tree's rules against the installed local rules, then installs everything.
    mutating func install(from source: String, unit: Bool) throws(InstallFailure) {
        let rules = try readShippedRules(source + "/rules")
        try check(rules, source: source)
        let upgrade = exists(layout.path(InstallLayout.binary))
        say("installing from \(source)\(layout.destdir.isEmpty ? "" : " into \(layout.destdir)")")

        try makeDirectory(InstallLayout.configuration, mode: 0o755)
        try makeDirectory(InstallLayout.shippedRules, mode: 0o755)
        if exists(layout.path(InstallLayout.localRules)) {
            say("kept \(InstallLayout.localRules) (local rules are never touched)")
        } else {
            try makeDirectory(InstallLayout.localRules, mode: 0o755)
            try writeFile(InstallLayout.localRules + "/README.txt", bytes: Array(Self.localReadme.utf8), mode: 0o644)
        }
        try makeDirectory(InstallLayout.state, mode: 0o700)
        try makeDirectory(InstallLayout.logs, mode: 0o750)

        try copyFile("/proc/self/exe", to: InstallLayout.binary, mode: 0o755, shownAs: "this vigil binary")
        for (name, bytes) in rules {
            try writeFile(InstallLayout.shippedRules + "/" + name, bytes: bytes, mode: 0o644)
        }
        try removeStaleRules(keeping: Set(rules.map(\.name)))
        if unit {
            try copyFile(source + "/systemd/vigil.service", to: InstallLayout.unit, mode: 0o644)
        }
        try installDocumentation(from: source)
        nextSteps(upgrade: upgrade, unit: unit)
    }

    /// The `*.yaml`/`*.yml` files of the source's rules directory, by name, with their bytes.
    private func readShippedRules(_ directory: String) throws(InstallFailure) -> [(name: String, bytes: [UInt8])] {
        let names = FileTree.names(in: directory).filter {
            !$0.hasPrefix(".") && ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml"))
        }
        guard !names.isEmpty else {
            throw InstallFailure(
                "vigil install: Failed to find rule files in '\(directory)': it holds no *.yaml or *.yml; pass the checkout with --source DIR (see docs/operations.md#install-source-not-found)"
            )
        }
        var rules: [(name: String, bytes: [UInt8])] = []
        for name in names {
            guard let bytes = Self.read(directory + "/" + name) else {
                throw InstallFailure("read", directory + "/" + name, errno: errno)
            }
            rules.append((name, bytes))
        }
        return rules
    }

    /// Compiles the rules as they will be installed (root-owned, 0644, in a directory only root can
    /// write) over the local rules already installed; throws with every diagnostic when there is an error.
    private func check(_ rules: [(name: String, bytes: [UInt8])], source: String) throws(InstallFailure) {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(base)/vigil-install-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw InstallFailure("create a directory in", base, errno: errno)
        }
        let staging = String(cString: made)
        defer { FileTree.remove(staging) }
        for (name, bytes) in rules {
            let path = staging + "/" + name
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw InstallFailure("write", path, errno: errno) }
            let written = Self.writeAll(fd, bytes)
            close(fd)
            guard written else { throw InstallFailure("write", path, errno: errno) }
        }
        let local = layout.path(InstallLayout.localRules)
        let compilation = RuleCompiler.compile(shipped: [staging], local: exists(local) ? [local] : [])
        // Diagnostics name the source tree's files, not the staging copies.
        let shown = { (line: String) in line.replacing(staging + "/", with: source + "/rules/") }
        let lines = compilation.diagnostics.map { shown($0.description) }
        guard compilation.errorCount == 0 else {
            for line in lines { RuleLoading.printError(line) }
            throw InstallFailure(
                "vigil install: \(compilation.errorCount) error\(compilation.errorCount == 1 ? "" : "s") in the rules; nothing was installed or replaced: fix them and run vigil install again (see docs/operations.md#install-rules-failed)"
            )
        }
        for line in lines { RuleLoading.printError(line) }
        let set = compilation.ruleSet ?? RuleSet()
        say(
            "checked \(rules.count) shipped rule file\(rules.count == 1 ? "" : "s")\(exists(local) ? " with the local rules in \(InstallLayout.localRules)" : ""): \(set.rules.count) rules, no errors"
        )
        for change in compilation.layerChanges { say("  \(shown(change.description))") }
    }

    /// Removes shipped rule files an earlier install put there that this version no longer ships.
    private func removeStaleRules(keeping names: Set<String>) throws(InstallFailure) {
        let directory = InstallLayout.shippedRules
        for name in FileTree.names(in: layout.path(directory)) where !names.contains(name) {
            guard name.hasSuffix(".yaml") || name.hasSuffix(".yml") else { continue }
            if dryRun {
                say("would remove \(directory)/\(name) (no longer shipped)")
                continue
            }
            guard unlink(layout.path(directory + "/" + name)) == 0 else {
                throw InstallFailure("remove", layout.path(directory + "/" + name), errno: errno)
            }
            say("removed \(directory)/\(name) (no longer shipped)")
        }
    }

    /// README.md and docs/*.md under /usr/local/share/doc/vigil (the unit's Documentation=).
    private func installDocumentation(from source: String) throws(InstallFailure) {
        let target = InstallLayout.documentation
        guard exists(source + "/README.md") else { return }
        try makeDirectory(target, mode: 0o755, quiet: true)
        try copyFile(source + "/README.md", to: target + "/README.md", mode: 0o644, quiet: true)
        let docs = FileTree.names(in: source + "/docs").filter { $0.hasSuffix(".md") || $0.hasSuffix(".json") }
        if !docs.isEmpty { try makeDirectory(target + "/docs", mode: 0o755, quiet: true) }
        for name in docs {
            try copyFile(source + "/docs/" + name, to: target + "/docs/" + name, mode: 0o644, quiet: true)
        }
        say("\(dryRun ? "would install" : "installed") README.md and \(docs.count) documents in \(target)")
    }

    /// Reloads systemd when it runs the host, and says what to do next.
    private func nextSteps(upgrade: Bool, unit: Bool) {
        if dryRun {
            say("dry run: nothing was changed")
            return
        }
        guard layout.destdir.isEmpty else {
            say("staged under \(layout.destdir); nothing was started (package it, or install without --destdir)")
            return
        }
        guard Self.systemdRuns else {
            say(
                "systemd is not running on this host (no /run/systemd/system), so no service was set up; start vigil by hand as root: \(InstallLayout.binary) run --rules \(InstallLayout.shippedRules) --local-rules \(InstallLayout.localRules)"
            )
            return
        }
        guard unit else {
            say("installed without the unit (--no-unit): start vigil with your own service manager")
            return
        }
        if let problem = Self.systemctl(["daemon-reload"]) {
            say("systemctl daemon-reload failed (\(problem)); run it by hand before the next step")
        } else {
            say("ran systemctl daemon-reload")
        }
        if upgrade {
            say(
                "next: systemctl restart vigil (to run the new binary), or systemctl reload vigil to load only the new rules"
            )
        } else {
            say("next: systemctl enable --now vigil")
        }
    }

    // MARK: Uninstall

    /// Removes the binary, the unit, the shipped rules and the documentation; with `purge` also the local
    /// rules and the state. The alert files in /var/log/vigil are always kept.
    mutating func uninstall(purge: Bool) throws(InstallFailure) {
        let unitInstalled = exists(layout.path(InstallLayout.unit))
        if !dryRun && layout.destdir.isEmpty && Self.systemdRuns && unitInstalled {
            if let problem = Self.systemctl(["disable", "--now", "vigil.service"]) {
                say("systemctl disable --now vigil failed (\(problem)); stop vigil by hand")
            } else {
                say("stopped and disabled vigil.service")
            }
        }
        var paths = [
            InstallLayout.binary, InstallLayout.unit, InstallLayout.shippedRules, InstallLayout.documentation,
        ]
        if purge { paths += [InstallLayout.localRules, InstallLayout.state] }
        for path in paths where exists(layout.path(path)) {
            if dryRun {
                say("would remove \(path)")
            } else {
                FileTree.remove(layout.path(path))
                guard !exists(layout.path(path)) else {
                    throw InstallFailure("remove", layout.path(path), errno: errno)
                }
                say("removed \(path)")
            }
        }
        if purge && !dryRun { rmdir(layout.path(InstallLayout.configuration)) }
        if !dryRun && layout.destdir.isEmpty && Self.systemdRuns && unitInstalled {
            _ = Self.systemctl(["daemon-reload"])
        }
        var kept: [String] = []
        if !purge {
            for path in [InstallLayout.localRules, InstallLayout.state] where exists(layout.path(path)) {
                kept.append(path)
            }
        }
        if exists(layout.path(InstallLayout.logs)) { kept.append(InstallLayout.logs + " (alert files)") }
        if !kept.isEmpty {
            say(
                "kept \(kept.joined(separator: ", "))\(purge ? "" : "; vigil install --uninstall --purge removes the local rules and the state")"
            )
        }
        if dryRun { say("dry run: nothing was changed") }
    }

    // MARK: Files

    /// Prints one step to stdout.
    private func say(_ line: String) {
        print(line)
    }

    /// Whether something exists at `path` (a dangling symlink counts).
    private func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Creates the directory (and missing parents, 0755) with `mode`, root-owned; an existing one of ours
    /// gets its owner and mode set again.
    private func makeDirectory(_ path: String, mode: mode_t, quiet: Bool = false) throws(InstallFailure) {
        let target = layout.path(path)
        let shown = "\(path) (\(InstallMode.octal(mode)) root:root)"
        var info = stat()
        if dryRun {
            if !quiet && lstat(target, &info) != 0 { say("would create \(shown)") }
            return
        }
        if lstat(target, &info) == 0 {
            guard (info.st_mode & S_IFMT) == S_IFDIR else {
                throw InstallFailure(
                    "vigil install: Failed to create directory '\(target)': something else is in the way; move it aside and run vigil install again (see docs/operations.md#install-failed)"
                )
            }
        } else {
            FileTree.makeDirectories(InstallLayout.directory(of: target), mode: 0o755)
            guard mkdir(target, mode) == 0 || errno == EEXIST else {
                throw InstallFailure("create directory", target, errno: errno)
            }
        }
        if chownsToRoot && chown(target, 0, 0) != 0 { throw InstallFailure("chown", target, errno: errno) }
        guard chmod(target, mode) == 0 else { throw InstallFailure("chmod", target, errno: errno) }
        if !quiet { say("created \(shown)") }
    }

    /// Copies a file by way of `writeFile` (streamed, so a large binary is never all in memory).
    private func copyFile(
        _ source: String,
        to path: String,
        mode: mode_t,
        shownAs name: String? = nil,
        quiet: Bool = false
    ) throws(InstallFailure) {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw InstallFailure("read", source, errno: errno) }
        defer { close(input) }
        try replace(path, mode: mode, from: name ?? source, quiet: quiet) { fd in
            var chunk = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { return false }
                if count == 0 { return true }
                guard Self.writeAll(fd, Array(chunk[0..<count])) else { return false }
            }
        }
    }

    /// Writes `bytes` as `path`.
    private func writeFile(_ path: String, bytes: [UInt8], mode: mode_t) throws(InstallFailure) {
        try replace(path, mode: mode, from: nil, quiet: false) { fd in Self.writeAll(fd, bytes) }
    }

    /// Writes a temporary file in `path`'s directory, gives it to root with `mode`, syncs it, renames it
    /// over `path` and syncs the directory: readers see the old file or the new one, never a mix, and a
    /// running daemon keeps the inode it opened.
    private func replace(
        _ path: String,
        mode: mode_t,
        from source: String?,
        quiet: Bool,
        fill: (Int32) -> Bool
    ) throws(InstallFailure) {
        let shown = "\(path) (\(InstallMode.octal(mode)) root:root)" + (source.map { " from \($0)" } ?? "")
        if dryRun {
            if !quiet { say("would install \(shown)") }
            return
        }
        let target = layout.path(path)
        let directory = InstallLayout.directory(of: target)
        FileTree.makeDirectories(directory, mode: 0o755)
        let name = String(target[target.index(after: target.lastIndex(of: "/") ?? target.startIndex)...])
        let temporary = directory + "/." + name + ".vigil-install-\(getpid())"
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw InstallFailure("write", temporary, errno: errno) }
        var failed: InstallFailure?
        if !fill(fd) {
            failed = InstallFailure("write", temporary, errno: errno)
        } else if chownsToRoot && fchown(fd, 0, 0) != 0 {
            failed = InstallFailure("chown", temporary, errno: errno)
        } else if fchmod(fd, mode) != 0 {
            failed = InstallFailure("chmod", temporary, errno: errno)
        } else if fsync(fd) != 0 {
            failed = InstallFailure("sync", temporary, errno: errno)
        }
        close(fd)
        if failed == nil && rename(temporary, target) != 0 { failed = InstallFailure("replace", target, errno: errno) }
        if let failed {
            unlink(temporary)
            throw failed
        }
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
        if !quiet { say("installed \(shown)") }
    }

    /// Writes every byte, retrying short writes and EINTR.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.write(fd, base + offset, raw.count - offset)
            }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            offset += count
        }
        return true
    }

    /// A whole (small) file, or nil with errno set.
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }

    // MARK: systemd

    /// Whether systemd runs this host (the test `sd_booted(3)` makes).
    static var systemdRuns: Bool {
        var info = stat()
        return lstat("/run/systemd/system", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Runs systemctl with `arguments`; nil on success, else what went wrong.
    static func systemctl(_ arguments: [String]) -> String? {
        let candidates: [String] = ["/usr/bin/systemctl", "/bin/systemctl"]
        let executable = candidates.first { access($0, X_OK) == 0 }
        guard let executable else { return "systemctl not found" }
        do {
            let pid = try Spawn.start(executable, arguments: arguments)
            let status = try Spawn.wait(pid)
            return status == 0 ? nil : "exit status \(status >> 8)"
        } catch {
            return "\(error)"
        }
    }
}

/// How the install steps show a file mode.
enum InstallMode {
    /// `0755`, `0644`.
    static func octal(_ mode: mode_t) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
