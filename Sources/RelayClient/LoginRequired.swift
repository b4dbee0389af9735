/// The server wants a (new) session token: retrying cannot help, the user
/// has to log in. The CLI prints the hint and exits with 2.
public struct LoginRequired: Error, CustomStringConvertible {
    public var serverURL: String
    public var message: String

    public var description: String {
        "The server refused the session token (\(self.message)). Log in again at \(self.serverURL)/auth/login and pass the new token with --token."
    }
}
