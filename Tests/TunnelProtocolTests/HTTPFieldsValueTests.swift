import HTTPTypes
import Testing
import TunnelProtocol

/// `value(of:)` answers as swift-http-types' subscript does.
@Suite struct HTTPFieldsValueTests {
    @Test func oneFieldNoneAndRepeatsReadAsTheSubscriptReadsThem() {
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: "12"]
        fields.append(HTTPField(name: .cookie, value: "a=1"))
        fields.append(HTTPField(name: .cookie, value: "b=2"))
        fields.append(HTTPField(name: HTTPField.Name("X-Repeat")!, value: "one"))
        fields.append(HTTPField(name: HTTPField.Name("x-repeat")!, value: "two"))
        #expect(fields.value(of: .contentLength) == "12")
        #expect(fields.value(of: .expect) == nil)
        #expect(fields.value(of: HTTPField.Name("x-repeat")!) == "one, two")
        #expect(fields.value(of: .cookie) == "a=1; b=2")
        for name in [HTTPField.Name.contentLength, .contentType, .expect, .cookie, HTTPField.Name("X-REPEAT")!] {
            #expect(fields.value(of: name) == fields[name], "\(name)")
        }
    }

    @Test func fieldsFromAListKeepItsOrderAndRepeats() {
        let list = [
            HTTPField(name: .contentType, value: "a"), HTTPField(name: HTTPField.Name("X-One")!, value: "1"),
            HTTPField(name: HTTPField.Name("x-one")!, value: "2"),
        ]
        var appended = HTTPFields()
        for field in list { appended.append(field) }
        #expect(HTTPFields.from(list) == appended)
        #expect(Array(HTTPFields.from(list)) == list)
        #expect(HTTPFields.from([]).isEmpty)
    }
}
