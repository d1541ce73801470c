/// A shipped rule, sink or list that local rules replace (`override: true`) or turn off (`disable:`);
/// `vigil check` prints one line for each.
public struct RuleLayerChange: Sendable, Equatable, CustomStringConvertible {
    /// Replaced or turned off.
    public enum Kind: String, Sendable, Equatable {
        /// A local item with `override: true` replaces the shipped one.
        case overridden
        /// A local `disable:` turns the shipped rule off.
        case disabled
    }

    /// What kind of item.
    public enum Item: String, Sendable, Equatable {
        /// A `- rule:`.
        case rule
        /// A `- sink:`.
        case sink
        /// A `- list:`.
        case list
    }

    /// Replaced or turned off.
    public var kind: Kind
    /// Rule, sink or list.
    public var item: Item
    /// The rule id, sink name or list name.
    public var name: String
    /// Where the shipped item is.
    public var shipped: SourceLocation
    /// Where the local item or the `disable:` entry is.
    public var local: SourceLocation

    /// Creates a change.
    public init(kind: Kind, item: Item, name: String, shipped: SourceLocation, local: SourceLocation) {
        self.kind = kind
        self.item = item
        self.name = name
        self.shipped = shipped
        self.local = local
    }

    /// `shipped rule 'x' (rules.d/a.yaml:3:3) is overridden by local.d/b.yaml:1:3`, or `… is disabled by …`.
    public var description: String {
        "shipped \(item.rawValue) '\(name)' (\(shipped)) is \(kind.rawValue) by \(local)"
    }
}
