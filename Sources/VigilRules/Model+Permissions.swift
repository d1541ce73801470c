// MARK: Mode and owner rules

/// `file:` rules with `mode:`, `owner:` or `group:` (and optionally `recursive: true`): the mode and owner
/// the files must have. With `then: [chmod, chown]` (with or without `alert`) drift is put right at once
/// (enforce); with `then: [alert]` it is only reported (audit), as a state: firing while the file is wrong,
/// resolved when it is right again.
///
/// ```yaml
/// - rule: analytics-log-tree
///   file: /var/log/analytics
///   recursive: true
///   owner: analytics
///   group: log-readers
///   dir_mode: "0750"
///   file_mode: "0640"
///   then: [alert, chmod, chown]
/// ```
public struct PermissionSubject: Sendable, Equatable {
    /// `file:`: one path or a list; the last component may be a glob. With `recursive`, each path that is a
    /// directory stands for itself and everything below it, including what is created later.
    public var paths: [PathPattern]
    /// `recursive: true` (or a path written `DIR/**`).
    public var recursive: Bool
    /// Permission bits (with setuid/setgid/sticky) regular files and everything that is not a directory must
    /// have: `file_mode:`, else `mode:`. nil: not checked.
    public var fileMode: UInt32?
    /// Permission bits directories must have: `dir_mode:`, else `mode:`. nil: not checked.
    public var directoryMode: UInt32?
    /// `owner:`: a user name (resolved from the root's `etc/passwd` at start-up) or a uid.
    public var owner: UserReference?
    /// `group:`: a group name (resolved from the root's `etc/group` at start-up) or a gid.
    public var group: UserReference?

    public init(
        paths: [PathPattern],
        recursive: Bool,
        fileMode: UInt32?,
        directoryMode: UInt32?,
        owner: UserReference?,
        group: UserReference?
    ) {
        self.paths = paths
        self.recursive = recursive
        self.fileMode = fileMode
        self.directoryMode = directoryMode
        self.owner = owner
        self.group = group
    }
}

// MARK: Rotation rules

/// `rotate:` rules: an event-driven logrotate. A file is rotated the moment it crosses `size:` (checked on
/// every write the kernel reports) or an `every:` boundary (a timer set to it): renamed with a date
/// extension, the writer told (`postrotate:`), the rotation compressed with zlib on a worker thread, old
/// rotations kept or deleted, and the archive directory swept.
///
/// ```yaml
/// - rule: analytics-log-rotation
///   rotate: /var/log/analytics/unified/*.log
///   size: 100M
///   every: daily
///   keep: 14
///   olddir: { path: /var/log/archive, mode: "0750", owner: analytics, group: analytics }
///   create: { mode: "0640", owner: analytics, group: log-readers }
///   delaycompress: true
///   postrotate: { unit: analytics-service, signal: HUP, to: { exe: /usr/bin/analytics-service } }
///   sweep: { chmod: "0600", after: 30d, delete_after: 90d }
/// ```
public struct RotateSubject: Sendable, Equatable {
    /// `rotate:`: one path or a list; the last component may be a glob.
    public var paths: [PathPattern]
    /// `size:` in bytes (`100M`, `1G`, `512k`, or a number of bytes): rotate when the file is at least this big.
    public var maximumBytes: UInt64?
    /// `every:`: rotate at each boundary of the period (local time), if the file is not empty.
    public var interval: RotationInterval?
    /// `keep:`: how many rotations of each log to keep (older ones are deleted). Default 14.
    public var keep: Int
    /// `max_age:` in milliseconds: rotations older than this are deleted, whatever `keep` says.
    public var maximumAgeMilliseconds: Int?
    /// `dateext:`: strftime(3) format of the suffix appended to the rotated name, default `-%Y%m%d`; a
    /// counter (`.1`, `.2`, …) is added when the name is already taken (several rotations in a day).
    public var dateFormat: String
    /// `olddir:`: where rotations go (a directory on the same filesystem), with its own mode and owner.
    public var oldDirectory: ArchiveDirectory?
    /// `compress:` (default true): gzip rotations with zlib.
    public var compress: Bool
    /// `compress_level:` 1–9 (default 6, as `gzip -6`).
    public var compressLevel: Int32
    /// `delaycompress:`: leave the newest rotation uncompressed until the next rotation (for writers that
    /// keep writing to the old file until told to reopen).
    public var delayCompress: Bool
    /// `copytruncate:`: copy the file and truncate it in place instead of renaming it (for writers that
    /// cannot reopen their log; lines written between the copy and the truncation are lost).
    public var copyTruncate: Bool
    /// `if_empty:` (default false, logrotate's `notifempty`): rotate empty files too.
    public var rotateEmpty: Bool
    /// `create:`: after renaming, create a new empty file under the name with this mode and owner.
    public var create: FileAttributes?
    /// `postrotate:`: how the writer is told to reopen its log (a unit to reload, a command, or a signal to
    /// the processes `to:` selects), run once per rotation.
    public var postRotate: ServiceAction?
    /// `sweep:`: what happens to the compressed rotations (`*.gz`) in the rotations' directory as they age.
    public var sweep: ArchiveSweep?

