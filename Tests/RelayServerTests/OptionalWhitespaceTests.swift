import HTTPTypes
import Testing
import TunnelProtocol

@testable import RelayServer

@Suite("Header values: optional whitespace, ASCII case, bearer tokens")
struct OptionalWhitespaceTests {
    @Test("Spaces and tabs go from both ends, nothing else does")
    func trimsSpacesAndTabs() {
        #expect(" \t token \t "[...].trimmingOptionalWhitespace() == "token")
        #expect("a b"[...].trimmingOptionalWhitespace() == "a b")
        #expect("   "[...].trimmingOptionalWhitespace() == "")
        #expect(""[...].trimmingOptionalWhitespace() == "")
        #expect("\u{a0}x\n"[...].trimmingOptionalWhitespace() == "\u{a0}x\n")
        #expect(" caf\u{e9} "[...].trimmingOptionalWhitespace() == "caf\u{e9}")
    }

    @Test("ASCII case is ignored; other differences and lengths are not")
    func comparesIgnoringASCIICase() {
        #expect("WebSocket".equalsASCIICaseInsensitive("websocket"))
        #expect("websocket".equalsASCIICaseInsensitive("websocket"))
        #expect(!"websockets".equalsASCIICaseInsensitive("websocket"))
        #expect(!"websocke".equalsASCIICaseInsensitive("websocket"))
        #expect(!"webs\u{f6}cket".equalsASCIICaseInsensitive("websocket"))
        #expect(!"WEBSOCKE[".equalsASCIICaseInsensitive("websocke{"))
        #expect(" Close "[...].trimmingOptionalWhitespace().equalsASCIICaseInsensitive("close"))
        #expect(!"Clos"[...].equalsASCIICaseInsensitive("close"))
    }

    @Test("The bearer token is the value after the scheme, in any case, without the whitespace around it")
    func bearerTokens() {
        func token(_ value: String?) -> String? {
            var fields = HTTPFields()
            if let value { fields[.authorization] = value }
            return ChannelGate.bearerToken(fields)
        }
        #expect(token(nil) == nil)
        #expect(token("Bearer abc.def") == "abc.def")
        #expect(token("bEARER   abc.def \t") == "abc.def")
        #expect(token("Basic dXNlcg==") == "")
        #expect(token("Bearer") == "")
    }
}
