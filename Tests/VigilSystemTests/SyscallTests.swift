import SystemPackage
import Testing

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SyscallTests {
    @Test func readReportsWouldBlockAsNil() throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            Syscall.close(fds[0])
            Syscall.close(fds[1])
        }
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try buffer.withUnsafeMutableBytes { try Syscall.read(fds[0], into: $0) }
        #expect(n == nil)
        try Array("hello".utf8).withUnsafeBytes { try Syscall.writeAll(fds[1], $0) }
        let m = try buffer.withUnsafeMutableBytes { try Syscall.read(fds[0], into: $0) }
        #expect(m == 5)
    }

    @Test func readOnClosedDescriptorThrowsBadFileDescriptor() {
        var buffer = [UInt8](repeating: 0, count: 1)
        #expect(throws: Errno.badFileDescriptor) {
            _ = try buffer.withUnsafeMutableBytes { try Syscall.read(-1, into: $0) }
        }
    }
}
