import SystemPackage
import Testing
import VigilTestSupport

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The real kernel's socket table: sockets this test binds itself are found by `SocketDiag` with their
/// address, port, inode and uid, and by `SocketOwners` in this process's descriptors.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct SocketDiagTests {
    /// Whether a NETLINK_SOCK_DIAG socket can be opened and dumped here; where it cannot, the tests that
    /// need one are skipped with this reason shown.
    static let openError: SocketDiagError? = {
        do throws(SocketDiagError) {
            let diag = try SocketDiag()
            _ = try diag.listeners()
            return nil
        } catch {
            return error
        }
    }()
    static let available = openError == nil

    /// Whether this host has IPv6 (the kernel may be built or booted without it).
    static let hasIPv6: Bool = {
        let fd = socket(AF_INET6, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        if fd >= 0 { Glibc.close(fd) }
        return fd >= 0
    }()

    static let ssPath: String? = ["/usr/bin/ss", "/bin/ss", "/usr/sbin/ss", "/sbin/ss"].first { (path: String) in
        access(path, X_OK) == 0
    }

    @Test(.enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"))
    func findsOwnTCPAndUDPListenersWithTheirOwner() throws {
        let tcp4 = try BoundSocket(family: AF_INET, type: SOCK_STREAM, address: "127.0.0.1")
        defer { tcp4.close() }
        let udp4 = try BoundSocket(family: AF_INET, type: SOCK_DGRAM, address: "0.0.0.0")
        defer { udp4.close() }
        let diag = try SocketDiag()
        defer { diag.close() }
        let found = try diag.listeners()
        let uid = geteuid()

        let expectedTCP = ListeningSocket(
            proto: .tcp,
            family: AF_INET,
            address: "127.0.0.1",
            port: tcp4.port,
            inode: tcp4.inode,
            uid: uid,
            isWildcard: false
        )
        let expectedUDP = ListeningSocket(
            proto: .udp,
            family: AF_INET,
            address: "0.0.0.0",
            port: udp4.port,
            inode: udp4.inode,
            uid: uid,
            isWildcard: true
        )
        #expect(
            found.contains(expectedTCP),
            "listeners() lacks \(expectedTCP); it has \(found.filter { $0.inode == tcp4.inode })"
        )
        #expect(
            found.contains(expectedUDP),
            "listeners() lacks \(expectedUDP); it has \(found.filter { $0.inode == udp4.inode })"
        )
        // Each socket is reported once: by its own family and protocol's dump only.
        #expect(found.filter { $0.inode == tcp4.inode }.count == 1)
        #expect(found.filter { $0.inode == udp4.inode }.count == 1)

        let owners = SocketOwners.owners(of: [tcp4.inode, udp4.inode, 0])
        // Contains rather than equals: a child that another thread spawns holds copies of our descriptors
        // until its exec closes them (CLOEXEC), and would be listed too.
        #expect(owners[tcp4.inode]?.contains(getpid()) == true, "owners: \(owners)")
        #expect(owners[udp4.inode]?.contains(getpid()) == true, "owners: \(owners)")
        #expect(owners[0] == nil)
        #expect(Set(owners.keys).isSubset(of: [tcp4.inode, udp4.inode]), "only the inodes asked for are kept")
    }

    @Test(
        .enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"),
        .enabled(if: hasIPv6, "needs IPv6 in this kernel")
    )
    func findsIPv6WildcardListener() throws {
        let tcp6 = try BoundSocket(family: AF_INET6, type: SOCK_STREAM, address: "::")
        defer { tcp6.close() }
        let diag = try SocketDiag()
        defer { diag.close() }
        let found = try diag.listeners()
        let expected = ListeningSocket(
            proto: .tcp,
            family: AF_INET6,
            address: "::",
            port: tcp6.port,
            inode: tcp6.inode,
            uid: geteuid(),
            isWildcard: true
        )
        #expect(
            found.contains(expected),
            "listeners() lacks \(expected); it has \(found.filter { $0.inode == tcp6.inode })"
        )
        #expect(SocketOwners.owners(of: [tcp6.inode])[tcp6.inode]?.contains(getpid()) == true)
    }

    @Test(
        .enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"),
        .enabled(if: hasIPv6, "needs IPv6 in this kernel")
    )
    func v4MappedAddressStaysIPv6Text() throws {
        // An IPv6 socket may bind an IPv4 address written v4-mapped (when IPV6_V6ONLY is off); the kernel
        // reports it in the IPv6 dump, and it is shown as IPv6 text, not as 127.0.0.1.
        let mapped = try BoundSocket(family: AF_INET6, type: SOCK_STREAM, address: "::ffff:127.0.0.1")
        defer { mapped.close() }
        let diag = try SocketDiag()
        defer { diag.close() }
        let found = try diag.listeners().filter { $0.inode == mapped.inode }
        #expect(found.count == 1)
        #expect(found.first?.family == AF_INET6 && found.first?.port == mapped.port)
        #expect(found.first?.address == "::ffff:127.0.0.1" && found.first?.isWildcard == false)
    }

    @Test(.enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"))
    func closedListenerDisappearsAndTheSocketIsReused() throws {
        let diag = try SocketDiag()
        defer { diag.close() }
        let tcp = try BoundSocket(family: AF_INET, type: SOCK_STREAM, address: "127.0.0.1")
        let udp = try BoundSocket(family: AF_INET, type: SOCK_DGRAM, address: "127.0.0.1")
        let before = try diag.listeners()
        #expect(before.contains { $0.inode == tcp.inode && $0.proto == .tcp && $0.port == tcp.port })
        #expect(before.contains { $0.inode == udp.inode && $0.proto == .udp && $0.port == udp.port })
        tcp.close()
        udp.close()
        // close() unhashes a listening or bound socket before it returns, unless another descriptor table
        // still holds it: a child another thread is spawning holds copies until its exec. So the check is
        // repeated until a deadline rather than made once; on a quiet machine the first dump passes.
        let deadline = ContinuousClock.now + .seconds(10)
        var after = try diag.listeners()
        while after.contains(where: { $0.inode == tcp.inode || $0.inode == udp.inode })
            && ContinuousClock.now < deadline
        {
            after = try diag.listeners()
        }
        #expect(!after.contains { $0.inode == tcp.inode }, "the closed TCP listener is still listed")
        #expect(!after.contains { $0.inode == udp.inode }, "the closed UDP socket is still listed")
    }

    @Test(
        .enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"),
        .enabled(if: ssPath != nil, "needs ss(8) from iproute2 to compare with")
    )
    func everyTCPPortSSShowsIsListed() throws {
        let ss = try #require(Self.ssPath)
        let own = try BoundSocket(family: AF_INET, type: SOCK_STREAM, address: "127.0.0.1")
        defer { own.close() }
        let diag = try SocketDiag()
        defer { diag.close() }
        // Other processes on this machine open and close listeners meanwhile: a port that ss shows both
        // before and after our dump was listening throughout it, so only those must be in it.
        let first = try Self.ssTCPListenPorts(ss)
        let listed = Set(try diag.listeners().filter { $0.proto == .tcp }.map(\.port))
        let second = try Self.ssTCPListenPorts(ss)
        let stable = first.intersection(second)
        #expect(stable.contains(own.port), "ss did not show our own listener on port \(own.port): \(first)")
        #expect(stable.isSubset(of: listed), "ss shows TCP ports listeners() lacks: \(stable.subtracting(listed))")
    }

    @Test(.enabled(if: available, "needs NETLINK_SOCK_DIAG socket dumps (AF_NETLINK allowed, inet_diag in the kernel)"))
    func dumpSpanningManyDatagramsIsReadToTheEnd() throws {
        // A dump datagram holds at most 32 KiB, about 260 UDP sockets of ~124 bytes each (strace on 6.18);
        // 600 take at least three, so this reads past the first and stops only at NLMSG_DONE.
        var sockets: [BoundSocket] = []
        defer { for socket in sockets { socket.close() } }
        for _ in 0..<600 {
            sockets.append(try BoundSocket(family: AF_INET, type: SOCK_DGRAM, address: "127.0.0.1"))
        }
        let diag = try SocketDiag()
        defer { diag.close() }
        let found = Set(try diag.listeners().filter { $0.proto == .udp }.map(\.inode))
        let missing = sockets.filter { !found.contains($0.inode) }.map(\.port)
        #expect(missing.isEmpty, "UDP sockets missing from the dump, by port: \(missing)")
        let owners = SocketOwners.owners(of: Set(sockets.map(\.inode)))
        #expect(owners.count == sockets.count && owners.values.allSatisfy { $0.contains(getpid()) })
    }

    @Test func socketInodeParsesOnlySocketLinks() {
        func inode(_ text: String) -> UInt64? {
            Array(text.utf8).withUnsafeBufferPointer { SocketOwners.socketInode($0) }
        }
        #expect(inode("socket:[12345]") == 12345)
        #expect(inode("socket:[4294967295]") == 4_294_967_295)
        #expect(inode("socket:[]") == nil)
        #expect(inode("socket:[12a]") == nil)
        #expect(inode("pipe:[12345]") == nil)
        #expect(inode("anon_inode:[eventfd]") == nil)
        #expect(inode("/var/log/syslog") == nil)
    }

    @Test func errorMessagesNameTheStepAndTheFix() {
        let restricted = SocketDiagError(step: .socket, errno: .addressFamilyNotSupported)
        #expect(restricted.code == .addressFamilyRestricted)
        #expect(
            restricted.description.hasPrefix("Failed to list listening sockets: opening a NETLINK_SOCK_DIAG socket")
        )
        #expect(restricted.description.contains("RestrictAddressFamilies="))
        #expect(!restricted.description.contains("\n"))
        let missing = SocketDiagError(step: .answer, errno: .noSuchFileOrDirectory)
        #expect(missing.code == .unsupported && missing.description.contains("udp_diag"))
        let parse = SocketDiagError(parse: "an inet_diag_msg of 12 bytes (72 expected)")
        #expect(parse.code == .malformedAnswer && parse.errno == nil && parse.step == .parse)
    }

    /// The local ports of `ss -Htln` (TCP, listening, numeric, no header): the fourth column,
    /// `ADDRESS:PORT`, where the address may itself hold colons (`[::]:22`) or a scope (`127.0.0.53%lo:53`).
    static func ssTCPListenPorts(_ ss: String) throws -> Set<UInt16> {
        let tree = TempTree("sockdiag")
        defer { tree.remove() }
        let output = tree.path("ss.txt")
        let pid = try Spawn.start(ss, arguments: ["-Htln"], streams: .separate(output: output, error: nil))
        let status = try #require(try Spawn.wait(pid, timeoutMilliseconds: 30_000), "ss did not exit within 30 s")
        try #require(status == 0, "ss -Htln exited with status \(status)")
        let text = try #require(tree.read("ss.txt"))
        var ports: Set<UInt16> = []
        for line in text.split(separator: "\n") {
            let columns = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard columns.count >= 4, let colon = columns[3].lastIndex(of: ":") else { continue }
            if let port = UInt16(columns[3][columns[3].index(after: colon)...]) { ports.insert(port) }
        }
        return ports
    }
}

