/// The inotify event bits Vigil uses, spelled out (N1). See `man 7 inotify`.
public enum InotifyMask {
    /// File was modified. The corresponding C constant is `IN_MODIFY`.
    public static let modified: UInt32 = 0x0000_0002
    /// Metadata (mode, owner, timestamps, link count) changed. The corresponding C constant is `IN_ATTRIB`.
    public static let attributesChanged: UInt32 = 0x0000_0004
    /// A file opened for writing was closed. The corresponding C constant is `IN_CLOSE_WRITE`.
    public static let closedAfterWriting: UInt32 = 0x0000_0008
    /// A name was moved out of the directory. The corresponding C constant is `IN_MOVED_FROM`.
    public static let movedFrom: UInt32 = 0x0000_0040
    /// A name was moved into the directory. The corresponding C constant is `IN_MOVED_TO`.
    public static let movedTo: UInt32 = 0x0000_0080
    /// A name was created in the directory. The corresponding C constant is `IN_CREATE`.
    public static let created: UInt32 = 0x0000_0100
    /// A name was deleted from the directory. The corresponding C constant is `IN_DELETE`.
    public static let deleted: UInt32 = 0x0000_0200
    /// The watched directory itself was deleted. The corresponding C constant is `IN_DELETE_SELF`.
    public static let selfDeleted: UInt32 = 0x0000_0400
    /// The watched directory itself was moved. The corresponding C constant is `IN_MOVE_SELF`.
    public static let selfMoved: UInt32 = 0x0000_0800
    /// The filesystem holding the watch was unmounted. The corresponding C constant is `IN_UNMOUNT`.
    public static let unmounted: UInt32 = 0x0000_2000
    /// The kernel's event queue overflowed: events were lost. The corresponding C constant is `IN_Q_OVERFLOW`.
    public static let queueOverflow: UInt32 = 0x0000_4000
    /// The watch was removed (explicitly, or because its directory went away). `IN_IGNORED`.
    public static let watchRemoved: UInt32 = 0x0000_8000
    /// Watch only if the path is a directory. The corresponding C constant is `IN_ONLYDIR`.
    public static let onlyDirectory: UInt32 = 0x0100_0000
    /// Do not follow a symlink at the watched path. The corresponding C constant is `IN_DONT_FOLLOW`.
    public static let dontFollow: UInt32 = 0x0200_0000
    /// No events for children after they were unlinked. The corresponding C constant is `IN_EXCL_UNLINK`.
    public static let excludeUnlinked: UInt32 = 0x0400_0000
    /// The subject of the event is a directory. The corresponding C constant is `IN_ISDIR`.
    public static let isDirectory: UInt32 = 0x4000_0000

    /// Events after which a file's content is complete and worth reading: closed after writing, renamed
    /// into place, or created (a link, a symlink, or a new file whose writer the read lease detects).
    public static let contentSettled: UInt32 = closedAfterWriting | movedTo | created
    /// Events after which a name may no longer exist.
    public static let nameGone: UInt32 = movedFrom | deleted
    /// Events that end or invalidate a directory watch.
    public static let watchEnded: UInt32 = selfDeleted | selfMoved | watchRemoved | unmounted
    /// What Vigil asks for on a directory that holds watched files.
    public static let directoryWatch: UInt32 =
        attributesChanged | closedAfterWriting | movedFrom | movedTo | created | deleted | selfDeleted | selfMoved
        | onlyDirectory | dontFollow | excludeUnlinked
}
