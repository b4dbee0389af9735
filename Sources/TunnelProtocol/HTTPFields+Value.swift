public import HTTPTypes

extension HTTPFields {
    /// `self[name]`, without its cost in the usual case of at most one such field.
    ///
    /// swift-http-types' getter joins the values through a lazy map and `joined(separator:)`,
    /// generic code that runs unspecialised: looking up `Content-Length` and a few others for each
    /// webhook was 3–4 % of the server's and the client's CPU (docs/performance.md). One field's
    /// value is returned as it is; for repeated fields this defers to the subscript, so the
    /// joined value (`", "`, or `"; "` for `Cookie`) is the same.
    public func value(of name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            guard found == nil else { return self[name] }
            found = field.value
        }
        return found
    }

    /// The fields of `list`, in order, added in one call.
    ///
    /// `HTTPFields.append`, and `append(contentsOf:)` field by field, go through the collection
    /// protocol's generic `insert` for each field (0.4 % of a side's samples per head built that
    /// way); `replaceSubrange` at the end adds them all in one. The storage is reserved first: the
    /// fields are appended one by one inside, and growing from empty reallocated it three or four
    /// times per head (docs/performance.md).
    public static func from(_ list: [HTTPField]) -> HTTPFields {
        var fields = HTTPFields()
        fields.reserveCapacity(list.count)
        fields.replaceSubrange(0..<0, with: list)
        return fields
    }
}
