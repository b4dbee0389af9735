import Foundation
import NIOCore

/// The short JSON error bodies of README "Endpoints": `{"error": "..."}`.
enum ErrorBody {
    static func json(_ message: String) -> ByteBuffer {
        let data = (try? JSONSerialization.data(withJSONObject: ["error": message], options: [.sortedKeys])) ?? Data()
        var buffer = ByteBuffer(bytes: data)
        buffer.writeString("\n")
        return buffer
    }
}
