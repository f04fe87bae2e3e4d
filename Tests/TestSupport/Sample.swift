import RecordTable

/// A self-checking record for the table tests: `check` is a function of `id`, so a torn or
/// misplaced record is caught by looking at it alone.
public struct Sample: TableRecord, Equatable, Sendable {
    public var id: Int64
    public var value: Double
    public var check: UInt64
    public var flag: Bool
    public var tag: FixedString<7>

    public static let schema = RecordSchema(Sample.self, fields: [
        .field("id", \.id),
        .field("value", \.value),
        .field("check", \.check),
        .field("flag", \.flag),
        .field("tag", \.tag),
    ])

    /// The record with this id.
    public init(id: Int64) {
        self.id = id
        self.value = Double(id) * 0.5
        self.check = Sample.expectedCheck(id)
        self.flag = id % 2 == 0
        self.tag = FixedString("r\(id % 1000)")
    }

    public static func expectedCheck(_ id: Int64) -> UInt64 {
        UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15 ^ 0xDEAD_BEEF
    }

    /// Whether this is exactly the record `Sample(id: index)`.
    public func isValid(at index: Int) -> Bool {
        self == Sample(id: Int64(index))
    }
}
