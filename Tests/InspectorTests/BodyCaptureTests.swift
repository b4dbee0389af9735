import Crypto
import Foundation
import NIOCore
import Testing

@testable import Inspector

@Suite struct BodyCaptureTests {
    @Test func aBodyAboveTheLimitKeepsItsFirstBytesItsSizeAndItsHash() {
        var capture = BodyCapture(limit: 1_000)
        var whole = [UInt8]()
        for index in 0..<50 {
            let chunk = [UInt8](repeating: UInt8(index), count: 333)
            whole += chunk
            capture.append(ByteBuffer(bytes: chunk))
        }
        let body = capture.finish()
        #expect(body.size == 50 * 333)
        #expect(body.truncated)
        #expect(Array(body.bytes.readableBytesView) == Array(whole.prefix(1_000)))
        #expect(body.sha256 == SHA256.hash(data: whole).map { String(format: "%02x", $0) }.joined())
    }

    @Test func aBodyWithinTheLimitIsKeptWhole() {
        var capture = BodyCapture(limit: 1_000)
        capture.append(ByteBuffer(string: "abc"))
        capture.append(ByteBuffer(string: "def"))
        let body = capture.finish()
        #expect(String(buffer: body.bytes) == "abcdef")
        #expect(!body.truncated)
        // Not hashed on the data path; the digest comes from the kept bytes when asked for.
        #expect(body.sha256 == "")
        #expect(body.withDigest().sha256 == "bef57ec7f53a6d40beb640a780a639c83bc29ac8a9816f1fc6c5c6dcd93c4721")
    }

    @Test(arguments: [nil, 0, 10, 2_000, 1_000_000])
    func aDeclaredLengthThatIsWrongChangesNothingKept(_ expected: Int?) {
        var capture = BodyCapture(limit: 1_000, expected: expected)
        let whole = (0..<2_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        capture.append(ByteBuffer(bytes: whole[..<300]))
        capture.append(ByteBuffer(bytes: whole[300...]))
        let body = capture.finish()
        #expect(body.size == 2_000 && body.truncated)
        #expect(Array(body.bytes.readableBytesView) == Array(whole.prefix(1_000)))
        #expect(body.sha256 == SHA256.hash(data: whole).map { String(format: "%02x", $0) }.joined())
    }

    @Test func theDeclaredLengthIsReadOnlyFromOneNumericContentLength() {
        #expect(BodyCapture.declaredLength([HeaderField("content-LENGTH", "42")]) == 42)
        #expect(BodyCapture.declaredLength([HeaderField("Content-Type", "text/plain")]) == nil)
        #expect(BodyCapture.declaredLength([HeaderField("Content-Length", "4x")]) == nil)
        #expect(BodyCapture.declaredLength([HeaderField("Content-Length", "-1")]) == nil)
        #expect(BodyCapture.declaredLength([HeaderField("Content-Length", "1"), HeaderField("Content-Length", "1")]) == nil)
    }

    @Test(arguments: [999, 1_000, 1_001, 1_500, 3_000])
    func theHashCoversTheWholeBodyWhereverTheLimitFallsInAChunk(_ size: Int) {
        var capture = BodyCapture(limit: 1_000)
        let whole = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        // Chunks of 700: the limit falls inside the second.
        var start = 0
        while start < whole.count {
            capture.append(ByteBuffer(bytes: whole[start..<min(start + 700, whole.count)]))
            start += 700
        }
        let body = capture.finish().withDigest()
        #expect(body.size == size)
        #expect(body.truncated == (size > 1_000))
        #expect(Array(body.bytes.readableBytesView) == Array(whole.prefix(1_000)))
        #expect(body.sha256 == SHA256.hash(data: whole).map { String(format: "%02x", $0) }.joined())
    }

    /// Large chunks are held and copied later (`settle()`); small ones after a held one are held
    /// too, to keep the order; past `maxHeld` or the limit, everything is copied. Whatever the mix,
    /// the kept bytes, size and hash are those of the body.
    @Test(arguments: [
        [5_000, 100, 6_000],
        [100, 5_000, 100, 5_000],
        [4_096, 4_096, 4_096, 4_096, 4_096],
        [16_384, 16_384, 16_384, 16_384, 16_384],
        Array(repeating: 4_096, count: 20),
        [60_000, 5_000, 100],
        [100, 70_000],
    ])
    func heldChunksKeepTheBodysBytesOrderAndHash(_ sizes: [Int]) {
        let limit = 65_536
        var capture = BodyCapture(limit: limit, expected: sizes.reduce(0, +))
        var whole = [UInt8]()
        for (index, size) in sizes.enumerated() {
            let chunk = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ index) }
            whole += chunk
            var buffer = ByteBuffer(bytes: chunk)
            capture.append(buffer)
            // The data path may go on with its own buffer: the capture's held copy is unaffected.
            buffer.setInteger(UInt8(0xFF), at: buffer.readerIndex)
            #expect(capture.size == whole.count)
            #expect(capture.keptBytes == min(whole.count, limit))
        }
        var settled = capture
        settled.settle()
        for body in [capture.finish(), settled.finish()] {
            let complete = body.withDigest()
            #expect(complete.size == whole.count)
            #expect(complete.truncated == (whole.count > limit))
            #expect(Array(complete.bytes.readableBytesView) == Array(whole.prefix(limit)))
            #expect(complete.sha256 == SHA256.hash(data: whole).map { String(format: "%02x", $0) }.joined())
        }
    }

    @Test func anEmptyBodyHasTheEmptyHash() {
        #expect(CapturedBody.empty.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(CapturedBody.empty.size == 0)
    }
}
