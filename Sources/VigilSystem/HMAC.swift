import CVigilLinux

/// HMAC-SHA256 (RFC 2104, FIPS 198-1) through libcrypto's one-shot `HMAC(EVP_sha256(), …)` (see
/// `man 3 HMAC`): webhook receivers check `X-Vigil-Signature: sha256=<hex>` with the same key to know that
/// an alert came from this host and was not altered. libcrypto rather than Swift code: it is the
/// implementation receivers themselves trust, constant-time where it matters, and already on every host
/// that has libcurl with TLS.
public enum HMAC {
    /// The 32-byte HMAC-SHA256 of `message` under `key` (any length; keys over 64 bytes are hashed first, as
    /// RFC 2104 says).
    public static func sha256(key: [UInt8], message: some Collection<UInt8>) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: 32)
        let status = key.withUnsafeBytes { keyBytes in
            digest.withUnsafeMutableBufferPointer { out in
                let direct = message.withContiguousStorageIfAvailable { messageBytes in
                    sign(key: keyBytes, message: UnsafeRawBufferPointer(messageBytes), into: out)
                }
                if let direct { return direct }
                let copy = Array(message)
                return copy.withUnsafeBytes { sign(key: keyBytes, message: $0, into: out) }
            }
        }
        // Fails only for a key longer than INT_MAX bytes, which no secret file can hold (it is read whole).
        precondition(status == 1, "HMAC.sha256: libcrypto's HMAC(EVP_sha256()) failed")
        return digest
    }

    /// `bytes` as lowercase hexadecimal, two digits a byte (the form signature headers use).
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Calls the shim; returns its status (1 on success).
    private static func sign(
        key: UnsafeRawBufferPointer,
        message: UnsafeRawBufferPointer,
        into out: UnsafeMutableBufferPointer<UInt8>
    ) -> Int32 {
        CVigilLinux_hmac_sha256(key.baseAddress, key.count, message.baseAddress, message.count, out.baseAddress)
    }
}
