import Crypto
import Foundation
import Hummingbird
import LocalAppTestSupport
import NIOCore
import NIOHTTP1
import Testing

/// A local app that says which app it is, and echoes what it is sent.
func namedApp(_ name: String) -> LocalApp {
    LocalApp { router in
        router.post("/who") { request, _ -> String in
            let body = try await request.body.collect(upTo: 1 << 20)
            return "\(name) \(String(buffer: body))"
        }
        router.post("/sink") { request, _ -> String in
            var hasher = SHA256()
            var total = 0
            for try await chunk in request.body {
                total += chunk.readableBytes
                hasher.update(data: Array(chunk.readableBytesView))
            }
            return "\(name) \(total) " + hasher.finalize().map { String(format: "%02x", $0) }.joined()
        }
    }
}

@Suite("Cluster: replicas gossip, share routing and forward to each other")
struct ClusterTests {
    @Test("Three replicas found through --peers converge; a killed one is detected; /traefik-config on any replica routes every channel")
    func convergeRouteAndDetect() async throws {
        try await Cluster.withReplicas(3) { replicas, _ in
            let urls = Set(replicas.map(\.url))
            for replica in replicas { try await Cluster.waitForMembers(of: replica, urls: urls) }

            let issued = try await replicas.asyncMap { try await Cluster.issue(on: $0) }
            try await namedApp("app").run { port in
                let client = try await Tunnel.startClient(
                    server: replicas[0],
                    targetURL: "http://127.0.0.1:\(port)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
                defer { client.process.signal(SIGKILL) }
                for replica in replicas {
                    let (routers, services) = try await Cluster.traefikConfig(replica)
                    for (index, channel) in issued.enumerated() {
                        #expect(routers["ws-\(channel.channel_id)"]?["service"] as? String == "service-\(channel.channel_id)")
                        #expect(Cluster.serviceURLs(services, "service-\(channel.channel_id)") == [replicas[index].url])
                        #expect(routers["webhook-\(channel.channel_id)"] == nil)
                    }
                    #expect(routers["webhook-\(client.channelID)"]?["rule"] as? String == "PathPrefix(`/webhook/\(client.channelID)`)")
                    #expect(Cluster.serviceURLs(services, "service-\(client.channelID)") == [replicas[0].url])
                    #expect(Set(Cluster.serviceURLs(services, "relay-any")) == urls)
                    #expect(routers["relay-any"]?["priority"] as? Int == 1)
                }

                let killed = ContinuousClock.now
                await replicas[2].process.stop()
                // A dead replica never stalls the routing answer, and drops out of it at once.
                let asked = ContinuousClock.now
                let (routers, services) = try await Cluster.traefikConfig(replicas[0])
                #expect(ContinuousClock.now - asked < .seconds(2))
                #expect(routers["ws-\(issued[2].channel_id)"] == nil)
                #expect(Set(Cluster.serviceURLs(services, "relay-any")) == [replicas[0].url, replicas[1].url])
                // SWIM: suspected after a missed probe, dead after the suspicion timeout.
                for replica in replicas.prefix(2) {
                    try await Cluster.waitForMembers(of: replica, urls: [replicas[0].url, replicas[1].url], timeout: .seconds(20))
                }
                print("cluster: a killed replica left both member lists after \(ContinuousClock.now - killed)")
            }
        }
    }

    @Test("Round-robin to all replicas: every webhook reaches its own client, a 50 MiB body included")
    func roundRobinForwarding() async throws {
        try await Cluster.withReplicas(3) { replicas, _ in
            let urls = Set(replicas.map(\.url))
            for replica in replicas { try await Cluster.waitForMembers(of: replica, urls: urls) }
            try await namedApp("alpha").run { alphaPort in
                try await namedApp("beta").run { betaPort in
                    let alpha = try await Tunnel.startClient(
                        server: replicas[0],
                        targetURL: "http://127.0.0.1:\(alphaPort)",
                        stateDir: try Tunnel.makeStateDirectory()
                    )
                    defer { alpha.process.signal(SIGKILL) }
                    let beta = try await Tunnel.startClient(
                        server: replicas[1],
                        targetURL: "http://127.0.0.1:\(betaPort)",
                        stateDir: try Tunnel.makeStateDirectory()
                    )
                    defer { beta.process.signal(SIGKILL) }

                    for round in 0..<12 {
                        let replica = replicas[round % 3]
                        for (name, client) in [("alpha", alpha), ("beta", beta)] {
                            let answer = try await Sender.send(
                                .POST,
                                "\(replica.url)/webhook/\(client.channelID)/who",
                                body: ByteBuffer(string: "round-\(round)")
                            )
                            #expect(answer.status == 200)
                            #expect(answer.text == "\(name) round-\(round)", "via \(replica.url)")
                        }
                    }

                    // 50 MiB through the replica that holds neither client, streamed both hops.
                    // One random 64 KiB block, each copy stamped with its index, so no two chunks
                    // are alike. Random bytes one by one took twenty seconds in a debug build.
                    var block = [UInt8](repeating: 0, count: 64 * 1024)
                    for index in block.indices { block[index] = UInt8.random(in: 0...255) }
                    var hasher = SHA256()
                    let size = 50 * 1024 * 1024
                    var body = ByteBuffer()
                    body.reserveCapacity(size)
                    for index in 0..<(size / block.count) {
                        let start = body.writerIndex
                        body.writeInteger(UInt64(index))
                        body.writeBytes(block[8...])
                        body.withUnsafeReadableBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[start...])) }
                    }
                    let started = ContinuousClock.now
                    defer { print("cluster: 50 MiB through a third replica in \(ContinuousClock.now - started)") }
                    let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                    let answer = try await Sender.send(.POST, "\(replicas[2].url)/webhook/\(beta.channelID)/sink", body: body, timeout: .seconds(120))
                    #expect(answer.status == 200)
                    #expect(answer.text == "beta \(size) \(digest)")
                }
            }
        }
    }

    @Test("A second client for a channel connected at another replica gets 409 there")
    func conflictAcrossReplicas() async throws {
        try await Cluster.withReplicas(2) { replicas, _ in
            let urls = Set(replicas.map(\.url))
            for replica in replicas { try await Cluster.waitForMembers(of: replica, urls: urls) }
            try await namedApp("app").run { port in
                let client = try await Tunnel.startClient(
                    server: replicas[0],
                    targetURL: "http://127.0.0.1:\(port)",
                    stateDir: try Tunnel.makeStateDirectory()
                )
                defer { client.process.signal(SIGKILL) }
                let token = try #require(channelToken(stateDir: client.stateDir))
                let status = try await upgradeStatus(server: replicas[1], channel: client.channelID, token: token)
                #expect(status == 409)
            }
        }
    }
}

/// The channel token the client saved.
func channelToken(stateDir: String) -> String? {
    guard let files = try? FileManager.default.contentsOfDirectory(atPath: stateDir) else { return nil }
    for file in files {
        guard let data = FileManager.default.contents(atPath: "\(stateDir)/\(file)"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { continue }
        if let token = object["token"] as? String { return token }
    }
    return nil
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
