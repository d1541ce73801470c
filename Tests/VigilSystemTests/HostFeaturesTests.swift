import SystemPackage
import Testing

@testable import VigilSystem

#if canImport(Glibc)
import Glibc
#endif

/// Host feature detection against this host's own /proc and /run.
@Suite struct HostFeaturesTests {
    @Test func kernelReleaseMatchesOsrelease() {
        let release = KernelRelease.current()
        let osrelease = ProcFile.readText("/proc/sys/kernel/osrelease")?.split(separator: "\n").first.map(String.init)
        #expect(release.release == osrelease)
        #expect(release.major >= 3)
    }

    @Test(arguments: [
        ("6.1.0-18-amd64", 6, 1, 0),
        ("6.18.44-fc-v669", 6, 18, 44),
        ("5.15", 5, 15, 0),
        ("4.19.0+", 4, 19, 0),
        ("weird", 0, 0, 0),
    ])
    func kernelReleaseParses(release: String, major: Int, minor: Int, patch: Int) {
        let parsed = KernelRelease(release)
        #expect(parsed.major == major && parsed.minor == minor && parsed.patch == patch)
        #expect(parsed.release == release && parsed.description == "\(major).\(minor).\(patch)")
    }

    @Test func systemdDetectionFollowsRunSystemdSystem() {
        var info = stat()
        let isDirectory = stat("/run/systemd/system", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        #expect(HostFeatures.systemdIsRunning == isDirectory)
        // systemd is PID 1 exactly when it created that directory; /proc/1/comm says who PID 1 is.
        if ProcFile.readText("/proc/1/comm") == "systemd\n" { #expect(HostFeatures.systemdIsRunning) }
    }

    @Test func inotifyLimitsAndPidMax() {
        let limits = HostFeatures.inotifyLimits()
        #expect(limits.maxUserWatches == Inotify.maximumUserWatches())
        #expect((limits.maxUserWatches ?? 0) > 0)
        #expect((limits.maxUserInstances ?? 0) > 0)
        #expect((limits.maxQueuedEvents ?? 0) > 0)
        #expect((HostFeatures.pidMax() ?? 0) >= 301)
        #expect(HostFeatures.inotifyLimits(root: "/nonexistent") == .init())
    }

    @Test(arguments: HostFeatures.PressureResource.allCases)
    func pressureAvailabilityAndTriggers(resource: HostFeatures.PressureResource) {
        let readable = ProcFile.readText("/proc/pressure/\(resource.rawValue)")?.hasPrefix("some ") ?? false
        #expect(HostFeatures.pressureAvailable(resource) == readable)
        let triggers = HostFeatures.pressureTriggers(resource)
        guard readable else {
            #expect(triggers != .anyWindow && triggers != .twoSecondMultiples)
            return
        }
        // Any window needs CAP_SYS_RESOURCE; without it only whole 2 s windows (6.5+) or none (older).
        if Capabilities.has(.sysResource) {
            #expect(triggers == .anyWindow)
        } else {
            #expect(triggers != .anyWindow, "a 1 s window was accepted without CAP_SYS_RESOURCE")
        }
    }

    @Test func pressureOnAMissingRootIsUnavailable() {
        #expect(!HostFeatures.pressureAvailable(.memory, root: "/nonexistent"))
        #expect(HostFeatures.pressureTriggers(.memory, root: "/nonexistent") == .unavailable(.noSuchFileOrDirectory))
    }

    @Test func namespacesOfThisProcess() throws {
        for kind in Namespaces.Kind.allCases {
            let inode = try Namespaces.inode(kind).get()
            var buffer = [CChar](repeating: 0, count: 64)
            let n = readlink("/proc/self/ns/\(kind.rawValue)", &buffer, 63)
            let text = String(decoding: buffer[0..<max(n, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(text == "\(kind.rawValue):[\(inode)]")
        }
        // Kernel threads are visible only from the initial pid namespace.
        if ProcFS().stat(2)?.comm == "kthreadd" { #expect(Namespaces.isInitial(.pid) == true) }
        #expect(Namespaces.initialInode(.net) == nil)
        #expect(Namespaces.inode(.pid, of: "999999999") == .failure(.noSuchFileOrDirectory))
    }
}
