import Testing
import VigilHarness
import VigilReceivers
import VigilSystem
import VigilTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `HTTPClient` against real sockets on 127.0.0.1: the Python webhook receiver, a listener that never
/// answers, and a port nobody listens on. `HMAC` against RFC 4231's test vectors.
@Suite(.timeLimit(.minutes(1)))
struct HTTPClientTests {
    @Test func postAndGetReachTheReceiverOverOneConnection() throws {
        let tree = TempTree("http-client")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        defer { receiver.stop() }
        let client = HTTPClient(timeoutMilliseconds: 5000, userAgent: "vigil-test")
        defer { client.close() }

        // Over 1 KiB, where curl would otherwise send `Expect: 100-continue` and wait.
        let body = Array(("{\"message\":\"" + String(repeating: "x", count: 2000) + "\"}").utf8)
        let posted = client.post(url: receiver.url + "/hook?token=secret", headers: [("X-Test", "one")], body: body)
        let postResponse = try posted.get()
        #expect(postResponse.status == 200)
        #expect(postResponse.text == "{\"ok\":true}")

        let fetched = try client.get(url: receiver.url + "/status/204").get()
        #expect(fetched.status == 204)

        #expect(receiver.waitForRequests(count: 2, timeoutSeconds: 5))
        let requests = receiver.requests()
        try #require(requests.count == 2)
        #expect(requests[0].method == "POST")
        #expect(requests[0].path == "/hook?token=secret")
        #expect(requests[0].body == String(decoding: body, as: UTF8.self))
        #expect(requests[0].headers["x-test"] == "one")
        #expect(requests[0].headers["user-agent"] == "vigil-test")
        #expect(requests[0].headers["expect"] == nil)
        #expect(requests[1].method == "GET")
        #expect(requests[1].path == "/status/204")
    }

    @Test func redirectsAreReportedNotFollowed() throws {
        let tree = TempTree("http-redirect")
        defer { tree.remove() }
        let receiver = WebhookReceiver()
        try receiver.start(directory: tree.root)
        defer { receiver.stop() }
        let client = HTTPClient(timeoutMilliseconds: 5000)
        defer { client.close() }

        let response = try client.post(url: receiver.url + "/status/301", headers: [], body: Array("{}".utf8)).get()
        #expect(response.status == 301)
        #expect(response.redirectURL == receiver.url + "/moved")
        #expect(receiver.requests().map(\.path) == ["/status/301"])
    }

    @Test func aServerThatNeverAnswersTimesOut() throws {
        // Listening, so the kernel completes the connection, but never accepted or answered.
        let listener = try #require(SilentListener())
        defer { listener.close() }
        let client = HTTPClient(timeoutMilliseconds: 300)
        defer { client.close() }

        let started = Clock.monotonicNanoseconds()
        let result = client.post(url: "http://127.0.0.1:\(listener.port)/hook", headers: [], body: Array("{}".utf8))
        let elapsed = (Clock.monotonicNanoseconds() - started) / 1_000_000
        guard case .failure(let error) = result else {
            Issue.record("a server that never answers returned \(result)")
            return
        }
        #expect(error.isTimeout)
        #expect(!error.isConnect)
        #expect(elapsed >= 250 && elapsed < 3000)
        #expect(error.description.hasPrefix("POST 'http://127.0.0.1:\(listener.port)/hook': "))
    }

    @Test func aClosedPortIsAConnectError() throws {
        // Bound but not listening: connecting to it is refused, and no other test can take the port meanwhile.
        let bound = try #require(SilentListener(listen: false))
        defer { bound.close() }
        let client = HTTPClient(timeoutMilliseconds: 2000)
        defer { client.close() }

        let result = client.get(url: "http://user:password@127.0.0.1:\(bound.port)/x?key=secret")
        guard case .failure(let error) = result else {
            Issue.record("a refused connection returned \(result)")
            return
        }
        #expect(error.isConnect)
        #expect(!error.isTimeout)
        #expect(error.url == "http://127.0.0.1:\(bound.port)/x?…")
        #expect(!error.description.contains("password"))
        #expect(!error.description.contains("secret"))
    }

    @Test func otherSchemesAreRefused() {
        let client = HTTPClient(timeoutMilliseconds: 1000)
        defer { client.close() }
        guard case .failure(let error) = client.get(url: "file:///etc/passwd") else {
            Issue.record("a file:// URL was fetched")
            return
        }
        #expect(!error.isConnect && !error.isTimeout)
    }

    @Test func headersWithLineBreaksAreRefused() {
        let client = HTTPClient(timeoutMilliseconds: 1000)
        defer { client.close() }
        let result = client.post(url: "http://127.0.0.1:9/", headers: [("X-A", "b\r\nX-Injected: 1")], body: [])
        guard case .failure(let error) = result else {
            Issue.record("a header with CR LF was sent")
            return
        }
        #expect(error.description.contains("'X-A'"))
    }

    @Test func redactionDropsUserinfoQueryAndFragment() {
        #expect(HTTPClient.redacted("https://u:p@hooks.example.com/a/b?token=1#x") == "https://hooks.example.com/a/b?…")
        #expect(HTTPClient.redacted("http://127.0.0.1:9093") == "http://127.0.0.1:9093")
        #expect(HTTPClient.redacted("http://host/path@notuser") == "http://host/path@notuser")
    }

    /// RFC 4231 section 4: test cases 1-4, 6 and 7 (5 truncates the output, which HMAC.sha256 does not).
    @Test(arguments: [
        (
            hex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), Array("Hi There".utf8),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        ),
        (
            Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        ),
        (
            [UInt8](repeating: 0xaa, count: 20), [UInt8](repeating: 0xdd, count: 50),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        ),
        (
            hex("0102030405060708090a0b0c0d0e0f10111213141516171819"), [UInt8](repeating: 0xcd, count: 50),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
        ),
        (
            [UInt8](repeating: 0xaa, count: 131),
            Array("Test Using Larger Than Block-Size Key - Hash Key First".utf8),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        ),
        (
            [UInt8](repeating: 0xaa, count: 131),
            Array(
                ("This is a test using a larger than block-size key and a larger than block-size data. "
                    + "The key needs to be hashed before being used by the HMAC algorithm.").utf8
            ),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"
        ),
    ])
    func hmacSHA256MatchesRFC4231(key: [UInt8], message: [UInt8], expected: String) {
        #expect(HMAC.hex(HMAC.sha256(key: key, message: message)) == expected)
        // A non-contiguous collection takes the copying path and gives the same digest.
        #expect(HMAC.hex(HMAC.sha256(key: key, message: message.lazy.map { $0 })) == expected)
    }
}

/// Bytes from hexadecimal digits (test vectors).
private func hex(_ text: String) -> [UInt8] {
    let digits = Array(text.utf8)
    return stride(from: 0, to: digits.count - 1, by: 2).map { index in
        let pair = String(decoding: digits[index..<index + 2], as: UTF8.self)
        return UInt8(pair, radix: 16) ?? 0
    }
}

/// A TCP socket on 127.0.0.1 with an ephemeral port, bound and (optionally) listening, never accepting:
/// connections to it complete in the kernel's backlog and then hear nothing; without `listen`, connecting
/// is refused.
private final class SilentListener {
    let fd: Int32
    let port: Int

    init?(listen shouldListen: Bool = true) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(fd, generic, length) == 0 && getsockname(fd, generic, &length) == 0
            }
        }
        guard ready, !shouldListen || listen(fd, 16) == 0 else {
            Glibc.close(fd)
            return nil
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        Glibc.close(fd)
    }
}
