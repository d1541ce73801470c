import Testing
import VigilCore
import VigilTestSupport

/// The decoder plays against bytes built like the kernel's (T1).
@Suite struct InotifyDecoderTests {
    private func decode(_ bytes: [UInt8]) throws(InotifyDecoder.DecodeError) -> [(Int32, UInt32, UInt32, String)] {
        var out: [(Int32, UInt32, UInt32, String)] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        defer { buffer.deallocate() }
        buffer.copyBytes(from: bytes)
        _ = try InotifyDecoder.decode(UnsafeRawBufferPointer(rebasing: buffer[0..<bytes.count]), readTime: 7) {
            record in
            out.append((record.watch, record.mask, record.cookie, record.nameString))
        }
        return out
    }

    @Test func decodesPaddedNamesAndDirectoryEvents() throws {
        var k = KernelBytes()
        k.inotify(wd: 1, mask: InotifyMask.closedAfterWriting, name: "upload-service.conf")
        k.inotify(wd: 1, mask: InotifyMask.movedFrom, cookie: 42, name: "upload-service.conf")
        k.inotify(wd: 1, mask: InotifyMask.movedTo, cookie: 42, name: "upload-service.conf~")
        k.inotify(wd: 2, mask: InotifyMask.selfDeleted)
        k.inotify(wd: 3, mask: InotifyMask.created, name: "x", pad: false)
        let events = try decode(k.bytes)
        #expect(events.count == 5)
        #expect(
            events[0].0 == 1 && events[0].1 == InotifyMask.closedAfterWriting && events[0].3 == "upload-service.conf"
        )
        #expect(events[1].2 == 42 && events[2].3 == "upload-service.conf~")
        #expect(events[3].0 == 2 && events[3].3 == "")
        #expect(events[4].3 == "x")
    }

    @Test func overflowRecordDecodes() throws {
        var k = KernelBytes()
        k.overflow()
        let events = try decode(k.bytes)
        #expect(events.count == 1 && events[0].0 == -1 && events[0].1 & InotifyMask.queueOverflow != 0)
    }

    @Test func truncatedBufferStopsWithItsOffset() {
        var k = KernelBytes()
        k.inotify(wd: 1, mask: InotifyMask.created, name: "a")
        k.inotify(wd: 1, mask: InotifyMask.created, name: "abcdefghijklmnopqrstuvwxyz")
        #expect(throws: InotifyDecoder.DecodeError.truncated(offset: 32)) { try decode(k.truncated(to: 40)) }
        #expect(throws: InotifyDecoder.DecodeError.truncated(offset: 32)) { try decode(k.truncated(to: 60)) }
    }

    @Test func longestNameFitsAndNULTerminates() throws {
        let name = String(repeating: "n", count: 255)
        var k = KernelBytes()
        k.inotify(wd: 1, mask: InotifyMask.created, name: name)
        var terminated = false
        _ = try k.bytes.withUnsafeBytes { raw in
            try InotifyDecoder.decode(raw, readTime: 0) { record in
                record.withName { bytes, cString in
                    terminated = bytes.count == 255 && cString[255] == 0
                }
            }
        }
        #expect(terminated)
    }
}
