import HTTPTypes
import NIOCore

/// The compact encoding of a queued request's header fields, stored in one
/// column (docs/offline-queue.md, "Storage").
///
/// Layout: a format byte (1), the field count (UInt32), then per field the
/// name's length (UInt16) and bytes as received (case kept), the value's
/// length (UInt32) and raw bytes. Order, repeats and case survive a round trip,
/// so the local app sees the fields the sender sent.
enum HeaderFieldsCodec {
    static let format: UInt8 = 1

    static func encode(_ fields: HTTPFields) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(format)
        buffer.writeInteger(UInt32(fields.count))
        for field in fields {
            let name = field.name.rawName
            buffer.writeInteger(UInt16(name.utf8.count))
            buffer.writeString(name)
            field.withUnsafeBytesOfValue { value in
                buffer.writeInteger(UInt32(value.count))
                buffer.writeBytes(value)
            }
        }
        return buffer
    }

    static func decode(_ buffer: ByteBuffer) throws(OfflineQueueError) -> HTTPFields {
        var buffer = buffer
        guard buffer.readInteger(as: UInt8.self) == format, let count = buffer.readInteger(as: UInt32.self) else {
            throw .corruptRecord("header fields: unknown format")
        }
        var fields = HTTPFields()
        fields.reserveCapacity(Int(min(count, 1_024)))
        for _ in 0..<count {
            guard let nameLength = buffer.readInteger(as: UInt16.self),
                let nameString = buffer.readString(length: Int(nameLength)),
                let name = HTTPField.Name(nameString),
                let valueLength = buffer.readInteger(as: UInt32.self),
                let value = buffer.readBytes(length: Int(valueLength))
            else {
                throw .corruptRecord("header fields: truncated or invalid field")
            }
            fields.append(HTTPField(name: name, lenientValue: value))
        }
        guard buffer.readableBytes == 0 else { throw .corruptRecord("header fields: trailing bytes") }
        return fields
    }
}
