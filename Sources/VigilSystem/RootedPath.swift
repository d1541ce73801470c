#if canImport(Glibc)
import Glibc
#endif

/// Resolves server paths (as rules write them, e.g. `/etc/analytics/upload-service.conf`) inside a root
/// directory, the way `vigil run --root DIR` treats DIR as `/`: symlinks are followed component by
/// component, an absolute link target starts again at the root, and `..` never climbs above it, so no
/// path in the rules can reach outside the sandbox. With root `/` this is ordinary path resolution.
public struct RootedPath: Sendable, Equatable {
    /// The host directory that stands for `/` (no trailing slash; empty for the real root).
    public let root: String

    /// `root` is a host path; "/" (or "") means the real root.
    public init(root: String) {
        var trimmed = root
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.root = trimmed == "/" ? "" : trimmed
    }

    /// The host path for a server path, without resolving anything.
    public func hostPath(_ serverPath: String) -> String {
        root.isEmpty ? serverPath : (serverPath == "/" ? root : root + serverPath)
    }

    /// The result of resolving a path.
    public struct Resolution: Sendable, Equatable {
        /// Canonical server path of the longest prefix that exists (symlinks resolved), e.g. `/etc/analytics`.
        public var existing: String
        /// Components after `existing` that do not exist (the first one is missing); empty when all exist.
        public var missing: [String]
        /// Whether any symlink was followed on the way.
        public var followedSymlink: Bool

        /// The full canonical server path (existing part plus the missing components).
        public var fullPath: String {
            missing.isEmpty ? existing : (existing == "/" ? "" : existing) + "/" + missing.joined(separator: "/")
        }
    }

    /// Why a path cannot be resolved.
    public enum ResolveError: Error, Sendable, Equatable, CustomStringConvertible {
        case symlinkLoop(String)
        case notADirectory(String)
        case permissionDenied(String)
        /// A symlink not made by root (see `canonical`).
        case untrustedSymlink(String)

        public var description: String {
            switch self {
            case .symlinkLoop(let path):
                "Failed to resolve '\(path)': too many levels of symbolic links (a symlink loop); fix the link"
            case .notADirectory(let path):
                "Failed to resolve '\(path)': a path component is not a directory"
            case .permissionDenied(let path):
                "Failed to resolve '\(path)': permission denied on a directory in the path"
            case .untrustedSymlink(let path):
                "Failed to resolve '\(path)': a symlink on the way was not made by root (it, or its directory, belongs to or is writable by another user); it is not followed"
            }
        }
    }

    /// `serverPath` relative to a descriptor of the root, for `openat2(… RESOLVE_BENEATH)` and the `*at`
    /// calls: no leading `/`, and `.` for the root itself.
    public static func relative(_ serverPath: String) -> String {
        let trimmed = serverPath.drop { $0 == "/" }
        return trimmed.isEmpty ? "." : String(trimmed)
    }

    /// `serverPath` with the symlinks on its way resolved inside the root (what is missing kept as written),
    /// or `serverPath` itself when it cannot be resolved. Watchers that change files resolve a rule's path
    /// once at start-up, so an administrator's symlink (`/var/run` → `/run`) works, and then open everything
    /// below it without following any symlink.
    ///
    /// Only a symlink only root could have made is followed: owned by root, in a directory owned by root that
    /// no group or other user can write. A symlink someone else planted while Vigil was down (the log
    /// directory's owner replacing `alerts/` with a link to `/etc`) leaves the path as written, so every
    /// later open refuses it instead of changing files where it points.
    public func canonical(_ serverPath: String) -> String {
        guard let resolved = try? resolve(serverPath, trustedSymlinksOnly: true) else { return serverPath }
        let full = resolved.fullPath
        return full.isEmpty ? "/" : full
    }

    /// Resolves `serverPath` (absolute). `followFinal: false` leaves a symlink in the last component as is.
    public func resolve(_ serverPath: String, followFinal: Bool = true) throws(ResolveError) -> Resolution {
        try resolve(serverPath, followFinal: followFinal, trustedSymlinksOnly: false)
    }

    private func resolve(
        _ serverPath: String,
        followFinal: Bool = true,
        trustedSymlinksOnly: Bool
    ) throws(ResolveError) -> Resolution {
        var pending = Array(
            serverPath.split(separator: "/", omittingEmptySubsequences: true).map(String.init).reversed()
        )
        var current: [String] = []
        var links = 0
        var followed = false
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                if !current.isEmpty { current.removeLast() }
                continue
            }
            let candidate = current + [component]
            let host = hostPath("/" + candidate.joined(separator: "/"))
            var info = stat()
            if lstat(host, &info) != 0 {
                let code = errno
                if code == ENOENT {
                    return Resolution(
                        existing: "/" + current.joined(separator: "/"),
                        missing: [component] + pending.reversed().filter { $0 != "." },
                        followedSymlink: followed
                    )
                }
                if code == EACCES { throw .permissionDenied(serverPath) }
                if code == ENOTDIR { throw .notADirectory(serverPath) }
                throw .notADirectory(serverPath)
            }
            let type = info.st_mode & S_IFMT
            let isLast = pending.isEmpty
            if type == S_IFLNK && (!isLast || followFinal) {
                if trustedSymlinksOnly {
                    var parent = stat()
                    let parentHost = hostPath("/" + current.joined(separator: "/"))
                    guard info.st_uid == 0, lstat(parentHost, &parent) == 0, parent.st_uid == 0,
                        parent.st_mode & 0o022 == 0
                    else { throw .untrustedSymlink(serverPath) }
                }
                links += 1
                if links > 40 { throw .symlinkLoop(serverPath) }
                followed = true
                var buffer = [CChar](repeating: 0, count: 4097)
                let n = readlink(host, &buffer, 4096)
                if n < 0 { throw .notADirectory(serverPath) }
                let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if target.hasPrefix("/") { current = [] }
                let parts = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
                pending.append(contentsOf: parts.reversed())
                continue
            }
            if !isLast && type != S_IFDIR { throw .notADirectory(serverPath) }
            current = candidate
        }
        return Resolution(existing: "/" + current.joined(separator: "/"), missing: [], followedSymlink: followed)
    }
}
