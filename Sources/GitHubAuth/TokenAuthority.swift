import Crypto
import Foundation
import JWTKit
import Synchronization

/// Signs and checks the server's JWTs (HS256), all with one key.
///
/// Three kinds share the key, told apart by the `typ` claim so one can never
/// stand in for another: `channel` (`sub` = channel id; lets a client hold
/// its channel's WebSocket), `session` (`sub` = GitHub login; lets a user
/// create channels in auth mode) and `state` (the OAuth `state`, short-lived
/// and single-use). The same key across restarts and replicas is what lets a
/// client come back to its channel anywhere; without a configured key a
/// random one is made, so tokens die with the process.
public struct TokenAuthority: Sendable {
    public enum Kind: String, Sendable {
        case channel
        case session
        case state
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var iat: IssuedAtClaim
        var jti: IDClaim
        var typ: String

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try self.exp.verifyNotExpired()
        }
    }

    public enum Failure: Error, Equatable, Sendable {
        /// Malformed, forged, expired, or of another kind.
        case invalid
        /// Valid, but for another subject (another channel's token).
        case wrongSubject
    }

    let keys: JWTKeyCollection
    /// State tokens already used, so a replayed callback is refused.
    private let usedStates = UsedStates()

    public init(signingKey: String?) async {
        self.keys = JWTKeyCollection()
        await self.keys.add(hmac: Self.hmacKey(from: signingKey), digestAlgorithm: .sha256)
    }

    /// HS256 over the configured secret's bytes exactly as given (RFC 7518 §3.2), so a gateway, a
    /// Go replica or any JWT library holding the same secret verifies our tokens and signs ones we
    /// accept (docs/auth.md). jwt-kit refuses HMAC keys under 32 bytes; HMAC itself pads a key shorter
    /// than its 64-byte block with zeros, so padding a short secret with zeros to 32 bytes gives the
    /// identical signature. Without a secret, a random key: tokens die with the process.
    static func hmacKey(from secret: String?) -> HMACKey {
        guard let secret else { return HMACKey(key: SymmetricKey(size: .bits256)) }
        return HMACKey(key: SymmetricKey(data: Self.paddedKeyBytes(secret)))
    }

    /// The secret's UTF-8 bytes, zero-padded to ``minimumKeyBytes`` when shorter.
    static func paddedKeyBytes(_ secret: String) -> [UInt8] {
        var bytes = Array(secret.utf8)
        if bytes.count < Self.minimumKeyBytes { bytes += repeatElement(0, count: Self.minimumKeyBytes - bytes.count) }
        return bytes
    }

    /// The key length RFC 7518 §3.2 asks of HS256 (the hash's output size); a shorter secret works,
    /// but is easier to guess, so the server warns about it at start.
    public static let minimumKeyBytes = 32

    public func issue(_ kind: Kind, subject: String, lifetime: Duration) async throws -> String {
        let now = Date()
        let claims = Claims(
            sub: .init(value: subject),
            exp: .init(value: now.addingTimeInterval(Double(lifetime.components.seconds))),
            iat: .init(value: now),
            jti: .init(value: UUID().uuidString.lowercased()),
            typ: kind.rawValue
        )
        return try await self.keys.sign(claims)
    }

    /// Checks a token of `kind` and returns its subject. With `subject`, the
    /// token must be for exactly that subject.
    @discardableResult
    public func verify(_ token: String, as kind: Kind, subject: String? = nil) async throws(Failure) -> String {
        let claims: Claims
        do {
            claims = try await self.keys.verify(token, as: Claims.self)
        } catch {
            throw .invalid
        }
        guard claims.typ == kind.rawValue else { throw .invalid }
        if let subject, claims.sub.value != subject { throw .wrongSubject }
        return claims.sub.value
    }

    /// Checks an OAuth `state` and marks it used: each state works once.
    public func consumeState(_ token: String) async throws(Failure) -> String {
        let claims: Claims
        do {
            claims = try await self.keys.verify(token, as: Claims.self)
        } catch {
            throw .invalid
        }
        guard claims.typ == Kind.state.rawValue else { throw .invalid }
        guard self.usedStates.insert(claims.jti.value, expires: claims.exp.value) else { throw .invalid }
        return claims.sub.value
    }
}

/// Ids of used OAuth states, kept until they expire anyway.
final class UsedStates: Sendable {
    private let entries = Mutex<[String: Date]>([:])

    /// Returns false when `id` was already used.
    func insert(_ id: String, expires: Date) -> Bool {
        self.entries.withLock { entries in
            let now = Date()
            entries = entries.filter { $0.value > now }
            guard entries[id] == nil else { return false }
            entries[id] = expires
            return true
        }
    }
}