    public init(
        paths: [PathPattern],
        maximumBytes: UInt64? = nil,
        interval: RotationInterval? = nil,
        keep: Int = 14,
        maximumAgeMilliseconds: Int? = nil,
        dateFormat: String = "-%Y%m%d",
        oldDirectory: ArchiveDirectory? = nil,
        compress: Bool = true,
        compressLevel: Int32 = 6,
        delayCompress: Bool = false,
        copyTruncate: Bool = false,
        rotateEmpty: Bool = false,
        create: FileAttributes? = nil,
        postRotate: ServiceAction? = nil,
        sweep: ArchiveSweep? = nil
    ) {
        self.paths = paths
        self.maximumBytes = maximumBytes
        self.interval = interval
        self.keep = keep
        self.maximumAgeMilliseconds = maximumAgeMilliseconds
        self.dateFormat = dateFormat
        self.oldDirectory = oldDirectory
        self.compress = compress
        self.compressLevel = compressLevel
        self.delayCompress = delayCompress
        self.copyTruncate = copyTruncate
        self.rotateEmpty = rotateEmpty
        self.create = create
        self.postRotate = postRotate
        self.sweep = sweep
    }
}

/// `every:` of a rotation rule: the file is rotated when the local clock crosses the period's boundary.
public enum RotationInterval: String, Sendable, Equatable, CaseIterable {
    /// At the start of every hour.
    case hourly
    /// At local midnight.
    case daily
    /// At local midnight between Sunday and Monday.
    case weekly
    /// At local midnight on the first of the month.
    case monthly
}

/// Mode and owner for a file or directory Vigil creates or keeps (`create:`, `olddir:`). nil: unchanged
/// (for `create:`, the old file's mode and owner).
public struct FileAttributes: Sendable, Equatable {
    public var mode: UInt32?
    public var owner: UserReference?
    public var group: UserReference?

    public init(mode: UInt32? = nil, owner: UserReference? = nil, group: UserReference? = nil) {
        self.mode = mode
        self.owner = owner
        self.group = group
    }
}

/// `olddir:`: the directory rotations are moved to (server path), created when missing, with `attributes`.
public struct ArchiveDirectory: Sendable, Equatable {
    public var path: String
    public var attributes: FileAttributes

    public init(path: String, attributes: FileAttributes = FileAttributes()) {
        self.path = path
        self.attributes = attributes
    }
}

/// `sweep:`: compressed rotations (`*.gz`) in the rotation directory older than `chmodAfterMilliseconds`
/// get `mode`; older than `deleteAfterMilliseconds` are deleted (the seed's `find -mtime +30 -exec chmod
/// 600` and `find -mtime +90 -delete`). Ages are from each file's modification time; checked after every
/// rotation and at start-up, and daily.
public struct ArchiveSweep: Sendable, Equatable {
    public var mode: UInt32?
    public var chmodAfterMilliseconds: Int?
    public var deleteAfterMilliseconds: Int?

    public init(mode: UInt32? = nil, chmodAfterMilliseconds: Int? = nil, deleteAfterMilliseconds: Int? = nil) {
        self.mode = mode
        self.chmodAfterMilliseconds = chmodAfterMilliseconds
        self.deleteAfterMilliseconds = deleteAfterMilliseconds
    }
}
