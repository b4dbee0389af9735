import Crypto
import NIOCore

/// Re-signs an (edited) body the way its sender would, so the local app's
/// signature check passes on a replay (docs/inspector.md, "Re-signing").
/// The secret is used for one signature and never kept.
public enum Resigner {
    public enum Provider: String, Sendable, CaseIterable {
        case github, stripe, slack
    }

    /// `headers` with the provider's signature headers replaced (removed
    /// wherever they were, the new ones appended) by ones computed over `body`.
    public static func sign(
        _ headers: [HeaderField],
        body: ByteBuffer,
        provider: Provider,
        secret: String,
        now: Int
    ) -> [HeaderField] {
        let payload = Array(body.readableBytesView)
        var signed: [HeaderField]
        switch provider {
        case .github:
            signed = [HeaderField("X-Hub-Signature-256", "sha256=" + Self.hmac(secret, payload))]
        case .stripe:
            let message = Array("\(now).".utf8) + payload
            signed = [HeaderField("Stripe-Signature", "t=\(now),v1=" + Self.hmac(secret, message))]
        case .slack:
            let message = Array("v0:\(now):".utf8) + payload
            signed = [
                HeaderField("X-Slack-Request-Timestamp", "\(now)"),
                HeaderField("X-Slack-Signature", "v0=" + Self.hmac(secret, message)),
            ]
        }
        let replaced = Set(signed.map { $0.name.lowercased() })
        signed = headers.filter { !replaced.contains($0.name.lowercased()) } + signed
        return signed
    }

    /// Hex HMAC-SHA256 of `message` keyed with `secret`.
    static func hmac(_ secret: String, _ message: [UInt8]) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return Hex.encode(code)
    }
}
