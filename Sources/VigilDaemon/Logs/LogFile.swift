import VigilCore
import VigilRules
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// One log file followed by identity (device, inode), never by name: the descriptor stays open across
/// renames, so a rotated file is read to its end wherever it was moved, and a name that now points at a
/// new file is a new `LogFile`.
final class LogFile {
    struct Key: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    let key: Key
    let descriptor: CInt
    /// Opened read-write (in-place sanitizing); false: read-only.
    let writable: Bool
    /// The inotify watch on the inode itself (IN_MODIFY, IN_ATTRIB): events follow the file through
    /// renames and symlinks. -1 when it could not be added (then the file is read on the timer).
    var watch: Int32 = -1
    /// Server path it was opened under, or last renamed to (for alerts and the state file).
    var path: String
    /// Host path of the name it was found under (the key of `LogWatcher.byName`), nil once the name left it.
    var hostName: String?
    /// Bytes processed: the end of the last complete line (a partial line waits for its newline).
    var offset: Int64
    var fingerprint: LogFingerprint
    /// Rule indices (into the watcher's rules) that apply, as a bit set over words of 64.
    var applies: [UInt64]
    /// Monotonic time it lost its name (renamed away, deleted); nil while a watched name points at it.
    var detachedSince: UInt64?
    /// Monotonic time data was last read from it.
    var lastGrowth: UInt64
    /// Queued for reading after the current event batch.
    var dirty = false
    /// Sanitizing of this file (the union of its sanitize rules), nil when none applies.
    var sanitizer: Sanitizer?
    /// `fault` reported once per kind, so a file that cannot be written is not logged per line.
    var reportedWriteFailure = false

    /// In-place masking and the redacted copy.
    /// A class, so the per-line path mutates it in place (a struct read out of the file and written back
    /// copied and retained its fields for every line).
    final class Sanitizer {
        let masker: SecretMasker
        var state = SecretMasker.State()
        /// `patterns:` of the sanitize rules, with this file's scratch.
        var custom: (patterns: CustomSecretPatterns, scratch: CustomSecretPatterns.Scratch)?
        let inPlace: Bool
        /// The redacted copy: descriptor, host path, bytes written.
        var copyDescriptor: CInt = -1
        var copyPath: String?
        var copySize: Int64 = 0

        init(masker: SecretMasker, inPlace: Bool) {
            self.masker = masker
            self.inPlace = inPlace
        }
    }

    init(
        key: Key,
        descriptor: CInt,
        writable: Bool,
        path: String,
        hostName: String?,
        offset: Int64,
        fingerprint: LogFingerprint,
        applies: [UInt64],
        now: UInt64
    ) {
        self.key = key
        self.descriptor = descriptor
        self.writable = writable
        self.path = path
        self.hostName = hostName
        self.offset = offset
        self.fingerprint = fingerprint
        self.applies = applies
        self.lastGrowth = now
    }

    func applies(_ rule: Int) -> Bool {
        let word = rule >> 6
        return word < applies.count && applies[word] & (1 << UInt64(rule & 63)) != 0
    }

    /// The file's size now; nil when fstat fails.
    var size: Int64? {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? Int64(info.st_size) : nil
    }

    /// Hard links left (0: deleted, still open by us).
    var links: Int {
        var info = stat()
        return fstat(descriptor, &info) == 0 ? Int(info.st_nlink) : 0
    }

    func close() {
        Syscall.close(descriptor)
        if let sanitizer, sanitizer.copyDescriptor >= 0 { Syscall.close(sanitizer.copyDescriptor) }
    }

    /// The instance name alert fingerprints use: the file's identity, not its name, so that a line read
    /// again after a restart (under a rotated name) gets the same alert id. (Not the fingerprint: it grows
    /// with the file's first kilobyte.)
    var instance: String { "log:\(key.device):\(key.inode)" }
}
