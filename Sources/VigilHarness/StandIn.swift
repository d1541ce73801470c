import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Stand-in services: a copy of a real binary (`/bin/sleep`, `/bin/sh`) under a service's name, so that the
/// kernel reports the service's name as its `comm` and executable, exactly as for the real service. Used by
/// `vigil demo`, the tests and the benchmarks.
public enum StandIn {
    /// Copies `binary` to `destination` (parent directories created) with mode 0755.
    public static func install(_ binary: String, at destination: String) throws(HarnessError) {
        if let slash = destination.lastIndex(of: "/"), slash != destination.startIndex {
            _ = FileTree.makeDirectories(String(destination[..<slash]), mode: 0o755)
        }
        let input = open(binary, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw HarnessError("Failed to read '\(binary)': \(String(cString: strerror(errno)))") }
        defer { close(input) }
        let temporary = destination + ".tmp-standin"
        let output = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard output >= 0 else {
            throw HarnessError("Failed to create '\(temporary)': \(String(cString: strerror(errno)))")
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            var written = 0
            while written < n {
                let m = buffer.withUnsafeBytes { write(output, $0.baseAddress! + written, n - written) }
                guard m > 0 else {
                    close(output)
                    throw HarnessError("Failed to write '\(temporary)': \(String(cString: strerror(errno)))")
                }
                written += m
            }
        }
        fchmod(output, 0o755)
        close(output)
        // Renamed into place: a running copy is never overwritten ("Text file busy").
        guard rename(temporary, destination) == 0 else {
            throw HarnessError("Failed to install '\(destination)': \(String(cString: strerror(errno)))")
        }
    }
}
