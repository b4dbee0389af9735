import NIOCore

/// What a store does for an ingest; the ingest itself only cuts the body into
/// chunks of ``chunkSize`` bytes.
protocol IngestBackend: Sendable {
    /// Checks (and reserves) that the webhook may grow to `bodyLength` bytes.
    func account(id: String, bodyLength: Int64) async throws
    func writeChunk(id: String, index: Int, data: ByteBuffer) async throws
    /// Writes `lastChunk` (if any) as chunk `chunkCount - 1` and makes the
    /// webhook durable and visible to delivery, in one step: a small body
    /// (one chunk) costs no write of its own.
    func finishIngest(id: String, bodyLength: Int64, chunkCount: Int, lastChunk: ByteBuffer?) async throws -> QueuedWebhook
    func abortIngest(id: String) async
}

/// Body chunks are stored at most this large, so neither writing nor reading
/// a body holds more than one chunk of it (docs/offline-queue.md).
let chunkSize = 64 * 1_024

/// An ingest for any store: gathers the sender's chunks (whatever size the
/// HTTP server hands over) into chunks of ``chunkSize`` and writes each as it
/// fills. Any failure aborts the ingest, so nothing half-stored stays.
actor BufferedQueueIngest<Backend: IngestBackend>: OfflineQueueIngest {
    private let backend: Backend
    private let id: String
    private var partial = ByteBuffer()
    private var bodyLength: Int64 = 0
    private var chunkCount = 0
    private var finished = false

    init(backend: Backend, id: String) {
        self.backend = backend
        self.id = id
    }

    func append(_ chunk: ByteBuffer) async throws {
        guard !finished else { throw OfflineQueueError.unknownIngest }
        do {
            bodyLength += Int64(chunk.readableBytes)
            try await backend.account(id: id, bodyLength: bodyLength)
            var chunk = chunk
            while chunk.readableBytes > 0 {
                if partial.readableBytes == 0 && chunk.readableBytes >= chunkSize {
                    try await write(chunk.readSlice(length: chunkSize)!)
                    continue
                }
                var slice = chunk.readSlice(length: min(chunkSize - partial.readableBytes, chunk.readableBytes))!
                partial.writeBuffer(&slice)
                if partial.readableBytes == chunkSize {
                    let full = partial
                    partial = ByteBuffer()
                    try await write(full)
                }
            }
        } catch {
            await abort()
            throw error
        }
    }

    func commit() async throws -> QueuedWebhook {
        guard !finished else { throw OfflineQueueError.unknownIngest }
        do {
            var last: ByteBuffer?
            if partial.readableBytes > 0 {
                last = partial
                partial = ByteBuffer()
                chunkCount += 1
            }
            finished = true
            return try await backend.finishIngest(id: id, bodyLength: bodyLength, chunkCount: chunkCount, lastChunk: last)
        } catch {
            finished = false
            await abort()
            throw error
        }
    }

    func abort() async {
        guard !finished else { return }
        finished = true
        partial = ByteBuffer()
        await backend.abortIngest(id: id)
    }

    private func write(_ data: ByteBuffer) async throws {
        try await backend.writeChunk(id: id, index: chunkCount, data: data)
        chunkCount += 1
    }
}
