extension PathPattern {
    /// The normalised path: `directory` joined with the name (or glob).
    public var normalised: String {
        let last: String
        switch name {
        case .exact(let text), .glob(let text): last = text
        }
        return directory == "/" ? "/" + last : directory + "/" + last
    }
}
