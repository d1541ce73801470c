import VigilSystem

/// The threads that start programs as Vigil's own actions besides the process watcher's (the rotation
/// watcher's `postrotate:` commands). A process forked by one of them, and what it starts, is an action of
/// Vigil's, not a program for the process rules to judge as an unexpected root process. Threads, not the
/// daemon's pid: a daemon running inside another program (the tests) must still judge that program's
/// children.
enum ActionThreads {
    private static let ids = Locked<Set<Int32>>([])

    /// Registers the calling thread (once, at the start of its run loop).
    static func registerCurrent() {
        let tid = Threads.currentID()
        ids.withLock { _ = $0.insert(tid) }
    }

    /// Unregisters the calling thread (at the end of its run loop).
    static func unregisterCurrent() {
        let tid = Threads.currentID()
        ids.withLock { _ = $0.remove(tid) }
    }

    /// True when thread `tid` is registered.
    static func contains(_ tid: Int32) -> Bool {
        ids.withLock { $0.contains(tid) }
    }
}
