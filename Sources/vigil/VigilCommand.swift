import ArgumentParser
import VigilDaemon

/// `vigil`: the command-line front end of the daemon.
@main
struct VigilCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "An event-driven host watcher: config drift, file changes and alerts, the moment they happen.",
        discussion: "Rules are YAML files; see docs/rules.md. Start with 'vigil demo'.",
        version: VigilVersion.string,
        subcommands: [Run.self, Check.self, Status.self, Match.self, Probe.self, Install.self, Demo.self]
    )
}
