import HTTPTypes
import NIOHTTP1
import Testing

@testable import Inspector

/// The heads the data path hands the capture, read back as the history stores them.
@Suite struct ObservedHeadersTests {
    @Test func fieldsKeepTheirOrderCaseAndRepeats() {
        var fields = HTTPFields()
        fields.append(HTTPField(name: HTTPField.Name("X-Repeat")!, value: "a"))
        fields.append(HTTPField(name: .contentType, value: "application/json"))
        fields.append(HTTPField(name: HTTPField.Name("x-repeat")!, value: "b"))
        let expected = [HeaderField("X-Repeat", "a"), HeaderField("Content-Type", "application/json"), HeaderField("x-repeat", "b")]
        #expect(fields.headerFields == expected)
        let headers = HTTPHeaders([("X-Repeat", "a"), ("Content-Type", "application/json"), ("x-repeat", "b")])
        #expect(headers.headerFields == expected)
        #expect(expected.headerFields == expected)
    }

    @Test func theDeclaredLengthIsOneNumberOrNothing() {
        let cases: [([(String, String)], Int?)] = [
            ([("Content-Length", "12")], 12),
            ([("content-length", "0")], 0),
            ([("CONTENT-LENGTH", "7"), ("X-Other", "1")], 7),
            ([], nil),
            ([("Content-Length", "5"), ("Content-Length", "5")], nil),
            ([("Content-Length", "-1")], nil),
            ([("Content-Length", "ten")], nil),
            ([("Content-Lengthy", "3")], nil),
        ]
        for (pairs, length) in cases {
            let headers = HTTPHeaders(pairs)
            #expect(headers.declaredLength == length, "\(pairs)")
            var fields = HTTPFields()
            for (name, value) in pairs { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
            #expect(fields.declaredLength == length, "\(pairs)")
            #expect(pairs.map { HeaderField($0.0, $0.1) }.declaredLength == length, "\(pairs)")
        }
    }
}
