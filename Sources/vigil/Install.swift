import ArgumentParser

/// `vigil install`: the binary, the shipped rules, the unit and the state directory, in one command.
// SKELETON: filled in by the install work.
struct Install: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Install vigil as a service: the binary, /etc/vigil/rules.d, the systemd unit, the state directory."
    )

    func run() throws {}
}
