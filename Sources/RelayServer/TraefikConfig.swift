/// Traefik HTTP-provider dynamic configuration (docs/clustering.md): per channel a service pointing at the
/// replica that holds it, a `ws-` router for every channel and a `webhook-` router for connected ones,
/// and a lowest-priority catch-all to every replica for everything else (`/new`, `/auth/…`, channels
/// Traefik has not heard of yet, which the replicas forward among themselves).
enum TraefikConfig {
    struct Replica: Sendable {
        var serverURL: String
        var channels: [String]
        var connected: [String]
    }

    static func build(replicas: [Replica]) -> [String: Any] {
        // A channel connected somewhere routes there; otherwise to the replica that knows it.
        var owner: [String: String] = [:]
        var connected: Set<String> = []
        for replica in replicas {
            for id in replica.channels where owner[id] == nil { owner[id] = replica.serverURL }
        }
        for replica in replicas {
            for id in replica.connected {
                owner[id] = replica.serverURL
                connected.insert(id)
            }
        }
        var routers: [String: Any] = [:]
        var services: [String: Any] = [:]
        for (id, url) in owner {
            services["service-\(id)"] = ["loadBalancer": ["servers": [["url": url]]]]
            routers["ws-\(id)"] = ["rule": "PathPrefix(`/ws/\(id)`)", "service": "service-\(id)"]
            if connected.contains(id) {
                routers["webhook-\(id)"] = ["rule": "PathPrefix(`/webhook/\(id)`)", "service": "service-\(id)"]
            }
        }
        let urls = Set(replicas.map(\.serverURL)).sorted()
        if !urls.isEmpty {
            services["relay-any"] = ["loadBalancer": ["servers": urls.map { ["url": $0] }]]
            routers["relay-any"] = ["rule": "PathPrefix(`/`)", "priority": 1, "service": "relay-any"]
        }
        guard !services.isEmpty else { return [:] }
        return ["http": ["routers": routers, "services": services]]
    }
}
