/// A self-signed certificate for `localhost` (valid until 2126) and its key, for the `wss://` tests.
/// Made with `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 36500
/// -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost"`.
enum TestCertificate {
    static let certificate = """
        -----BEGIN CERTIFICATE-----
        MIIBlTCCATugAwIBAgIUWDESWFsOMr2MerBSezExcyCFmV0wCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMjA3MDcyNFoYDzIxMjYxMTA4
        MDcwNzI0WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAAQXGoZL5nzPQlC9hI9UvlSWpFeNPqL0NtnQEjbqex76uIfqVoZ6L3WC
        AdqfYW9KLuX1zL/Xe4LjBxZ1VT2ORwh3o2kwZzAdBgNVHQ4EFgQUm4+bsK4I7H1h
        5UKHE4E9cOpNl6cwHwYDVR0jBBgwFoAUm4+bsK4I7H1h5UKHE4E9cOpNl6cwDwYD
        VR0TAQH/BAUwAwEB/zAUBgNVHREEDTALgglsb2NhbGhvc3QwCgYIKoZIzj0EAwID
        SAAwRQIhAJh+sWT/39enrk7evU33uPdvyy0nMDGzN4xGv9MDsEm7AiBgPqT1Q/O2
        SaEuFyrlG5Z++2OdYvZnLo2ltEvE9bjvQg==
        -----END CERTIFICATE-----
        """

    static let privateKey = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgMk4sGTo82tpOp2y/
        f+XH7uvw9uKo7bUIXuDseh31OuShRANCAAQXGoZL5nzPQlC9hI9UvlSWpFeNPqL0
        NtnQEjbqex76uIfqVoZ6L3WCAdqfYW9KLuX1zL/Xe4LjBxZ1VT2ORwh3
        -----END PRIVATE KEY-----
        """
}
