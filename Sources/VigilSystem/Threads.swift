import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// Data-plane threads (C1, C6): plain pthreads with a name (N7), never Swift's cooperative pool, which has
/// only as many threads as cores and must not be blocked by `epoll_wait`.
public enum Threads {
    /// Starts a named thread running `body`. The entry point is a top-level function: a closure literal
    /// passed to `pthread_create` from top-level code crashed in Swift 6 (see DESIGN.md).
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) -> ThreadHandle {
        let context = Unmanaged.passRetained(ThreadContext(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, vigilThreadEntry, context)
        precondition(rc == 0, "pthread_create failed for '\(name)': \(rc)")
        return ThreadHandle(raw: UInt(thread))
    }

    /// The calling thread's kernel id (`gettid(2)`; `parentPid` of the process events of what it forks).
    public static func currentID() -> Int32 {
        Int32(CVigilLinux_gettid())
    }

    /// Waits for `thread` to finish.
    public static func join(_ thread: ThreadHandle) {
        _ = pthread_join(pthread_t(thread.raw), nil)
    }
}

/// A started thread, for `Threads.join`.
public struct ThreadHandle: Sendable {
    let raw: UInt
}

/// What a new thread runs.
final class ThreadContext {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// The C entry point of every Vigil thread.
private func vigilThreadEntry(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    let context = Unmanaged<ThreadContext>.fromOpaque(raw!).takeRetainedValue()
    _ = context.name.withCString { CVigilLinux_set_thread_name($0) }
    context.body()
    return nil
}
