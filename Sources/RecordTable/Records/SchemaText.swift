/// Schemas written as text, as the `mrec` tool takes them: `id:i64,x:f64,name:char[16]`.
extension RecordSchema {
    /// Parses a schema written as comma-separated fields, `name:type`, `name:type[count]` or
    /// either with `@offset`, such as `id:i64, pos:f32[3], name:char[16]@32`.
    ///
    /// Fields without `@offset` follow the previous field at their type's natural alignment,
    /// as a C compiler (and Swift, for these types) lays them out. The stride is the end of
    /// the last field rounded up to the alignment, unless `stride` is given.
    /// The types are those of ``FieldType/name``: `i8` … `i64`, `u8` … `u64`, `f32`, `f64`,
    /// `bool`, `bytes`, `char`.
    /// - Throws: ``SchemaProblem`` naming the field and what is wrong with it.
    public init(parsing text: String, stride explicitStride: Int? = nil) throws(SchemaProblem) {
        var fields: [RecordField] = []
        var end = 0
        var alignment = 1
        for (position, part) in text.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            let item = part.trimmingSpaces
            func problem(_ what: String) -> SchemaProblem {
                SchemaProblem("field \(position + 1) ('\(item)'): \(what)")
            }
            guard let colon = item.firstIndex(of: ":") else { throw problem("not name:type") }
            let name = String(item[..<colon].trimmingSpaces)
            // Text cannot carry a name with control characters, with the separators of this
            // syntax, or starting with a combining mark (after a comma it would join the comma
            // in one grapheme cluster, and the field would not split off): such a name would not
            // read back from `specification`.
            let marks: Set<Unicode.GeneralCategory> = [.nonspacingMark, .spacingMark, .enclosingMark]
            guard
                !name.unicodeScalars.contains(where: {
                    $0.properties.generalCategory == .control || "@[],:".unicodeScalars.contains($0)
                }),
                name.unicodeScalars.first.map({ !marks.contains($0.properties.generalCategory) }) ?? true
            else {
                throw problem(
                    "a field name written as text cannot hold control characters or any of @ [ ] , :, nor start with a combining mark"
                )
            }
            var rest = item[item.index(after: colon)...].trimmingSpaces

            var offset: Int?
            if let at = rest.firstIndex(of: "@") {
                guard let value = Int(rest[rest.index(after: at)...].trimmingSpaces), value >= 0, value <= 1 << 24
                else {
                    throw problem("the offset after @ is not a number from 0 to 16777216")
                }
                offset = value
                rest = rest[..<at].trimmingSpaces
            }
            var count = 1
            if let bracket = rest.firstIndex(of: "[") {
                guard rest.last == "]",
                    let value = Int(rest[rest.index(after: bracket)..<rest.index(before: rest.endIndex)]),
                    value >= 1, value <= 1 << 24
                else {
                    throw problem("the count in [ ] is not a number from 1 to 16777216")
                }
                count = value
                rest = rest[..<bracket].trimmingSpaces
            }
            guard let type = FieldType(name: String(rest)) else {
                throw problem(
                    "unknown type '\(rest)'; the types are \(FieldType.allCases.map(\.name).joined(separator: ", "))")
            }
            let start = offset ?? (end + type.size - 1) / type.size * type.size
            fields.append(RecordField(name: name, type: type, offset: start, count: count))
            end = max(end, start + type.size * count)
            alignment = max(alignment, type.size)
        }
        let stride = explicitStride ?? (end + alignment - 1) / alignment * alignment
        if let explicitStride, explicitStride % alignment != 0 {
            // A raw file may pack records tighter than C would: its fields are read unaligned.
            alignment = explicitStride & -explicitStride
        }
        try self.init(fields: fields, stride: stride, alignment: min(alignment, 4096))
    }

    /// The schema as text that ``init(parsing:stride:)`` reads back, every offset explicit:
    /// `id:i64@0,x:f64@8`.
    public var specification: String {
        fields.map { "\($0.name):\($0.type.name)\($0.count == 1 ? "" : "[\($0.count)]")@\($0.offset)" }.joined(
            separator: ",")
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }
}
