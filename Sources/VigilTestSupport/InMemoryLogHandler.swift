public import Logging
import VigilSystem

/// A `LogHandler` that keeps every message, so tests can assert what the daemon logged (T6) without
/// bootstrapping the global logging system.
public struct InMemoryLogHandler: LogHandler {
    /// The shared store of messages written through this handler and its copies.
    public final class Store: Sendable {
        private let entries = Locked<[(Logger.Level, String)]>([])

        public init() {}

        /// Every message so far, with its level.
        public var messages: [(level: Logger.Level, message: String)] {
            entries.withLock { $0.map { (level: $0.0, message: $0.1) } }
        }

        /// Messages at `level` or above.
        public func messages(atLeast level: Logger.Level) -> [String] {
            messages.filter { $0.level >= level }.map(\.message)
        }

        func append(_ level: Logger.Level, _ message: String) {
            entries.withLock { $0.append((level, message)) }
        }
    }

    public let store: Store
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    public init(store: Store) {
        self.store = store
    }

    /// A logger writing into a new store.
    public static func logger(label: String = "test") -> (Logger, Store) {
        let store = Store()
        return (Logger(label: label) { _ in InMemoryLogHandler(store: store) }, store)
    }

    public func log(event: LogEvent) {
        store.append(event.level, event.message.description)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}
