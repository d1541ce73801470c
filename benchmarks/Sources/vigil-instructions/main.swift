// Runs one of Vigil's hot paths K times over the prepared input of the HotPath benchmarks, for
// `valgrind --tool=callgrind` (`benchmarks/instructions`): the instruction count of a run with 2K minus
// that of a run with K, divided by K × 1,000 events, is instructions per event with start-up removed.
//
//     vigil-instructions PATH K      PATH one of the names below; K iterations of 1,000 events each
import HotPathFixtures

#if canImport(Glibc)
import Glibc
#endif

/// The paths, in the order `benchmarks/instructions` reports them, with what one event is.
let paths: [(name: String, event: String)] = [
    ("decode-and-ring", "inotify record decoded, pushed and popped"),
    ("proc-decode", "proc connector message decoded"),
    ("daemon-unrelated-file-events", "file event read, decoded and dropped by the in-process daemon"),
    ("log-match-1000-rules", "log line matched against 1,000 patterns"),
    ("config-parse-and-judge", "config file parsed and judged"),
    ("secret-mask-clean-lines", "clean log line masked"),
    ("alert-json-encode", "alert record encoded as JSON"),
]

/// Prints `message` to stderr and exits with status 2.
func fail(_ message: String) -> Never {
    let line = Array("vigil-instructions: \(message)\n".utf8)
    _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    exit(2)
}

let arguments = CommandLine.arguments
if arguments.count == 2 && arguments[1] == "--list" {
    for path in paths { print("\(path.name)\t\(path.event)") }
    exit(0)
}
guard arguments.count == 3, let iterations = Int(arguments[2]), iterations >= 0 else {
    fail("usage: vigil-instructions PATH K (K ≥ 0 iterations of \(eventsPerIteration) events), or --list")
}
let name = arguments[1]
var checksum = 0
do {
    switch name {
    case "decode-and-ring":
        let fixture = DecodeFixture()
        for _ in 0..<iterations { fixture.runOnce() }
    case "proc-decode":
        let fixture = ProcDecodeFixture()
        for _ in 0..<iterations { fixture.runOnce() }
    case "daemon-unrelated-file-events":
        let fixture = try PipelineFixture()
        defer { fixture.close() }
        for _ in 0..<iterations { fixture.generateSiblingEvents(eventsPerIteration) }
    case "log-match-1000-rules":
        let fixture = try LogLineFixture()
        for _ in 0..<iterations { checksum &+= fixture.matchOnce() }
    case "config-parse-and-judge":
        let fixture = try ConfigFixture()
        for _ in 0..<iterations { checksum &+= fixture.runOnce() }
    case "secret-mask-clean-lines":
        let fixture = try LogLineFixture()
        for _ in 0..<iterations { checksum &+= fixture.maskOnce() }
    case "alert-json-encode":
        let fixture = AlertFixture()
        for _ in 0..<iterations { checksum &+= fixture.runOnce() }
    default:
        fail("unknown path '\(name)'; expected one of: \(paths.map(\.name).joined(separator: ", "))")
    }
} catch {
    fail("\(name): \(error)")
}
opaqueSink(checksum)