/// A socket of this test bound to `address` port 0 (the kernel picks the port), listening when it is TCP.
private final class BoundSocket {
    let fd: CInt
    let port: UInt16
    let inode: UInt64
    private var isOpen = true

    init(family: CInt, type: __socket_type, address: String) throws {
        let fd = socket(family, CInt(type.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Errno(rawValue: errno) }
        var storage = sockaddr_storage()
        var length: socklen_t
        if family == AF_INET {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = 0
            _ = inet_pton(AF_INET, address, &v4.sin_addr)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeBytes(of: v4) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
        } else {
            // Off explicitly, so that a v4-mapped address binds whatever net.ipv6.bindv6only says.
            var off: CInt = 0
            _ = setsockopt(fd, CInt(IPPROTO_IPV6), IPV6_V6ONLY, &off, socklen_t(MemoryLayout<CInt>.size))
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = 0
            _ = inet_pton(AF_INET6, address, &v6.sin6_addr)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeBytes(of: v6) { raw in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: raw) } }
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        if bound != 0 || (type == SOCK_STREAM && listen(fd, 8) != 0) {
            let code = errno
            Glibc.close(fd)
            throw Errno(rawValue: code)
        }
        // getsockname: the port the kernel chose. sin_port and sin6_port are at the same offset (2).
        var local = sockaddr_storage()
        var localLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &localLength) }
        }
        port = withUnsafeBytes(of: local) { UInt16(bigEndian: $0.loadUnaligned(fromByteOffset: 2, as: UInt16.self)) }
        var info = stat()
        _ = fstat(fd, &info)
        inode = UInt64(info.st_ino)
        self.fd = fd
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        Glibc.close(fd)
    }

    deinit { close() }
}
