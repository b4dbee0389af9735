/// Traefik HTTP-provider dynamic configuration (SPEC §2): per channel a
/// service pointing at the replica that holds it, a `ws-` router for every
/// channel and a `webhook-` router for connected ones.
enum TraefikConfig {
    struct Replica: Sendable {
        var serverURL: String
        var channels: [String]
        var connected: [String]
    }

    static func build(replicas: [Replica]) -> [String: Any] {
        var routers: [String: Any] = [:]
        var services: [String: Any] = [:]
        for replica in replicas {
            for id in replica.channels {
                services["service-\(id)"] = ["loadBalancer": ["servers": [["url": replica.serverURL]]]]
                routers["ws-\(id)"] = ["rule": "PathPrefix(`/ws/\(id)`)", "service": "service-\(id)"]
            }
            for id in replica.connected {
                services["service-\(id)"] = ["loadBalancer": ["servers": [["url": replica.serverURL]]]]
                routers["webhook-\(id)"] = ["rule": "PathPrefix(`/webhook/\(id)`)", "service": "service-\(id)"]
            }
        }
        guard !services.isEmpty else { return [:] }
        return ["http": ["routers": routers, "services": services]]
    }
}
