import CVigilLinux

#if canImport(Glibc)
import Glibc
#endif

/// Which processes hold a socket. The kernel's socket table (`SocketDiag`) names no process, only the
/// socket's inode; a process holds a socket when one of its descriptors is it, and
/// `readlink("/proc/PID/fd/N")` of such a descriptor reads `socket:[INODE]`.
///
/// Reading another user's `/proc/PID/fd` needs ptrace read access to it (`CAP_SYS_PTRACE`) and, the
/// directory being mode 0500, `CAP_DAC_READ_SEARCH`: without them those processes are skipped, and their
/// sockets show no owner.
/// See `man 5 proc` (`/proc/pid/fd/`), `man 2 readlink`.
public enum SocketOwners {
    /// Socket inode → the pids holding it (ascending, each once), for the inodes in `inodes` only. Reads
    /// every `proc/PID/fd/*` link (`readlinkat`, which never follows the link); a process that exits during
    /// the scan, or whose descriptors may not be read, is skipped. An inode held by no process we can read
    /// has no key.
    ///
    /// Only process directories are read, not each thread's (`/proc/PID/task/TID/fd`): threads share
    /// their process's descriptor table unless one was made with `clone` without `CLONE_FILES`.
    /// A child between `fork` and `exec` holds copies of its parent's descriptors and is an owner too.
    ///
    /// Cold path: one `opendir` per process and one `readlinkat` per descriptor.
    public static func owners(of inodes: Set<UInt64>, proc: String = "/proc") -> [UInt64: [Int32]] {
        guard !inodes.isEmpty else { return [:] }
        let root = proc.hasSuffix("/") && proc.count > 1 ? String(proc.dropLast()) : proc
        return owners(of: inodes, among: ProcFS(root: root, bufferSize: 4096).pids(), root: root)
    }

    /// As `owners(of:proc:)`, searching only the descriptors of `pids` (in the order given; a pid that is
    /// gone or unreadable is skipped). The cheap first look: a program that just started listening is
    /// almost always one that just ran (its exec is the cue), so its few descriptors are read instead of
    /// every process's. Pids are searched once each, and each inode's pids come out in the order searched.
    public static func owners(of inodes: Set<UInt64>, among pids: [Int32], proc: String = "/proc") -> [UInt64: [Int32]]
    {
        guard !inodes.isEmpty, !pids.isEmpty else { return [:] }
        let root = proc.hasSuffix("/") && proc.count > 1 ? String(proc.dropLast()) : proc
        return owners(of: inodes, among: pids, root: root)
    }

    private static func owners(of inodes: Set<UInt64>, among pids: [Int32], root: String) -> [UInt64: [Int32]] {
        var result: [UInt64: [Int32]] = [:]
        var searched = Set<Int32>()
        // "socket:[4294967295]" is 19 bytes; any longer link is not a socket.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { link in
            for pid in pids where searched.insert(pid).inserted {
                guard let directory = opendir("\(root)/\(pid)/fd") else { continue }  // exited, or EACCES
                defer { closedir(directory) }
                let fd = dirfd(directory)
                while let entry = readdir(directory) {
                    let length = withUnsafeBytes(of: &entry.pointee.d_name) { name -> Int in
                        let first = name.first ?? 0
                        guard first != 0, first != UInt8(ascii: "."), let nameBase = name.baseAddress,
                            let linkBase = link.baseAddress
                        else { return -1 }  // ".", ".."
                        return readlinkat(
                            fd,
                            nameBase.assumingMemoryBound(to: CChar.self),
                            UnsafeMutableRawPointer(linkBase).assumingMemoryBound(to: CChar.self),
                            link.count
                        )
                    }
                    guard length > 0, length < link.count,
                        let inode = socketInode(UnsafeBufferPointer(rebasing: link[0..<length])),
                        inodes.contains(inode)
                    else { continue }
                    // A socket held twice by one process (dup) is the last one appended.
                    if result[inode]?.last != pid { result[inode, default: []].append(pid) }
                }
            }
        }
        return result
    }

    /// The inode in a descriptor link `socket:[INODE]`, or nil for any other link (files, pipes,
    /// `anon_inode:…`).
    static func socketInode(_ link: UnsafeBufferPointer<UInt8>) -> UInt64? {
        let prefix = "socket:[".utf8
        guard link.count > prefix.count + 1, link.starts(with: prefix), link.last == UInt8(ascii: "]") else {
            return nil
        }
        var value: UInt64 = 0
        for byte in link[prefix.count..<(link.count - 1)] {
            let digit = byte &- UInt8(ascii: "0")
            guard digit <= 9 else { return nil }
            let (times, overflowTimes) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowSum) = times.addingReportingOverflow(UInt64(digit))
            guard !overflowTimes && !overflowSum else { return nil }
            value = sum
        }
        return value
    }
}
