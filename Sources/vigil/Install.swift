import ArgumentParser
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// `vigil install`: the binary, the shipped rules, the unit and the state directory, in one command.
///
/// The shipped rules are compiled (trust included) together with the local rules already installed
/// before anything is written, so a broken rule in the source tree installs nothing. Every file is
/// written to a temporary file in its directory, synced and renamed over the old one: a running daemon
/// keeps the binary it started from, and a reload never reads half a rule file. See docs/operations.md.
struct Install: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install vigil as a service: the binary, /etc/vigil/rules.d, the systemd unit, the state directory.",
        discussion: """
            Installs the running binary as /usr/local/bin/vigil, the source tree's rules/*.yaml as
            /etc/vigil/rules.d/ (replacing the shipped rules of an earlier install), systemd/vigil.service as
            /etc/systemd/system/vigil.service, and creates /etc/vigil/local.d/ (never touched again: local rules
            that override or disable shipped ones live there), /var/lib/vigil (0700) and /var/log/vigil. Every
            file is root:root and not writable by others. The rules are checked first: if they do not compile,
            nothing is installed. Run it again to upgrade. See docs/operations.md.
            """
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The source tree holding rules/ and systemd/ (default: found from the binary's path, e.g. .build/release/vigil, or the current directory).",
            valueName: "dir"
        )
    )
    var source: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Stage every file under DIR instead of / (as packagers do); systemctl is not run.",
            valueName: "dir"
        )
    )
    var destdir: String?

    @Flag(name: .customLong("no-unit"), help: "Do not install the systemd unit.")
    var noUnit = false

    @Flag(name: .customLong("dry-run"), help: "Print what would be installed or removed, and change nothing.")
    var dryRun = false

    @Flag(name: .long, help: "Remove the binary, the unit and /etc/vigil/rules.d (keeps local rules and state).")
    var uninstall = false

    @Flag(name: .long, help: "With --uninstall: also remove /etc/vigil/local.d and /var/lib/vigil.")
    var purge = false

    func validate() throws {
        if purge && !uninstall { throw ValidationError("--purge applies only with --uninstall") }
    }

    func run() throws {
        let root = destdir.map(InstallLayout.normalized) ?? ""
        if geteuid() != 0 && root.isEmpty && !dryRun {
            fail(
                "vigil install writes to /usr/local/bin, /etc and /var, so it must run as root: run sudo vigil install, or stage with --destdir DIR (see docs/operations.md#install-needs-root)"
            )
        }
        var installer = Installer(layout: InstallLayout(destdir: root), dryRun: dryRun)
        do {
            if uninstall {
                try installer.uninstall(purge: purge)
            } else {
                guard let tree = source.map(InstallLayout.normalized) ?? InstallLayout.findSourceTree() else {
                    fail(
                        "vigil install: Failed to find the source tree (rules/ and systemd/vigil.service) above the binary or in the current directory; run it from the checkout, or pass --source DIR (see docs/operations.md#install-source-not-found)"
                    )
                }
                try installer.install(from: tree, unit: !noUnit)
            }
        } catch {
            fail(error.description)
        }
    }

    /// Prints the line to stderr and exits 1.
    private func fail(_ line: String) -> Never {
        RuleLoading.printError(line)
        Install.exit(withError: ExitCode(1))
    }
}

/// Why an install step failed: one line with the path and the fix.
struct InstallFailure: Error, CustomStringConvertible {
    /// The line printed.
    let description: String

    /// A failure for a system call on `path`.
    init(_ action: String, _ path: String, errno code: Int32) {
        let cause = strerror(code).map { String(cString: $0).lowercased() } ?? "error \(code)"
        description =
            "vigil install: Failed to \(action) '\(path)': \(cause); check that the filesystem is writable and has room, then run vigil install again (see docs/operations.md#install-failed)"
    }

    /// A failure with its own text.
    init(_ line: String) {
        description = line
    }
}

/// Where everything goes, below `--destdir` (empty for `/`).
struct InstallLayout {
    /// The staging root, without a trailing slash; empty for the real root.
    let destdir: String

    static let binary = "/usr/local/bin/vigil"
    static let configuration = "/etc/vigil"
    static let shippedRules = "/etc/vigil/rules.d"
    static let localRules = "/etc/vigil/local.d"
    static let unit = "/etc/systemd/system/vigil.service"
    static let state = "/var/lib/vigil"
    static let logs = "/var/log/vigil"
    static let documentation = "/usr/local/share/doc/vigil"

    /// `path` below the staging root.
    func path(_ path: String) -> String { destdir + path }

    /// A path without trailing slashes (`/` becomes empty: the real root).
    static func normalized(_ path: String) -> String {
        var text = Substring(path)
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    /// The directory part of a path.
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Whether `dir` holds `rules/` and `systemd/vigil.service`.
    static func isSourceTree(_ dir: String) -> Bool {
        var info = stat()
        guard stat(dir + "/rules", &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return false }
        return stat(dir + "/systemd/vigil.service", &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// The source tree: the nearest directory above the running binary (`.build/release/vigil` is two or
    /// three levels below the checkout, `.build/x86_64-unknown-linux-gnu/release/vigil` three) that holds
    /// `rules/` and `systemd/vigil.service`, else the current directory if it does.
    static func findSourceTree() -> String? {
        if let resolved = realpath("/proc/self/exe", nil) {
            var dir = directory(of: String(cString: resolved))
            free(resolved)
            for _ in 0..<4 {
                dir = directory(of: dir)
                if isSourceTree(dir) { return dir }
                if dir == "/" { break }
            }
        }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard let cwd = buffer.withUnsafeMutableBufferPointer({ getcwd($0.baseAddress, $0.count) }) else { return nil }
        let current = String(cString: cwd)
        return isSourceTree(current) ? current : nil
    }
}
