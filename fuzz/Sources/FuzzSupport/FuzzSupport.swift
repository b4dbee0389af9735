/// Splits one fuzz input into the WebSocket messages it stands for.
///
/// Messages are separated by ``messageSeparator`` (`\n-8<-\n`), so an input
/// without one is a single message: every seed in
/// `Tests/TunnelProtocolTests/Corpus/` is one message as it stands, and the
/// multi-message seeds in `fuzz/seeds/` chain several frames on one connection.
public let messageSeparator: [UInt8] = Array("\n-8<-\n".utf8)

public func splitMessages(_ input: UnsafeBufferPointer<UInt8>) -> [[UInt8]] {
    var messages: [[UInt8]] = []
    var start = 0
    var index = 0
    let count = input.count
    let width = messageSeparator.count
    while index + width <= count {
        if input[index] == messageSeparator[0], messageSeparator.indices.allSatisfy({ input[index + $0] == messageSeparator[$0] }) {
            messages.append(Array(input[start..<index]))
            index += width
            start = index
        } else {
            index += 1
        }
    }
    messages.append(Array(input[start..<count]))
    return messages
}

/// The input as a buffer pointer (libFuzzer passes a null pointer for the empty input).
public func inputBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: size == 0 ? nil : data, count: size)
}
