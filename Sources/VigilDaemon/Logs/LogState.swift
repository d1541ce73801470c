import SystemPackage
import VigilCore
import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// What the log watcher persists so that a restart (or a crash) neither loses nor repeats a line: for each
/// followed file its identity, fingerprint and the offset up to which every line's alerts are in the
/// sinks; for each JSON Lines sink, its size at that moment (alerts written after it are read back at
/// start-up, so a replayed line's alert is not written twice); for each redacted copy, its size (cut back
/// to it, so a replayed line is not copied twice).
///
/// The file is text, one record per line, so an SRE can read it:
/// ```
/// vigil-log-state 1 <saved-unix-ns>
/// file <dev> <ino> <fingerprint-hex> <fingerprint-length> <offset> <copy-size|-> <server-path> \t <copy-path>
/// sink <size> <host-path>
/// ```
/// It is replaced atomically (written to a temporary file in the same directory, then renamed over),
/// so a crash leaves either the old state or the new one, never half of one.
struct LogState: Equatable {
    struct File: Equatable {
        var device: UInt64
        var inode: UInt64
        var fingerprint: LogFingerprint
        var offset: Int64
        /// Server path the file was last seen under.
        var path: String
        /// Host path of its redacted copy and that copy's size, when it has one.
        var copyPath: String?
        var copySize: Int64
    }

    var savedAtNanoseconds: Int64 = 0
    var files: [File] = []
    /// Host path of each JSON Lines sink → its size when the state was taken.
    var sinkSizes: [String: Int64] = [:]

    static let header = "vigil-log-state 1"

    func encoded() -> String {
        var out = "\(Self.header) \(savedAtNanoseconds)\n"
        for file in files {
            let copySize = file.copyPath == nil ? "-" : String(file.copySize)
            out += "file \(file.device) \(file.inode) \(StableHash.hex(file.fingerprint.hash)) "
            out += "\(file.fingerprint.length) \(file.offset) \(copySize) \(StateText.escape(file.path))"
            out += "\t\(StateText.escape(file.copyPath ?? ""))\n"
        }
        for (path, size) in sinkSizes.sorted(by: { $0.key < $1.key }) {
            out += "sink \(size) \(StateText.escape(path))\n"
        }
        return out
    }

    /// Parses a state file; nil when it is not one (the caller says so and starts afresh).
    static func decode(_ text: String) -> LogState? {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: true)[...]
        guard let first = lines.popFirst(), first.hasPrefix(header + " "),
            let saved = Int64(first.dropFirst(header.count + 1))
        else { return nil }
        var state = LogState(savedAtNanoseconds: saved)
        for line in lines {
            if line.hasPrefix("file ") {
                let fields = line.dropFirst(5).split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false)
                guard fields.count == 7, let device = UInt64(fields[0]), let inode = UInt64(fields[1]),
                    let hash = UInt64(fields[2], radix: 16), let length = Int(fields[3]), let offset = Int64(fields[4])
                else { return nil }
                let paths = fields[6].split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
                let copyPath = paths.count > 1 && !paths[1].isEmpty ? StateText.unescape(paths[1]) : nil
                state.files.append(
                    File(
                        device: device,
                        inode: inode,
                        fingerprint: LogFingerprint(hash: hash, length: length),
                        offset: offset,
                        path: StateText.unescape(paths[0]),
                        copyPath: copyPath,
                        copySize: Int64(fields[5]) ?? 0
                    )
                )
            } else if line.hasPrefix("sink ") {
                let fields = line.dropFirst(5).split(separator: " ", maxSplits: 1)
                guard fields.count == 2, let size = Int64(fields[0]) else { return nil }
                state.sinkSizes[StateText.unescape(fields[1])] = size
            } else {
                return nil
            }
        }
        return state
    }
}

/// Reads and replaces the state file.
struct LogStateStore {
    /// Host path of the state file.
    let path: String

    enum Loaded {
        /// No state file: Vigil runs for the first time with these rules.
        case none
        case state(LogState)
        /// A file that is not a state file (damaged, or another program's): the message says what happens.
        case unreadable(String)
    }

    func load() -> Loaded {
        switch WholeFileReader.read(path, limit: 64 << 20) {
        case .missing: return .none
        case .busy: return .unreadable("The log state file '\(path)' is held open by a writer; starting afresh")
        case .content(let bytes, _):
            if let state = LogState.decode(String(decoding: bytes, as: UTF8.self)) { return .state(state) }
            return .unreadable(
                "The log state file '\(path)' is not a Vigil state file (damaged?); starting afresh: existing logs are read from the position their rules' from: says, and lines written while vigil was stopped may be missed. Remove the file to silence this"
            )
        case .failed(let error):
            return .unreadable("Failed to read the log state file: \(error); starting afresh")
        }
    }

    /// Writes `state` to a temporary file beside the state file and renames it over, so a crash leaves the
    /// old state or the new one. `durable`: fsync the file and the directory too (at shutdown; between saves
    /// a rename is enough to survive a crash of the daemon, and ext4 flushes a file renamed over another).
    func save(_ state: LogState, durable: Bool) throws(LogStateError) {
        let bytes = Array(state.encoded().utf8)
        do throws(AtomicFileError) {
            try AtomicFile.replace(path, with: bytes, durable: durable)
        } catch {
            throw LogStateError(path: error.path, errno: error.errno)
        }
    }
}

struct LogStateError: Error, CustomStringConvertible {
    let path: String
    let errno: CInt

    var description: String {
        let reason = String(cString: strerror(errno))
        let fix =
            errno == ENOSPC
            ? "free space on that filesystem"
            : "check that the state directory exists and vigil may write it (--state-dir, StateDirectory= in vigil.service)"
        return
            "Failed to save the log state to '\(path)': \(reason); \(fix). Offsets stay in memory and are saved again shortly"
    }
}

/// A fingerprint of a log's first bytes that in-place masking cannot change: the positions of the newlines
/// in the first `length` bytes (masking replaces bytes of a line with bytes of the same length and never
/// writes a newline). With the device and inode it tells a file from a new one that reuses the inode, and,
/// at start-up, the file the state file describes from another one now under its name.
struct LogFingerprint: Equatable {
    var hash: UInt64
    /// Bytes covered (at most `span`).
    var length: Int

    static let span = 1024

    /// Over the first `length` bytes of `bytes`.
    static func compute(_ bytes: UnsafeRawBufferPointer) -> LogFingerprint {
        var hash = StableHash.offsetBasis
        var newlines: UInt64 = 0
        for (index, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            var position = UInt32(truncatingIfNeeded: index).littleEndian
            hash = withUnsafeBytes(of: &position) { StableHash.fnv1a64($0, seed: hash) }
            newlines += 1
        }
        var length = UInt32(truncatingIfNeeded: bytes.count).littleEndian
        hash = withUnsafeBytes(of: &length) { StableHash.fnv1a64($0, seed: hash) }
        return LogFingerprint(hash: hash, length: bytes.count)
    }

    /// Reads the first `length` bytes of the open file and fingerprints them; nil when fewer are there.
    static func read(_ fd: CInt, length: Int) -> LogFingerprint? {
        var buffer = [UInt8](repeating: 0, count: length)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, 0) }
        guard n == length else { return nil }
        return buffer.withUnsafeBytes { compute($0) }
    }
}
