import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// The last version of each watched config, kept in the state directory (`configs/`, one file per path,
/// mode 0600: a config may hold secrets, and only root reads the state directory), so that a change made
/// while Vigil was not running is reported at the next start as the keys that changed, old → new.
///
/// Each file is the config's bytes after one header line naming the path (the file name is a hash of it):
/// ```
/// vigil-config-snapshot 1 /etc/analytics/upload-service.conf
/// <the bytes as last read>
/// ```
struct ConfigSnapshotStore {
    let directory: String
    static let header = "vigil-config-snapshot 1 "

    /// Nil when the directory cannot be made (the daemon then runs without, as before).
    init?(stateDirectory: String) {
        directory = stateDirectory + "/configs"
        guard FileTree.makeDirectories(directory, mode: 0o700) else { return nil }
    }

    private func file(for path: String) -> String {
        directory + "/" + StableHash.hex(StableHash.fnv1a64(path.utf8)) + ".conf"
    }

    /// The bytes saved for `path`, or nil (none saved, another path's file, unreadable).
    func load(_ path: String) -> [UInt8]? {
        guard case .content(let bytes, _) = WholeFileReader.read(file(for: path), limit: 8 << 20) else { return nil }
        let expected = Array((Self.header + StateText.escape(path) + "\n").utf8)
        guard bytes.count >= expected.count, bytes.starts(with: expected) else { return nil }
        return Array(bytes[expected.count...])
    }

    /// Replaces what is saved for `path`; false when it could not be written.
    @discardableResult
    func save(_ path: String, bytes: [UInt8]) -> Bool {
        let content = Array((Self.header + StateText.escape(path) + "\n").utf8) + bytes
        do throws(AtomicFileError) {
            try AtomicFile.replace(file(for: path), with: content, mode: 0o600, durable: false)
            return true
        } catch {
            return false
        }
    }
}
