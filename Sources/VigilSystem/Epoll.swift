import CVigilLinux
public import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An epoll instance (`man 7 epoll`): the one place a data-plane thread sleeps (C1).
public struct Epoll: ~Copyable, @unchecked Sendable {
    // @unchecked Sendable: the descriptor is an int; epoll_ctl/epoll_wait are thread-safe.

    /// The epoll descriptor.
    public let descriptor: CInt

    /// `epoll_create1(EPOLL_CLOEXEC)`.
    public init() throws(Errno) {
        descriptor = try Syscall.valueOrErrno { epoll_create1(CInt(EPOLL_CLOEXEC)) }
    }

    deinit { Syscall.close(descriptor) }

    /// Registers `fd` for readability (or `events`), tagging wake-ups with `tag`.
    public func add(_ fd: CInt, tag: UInt64, events: UInt32 = 1) throws(Errno) {  // 1 is EPOLLIN
        var event = epoll_event()
        event.events = events
        event.data.u64 = tag
        _ = try Syscall.valueOrErrno { epoll_ctl(descriptor, EPOLL_CTL_ADD, fd, &event) }
    }

    /// Removes `fd`. Errors are ignored: the descriptor may already be closed.
    public func remove(_ fd: CInt) {
        _ = epoll_ctl(descriptor, EPOLL_CTL_DEL, fd, nil)
    }

    /// `epoll_wait`: blocks until at least one descriptor is ready or `timeoutMilliseconds` passes (-1: forever).
    /// Calls `body` with the tag of each ready descriptor. `EINTR` returns with no tags.
    @inline(never)
    public func wait(timeoutMilliseconds: CInt = -1, _ body: (UInt64) -> Void) throws(Errno) {
        var events = (
            epoll_event(), epoll_event(), epoll_event(), epoll_event(),
            epoll_event(), epoll_event(), epoll_event(), epoll_event()
        )
        let n = withUnsafeMutableBytes(of: &events) { raw in
            epoll_wait(descriptor, raw.baseAddress!.assumingMemoryBound(to: epoll_event.self), 8, timeoutMilliseconds)
        }
        if n < 0 {
            let code = errno
            if code == EINTR { return }
            throw Errno(rawValue: code)
        }
        withUnsafeBytes(of: &events) { raw in
            let list = raw.baseAddress!.assumingMemoryBound(to: epoll_event.self)
            for i in 0..<Int(n) { body(list[i].data.u64) }
        }
    }
}
