import Testing

@testable import RelayClient

@Suite("The console line per webhook")
struct ConsoleTests {
    @Test("A line has the time, the padded method, path, status, duration and size, and the queued and replay marks")
    func lineLayout() {
        let summary = LocalForwarder.Summary(method: "POST", path: "/github?x=1", status: 201, bytes: 1536)
        let line = Console.webhookLine(summary, elapsed: .milliseconds(12), queued: "0123456789ab", replayOf: nil, time: "09:05:07")
        #expect(line == "09:05:07  POST    /github?x=1  201  12ms  1.5 KiB  queued 01234567")
        let failed = LocalForwarder.Summary(method: "OPTIONS", path: "/", status: 0, bytes: 3)
        #expect(
            Console.webhookLine(failed, elapsed: .milliseconds(1500), queued: nil, replayOf: "abcdefghij", time: "23:59:59")
                == "23:59:59  OPTIONS /  ---  1.5s  3 B  replay of abcdefgh"
        )
    }

    @Test("Sizes have one decimal, rounded as printf's %.1f rounds these values")
    func sizes() {
        #expect(Console.format(bytes: 1023) == "1023 B")
        #expect(Console.format(bytes: 1024) == "1.0 KiB")
        #expect(Console.format(bytes: 1075) == "1.0 KiB")
        #expect(Console.format(bytes: 1076) == "1.1 KiB")
        #expect(Console.format(bytes: 65536) == "64.0 KiB")
        #expect(Console.format(bytes: 100 * 1024 * 1024) == "100.0 MiB")
        #expect(Console.format(bytes: 1024 * 1024 * 3 / 2) == "1.5 MiB")
    }

    @Test("The clock reads HH:mm:ss")
    func clock() {
        let time = Console.clockTime()
        #expect(time.count == 8 && time.filter { $0 == ":" }.count == 2)
        #expect(time.split(separator: ":").allSatisfy { $0.count == 2 && Int($0) != nil })
    }
}
