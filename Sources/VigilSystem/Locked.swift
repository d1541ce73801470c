#if canImport(Glibc)
import Glibc
#endif

/// A value behind a `pthread_mutex_t`, for the few places where two data-plane threads share state that is
/// not a counter (the gzip worker's queue, the registry of action threads).
///
/// Not `Synchronization.Mutex`: on Linux it locks with futexes directly, which ThreadSanitizer cannot see,
/// so CI's TSan run reports every access made under it as a race; a pthread mutex is seen, so a real race
/// still shows up. Uncontended, both cost one atomic operation per lock and unlock.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked Sendable: `value` is only touched between pthread_mutex_lock and pthread_mutex_unlock.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the mutex held.
    public func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
