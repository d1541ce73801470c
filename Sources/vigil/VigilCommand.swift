import ArgumentParser
import VigilDaemon

/// `vigil`: the command-line front end of the daemon.
@main
struct VigilCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vigil",
        abstract: "An event-driven host watcher: config drift, processes, logs, permissions, alerts.",
        version: VigilVersion.string
    )
}
