import HTTPTypes
import Testing

@testable import RelayServer

@Suite struct WebhookTargetTests {
    @Test func splitsChannelAndSuffix() throws {
        let nested = try #require(WebhookForwarder.parseTarget(path: "/webhook/abc/github/push", query: "x=1"))
        #expect(nested.channelID == "abc")
        #expect(nested.suffix == "/github/push?x=1")
        let bare = try #require(WebhookForwarder.parseTarget(path: "/webhook/abc", query: "a=b"))
        #expect(bare.suffix == "?a=b")
        #expect(WebhookForwarder.parseTarget(path: "/webhook/abc", query: nil)?.suffix == "")
        #expect(WebhookForwarder.parseTarget(path: "/webhook/", query: nil) == nil)
        #expect(WebhookForwarder.parseTarget(path: "/other", query: nil) == nil)
    }

    @Test func forwardedHeadersAppendTheSender() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("X-Forwarded-For")!, value: "1.2.3.4"))
        fields.append(HTTPField(name: HTTPField.Name("Host")!, value: "relay.example"))
        fields.append(HTTPField(name: .connection, value: "close"))
        let result = ForwardedHeaders.forRequest(fields, senderAddress: "5.6.7.8", scheme: "http", host: "relay.example")
        #expect(result[HTTPField.Name("X-Forwarded-For")!] == "1.2.3.4, 5.6.7.8")
        #expect(result[HTTPField.Name("X-Forwarded-Host")!] == "relay.example")
        #expect(result[HTTPField.Name("Host")!] == nil)
        #expect(result[.connection] == nil)
    }

    @Test func traefikConfigHasTheDocumentedShape() throws {
        #expect(TraefikConfig.build(replicas: []).isEmpty)
        let config = TraefikConfig.build(replicas: [.init(serverURL: "http://10.0.0.1:8080", channels: ["a", "b"], connected: ["a"])])
        let http = try #require(config["http"] as? [String: Any])
        let routers = try #require(http["routers"] as? [String: [String: Any]])
        #expect(routers["ws-a"]?["rule"] as? String == "PathPrefix(`/ws/a`)")
        #expect(routers["webhook-a"]?["rule"] as? String == "PathPrefix(`/webhook/a`)")
        #expect(routers["ws-b"] != nil && routers["webhook-b"] == nil)
        #expect(routers["ws-a"]?["service"] as? String == "service-a")
        #expect(routers["relay-any"]?["priority"] as? Int == 1)
    }

    @Test func aChannelRoutesToTheReplicaWhereItsClientIsConnected() throws {
        // Issued on one replica, connected at another (the client reconnected there).
        let config = TraefikConfig.build(replicas: [
            .init(serverURL: "http://10.0.0.1:8080", channels: ["a"], connected: []),
            .init(serverURL: "http://10.0.0.2:8080", channels: ["a"], connected: ["a"]),
        ])
        let http = try #require(config["http"] as? [String: Any])
        let services = try #require(http["services"] as? [String: [String: Any]])
        let servers = (services["service-a"]?["loadBalancer"] as? [String: Any])?["servers"] as? [[String: String]]
        #expect(servers == [["url": "http://10.0.0.2:8080"]])
        let any = (services["relay-any"]?["loadBalancer"] as? [String: Any])?["servers"] as? [[String: String]]
        #expect(any == [["url": "http://10.0.0.1:8080"], ["url": "http://10.0.0.2:8080"]])
    }
}
