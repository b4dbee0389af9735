import Crypto
import Foundation
import JWTKit

/// Signs and checks channel JWTs (HS256, `sub` = channel id).
///
/// The same key across restarts and replicas is what lets a client come back
/// to its channel anywhere; without a configured key a random one is made, so
/// tokens die with the process.
struct ChannelTokens: Sendable {
    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var iat: IssuedAtClaim
        /// "channel"; session tokens (auth mode) carry "session", so one can
        /// never stand in for the other.
        var typ: String

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try self.exp.verifyNotExpired()
        }
    }

    enum Failure: Error, Equatable {
        case invalid
        case wrongChannel
    }

    let keys: JWTKeyCollection
    let lifetime: Duration

    init(signingKey: String?, lifetime: Duration) async {
        let secret = signingKey ?? Self.randomKey()
        self.keys = JWTKeyCollection()
        await self.keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.lifetime = lifetime
    }

    private static func randomKey() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    func issue(channel id: String) async throws -> String {
        let now = Date()
        let claims = Claims(
            sub: .init(value: id),
            exp: .init(value: now.addingTimeInterval(Double(self.lifetime.components.seconds))),
            iat: .init(value: now),
            typ: "channel"
        )
        return try await self.keys.sign(claims)
    }

    /// Checks that `token` is a valid, unexpired channel token for `id`.
    func verify(_ token: String, channel id: String) async throws(Failure) {
        let claims: Claims
        do {
            claims = try await self.keys.verify(token, as: Claims.self)
        } catch {
            throw .invalid
        }
        guard claims.typ == "channel" else { throw .invalid }
        guard claims.sub.value == id else { throw .wrongChannel }
    }
}
