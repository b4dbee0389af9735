import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where one body's kept bytes lie in the ``BodyLog``.
struct BodyLocation: Sendable, Equatable {
    var segment: Int
    var offset: Int
    var length: Int
}

/// The history's large bodies, each written once to the end of a segment file
/// (`inspector-bodies/00000001.bodies`, …) beside the database, whose rows
/// keep only where each body lies (docs/inspector.md, "History").
///
/// A body kept in a SQLite row is copied into the WAL, copied again into the
/// database at the checkpoint and read back to free its pages when the row
/// is evicted; here it is written once, and evicting it costs nothing until
/// a whole segment is dead, when the file is deleted. The history evicts
/// oldest first, so segments die in the order they were written and at most
/// about one segment's bytes on disk belong to evicted webhooks.
///
/// Every method does blocking file I/O: ``HistoryStore`` calls them on the
/// history's own thread, the one that runs its SQLite.
final class BodyLog: Sendable {
    static let directoryName = "inspector-bodies"
    private static let suffix = ".bodies"

    /// Bodies whose kept bytes reach this go to the log; shorter ones stay in
    /// their row, where SQLite stores them on the row's own page.
    static let minimumLength = 16 * 1024

    private struct Appender {
        var segment: Int
        var descriptor: CInt
        var length: Int
    }

    private struct State {
        /// The segment being appended to, once the first body arrives.
        var appender: Appender?
        /// The number the next new segment gets.
        var nextSegment: Int
    }

    let directory: String
    /// The segment files there when the log was opened, by number.
    let segmentsAtOpen: [Int]
    /// A segment takes bodies until it holds this many bytes; then the next body starts a new one.
    let segmentLimit: Int
    private let state: Mutex<State>

    /// A log in `directory` (created if missing) whose first new segment is numbered after every
    /// segment already there.
    init(directory: String, segmentLimit: Int) throws {
        self.directory = directory
        self.segmentLimit = segmentLimit
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw BodyLogError(operation: "create the directory \(directory)", code: errno)
        }
        self.segmentsAtOpen = Self.segments(in: directory)
        self.state = Mutex(State(nextSegment: (self.segmentsAtOpen.max() ?? 0) + 1))
    }

    /// The segment files present, by number.
    private static func segments(in directory: String) -> [Int] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var numbers: [Int] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasSuffix(Self.suffix), let number = Int(name.dropLast(Self.suffix.count)), number > 0 else { continue }
            numbers.append(number)
        }
        return numbers
    }

    private func path(segment: Int) -> String {
        let digits = String(segment)
        return self.directory + "/" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits + Self.suffix
    }

    /// The segment now taking bodies, if any: it is never removed.
    var currentSegment: Int? {
        self.state.withLock { $0.appender?.segment }
    }

    /// Appends each body and returns where it lies. On an error the segment
    /// being written is closed, so the next append starts a fresh one; bytes
    /// already written stay unreferenced until their segment is removed.
    func append(_ bodies: [ByteBuffer]) throws -> [BodyLocation] {
        try self.state.withLock { state in
            var locations: [BodyLocation] = []
            locations.reserveCapacity(bodies.count)
            do {
                for body in bodies {
                    var appender = try self.appender(&state)
                    try Self.write(body, to: appender.descriptor)
                    locations.append(BodyLocation(segment: appender.segment, offset: appender.length, length: body.readableBytes))
                    appender.length += body.readableBytes
                    state.appender = appender
                }
            } catch {
                if let appender = state.appender { closeDescriptor(appender.descriptor) }
                state.appender = nil
                throw error
            }
            return locations
        }
    }

    /// The open segment, or a new one when there is none or it is full.
    private func appender(_ state: inout State) throws -> Appender {
        if let appender = state.appender, appender.length < self.segmentLimit { return appender }
        if let appender = state.appender {
            closeDescriptor(appender.descriptor)
            state.appender = nil
        }
        let segment = state.nextSegment
        let path = self.path(segment: segment)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BodyLogError(operation: "create \(path)", code: errno) }
        state.nextSegment += 1
        let appender = Appender(segment: segment, descriptor: descriptor, length: 0)
        state.appender = appender
        return appender
    }

    private static func write(_ body: ByteBuffer, to descriptor: CInt) throws {
        try body.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let written = writeDescriptor(descriptor, bytes.baseAddress! + done, bytes.count - done)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw BodyLogError(operation: "write a body", code: errno)
                }
                done += written
            }
        }
    }

    /// The bytes at `location`. A body whose bytes are gone (its segment
    /// deleted by hand, or cut short by a power loss after its row was
    /// committed) reads as what is left, possibly nothing; the row's size
    /// then marks it truncated.
    func read(_ location: BodyLocation) -> ByteBuffer {
        let descriptor = open(self.path(segment: location.segment), O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return ByteBuffer() }
        defer { closeDescriptor(descriptor) }
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: location.length) { bytes in
            var done = 0
            while done < location.length {
                let count = pread(descriptor, bytes.baseAddress! + done, location.length - done, off_t(location.offset + done))
                if count < 0, errno == EINTR { continue }
                if count <= 0 { break }
                done += count
            }
            return done
        }
        return buffer
    }

    /// Deletes these segments' files, except the one being appended to.
    func remove(segments: some Sequence<Int>) {
        let current = self.currentSegment
        for segment in segments where segment != current {
            unlink(self.path(segment: segment))
        }
    }

    /// Closes the segment being appended to.
    func close() {
        self.state.withLock { state in
            if let appender = state.appender { closeDescriptor(appender.descriptor) }
            state.appender = nil
        }
    }
}

// The C calls under names of their own: inside ``BodyLog`` its own `close()` would hide them.
private func closeDescriptor(_ descriptor: CInt) {
    _ = close(descriptor)
}

private func writeDescriptor(_ descriptor: CInt, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}

/// A file operation of the ``BodyLog`` failed.
struct BodyLogError: Error, CustomStringConvertible {
    var operation: String
    var code: CInt

    var description: String {
        "could not \(self.operation): \(String(cString: strerror(self.code)))"
    }
}
