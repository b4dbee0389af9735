import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An exclusive `flock` on `queue.lock` in the data directory, held while the
/// store is open: a second server on the same directory would otherwise take
/// the first one's ingests for crash leftovers and remove them.
struct DataDirectoryLock: Sendable {
    private let descriptor: Int32

    init(directory: String) throws(OfflineQueueError) {
        let path = directory + "/queue.lock"
        let descriptor = Self.openFile(path)
        guard descriptor >= 0 else {
            throw .unwritableDirectory("\(path): \(String(cString: strerror(errno)))")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            _ = Self.closeFile(descriptor)
            throw .unwritableDirectory("\(directory) is in use by another server (\(path) is locked)")
        }
        self.descriptor = descriptor
    }

    func unlock() {
        _ = Self.closeFile(descriptor)
    }

    private static func openFile(_ path: String) -> Int32 {
        open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    }

    private static func closeFile(_ descriptor: Int32) -> Int32 {
        close(descriptor)
    }
}
