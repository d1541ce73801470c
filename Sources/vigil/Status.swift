import ArgumentParser

/// `vigil status`: what the running daemon is doing, over its status socket.
// SKELETON: filled in by the metrics/status work.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what the running daemon is doing: sources, rules and their hits, firing conditions."
    )

    func run() throws {}
}
