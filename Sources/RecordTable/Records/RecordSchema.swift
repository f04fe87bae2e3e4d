/// One field of a record: its name, type, byte offset in the record and element count.
public struct RecordField: Sendable, Hashable, CustomStringConvertible {
    /// The field's name: 1 to 47 bytes of UTF-8, without NUL.
    public var name: String
    /// The type of one element.
    public var type: FieldType
    /// Where the field starts in the record, in bytes.
    public var offset: Int
    /// The number of elements: 1 for a scalar, N for a fixed array.
    public var count: Int

    /// Creates a field.
    public init(name: String, type: FieldType, offset: Int, count: Int = 1) {
        self.name = name
        self.type = type
        self.offset = offset
        self.count = count
    }

    /// The field's size in bytes.
    public var size: Int { type.size * count }

    /// The field's numpy format: `<f8`, `3<i4` for an array, `S16` for text, `V16` for bytes.
    public var numpyFormat: String {
        switch type {
        case .char: return "S\(count)"
        case .bytes: return "V\(count)"
        default: return (count == 1 ? "" : String(count)) + type.numpyCode
        }
    }

    /// `name: type[count] @ offset`, such as `x: f64 @ 8`.
    public var description: String {
        "\(name): \(type.name)\(count == 1 ? "" : "[\(count)]") @ \(offset)"
    }
}

/// The layout of a record: its fields, stride and alignment.
///
/// For a Swift record, let `@MappedRecord` declare it: every stored property becomes a field,
/// with its offset from `MemoryLayout.offset(of:)`:
///
/// ```swift
/// @MappedRecord
/// struct Point {
///     var id: Int64
///     var x: Double
/// }
/// ```
///
/// By hand, ``init(_:fields:)`` takes key paths, and traps at first use if the list leaves
/// out a stored property.
public struct RecordSchema: Sendable, Hashable, CustomStringConvertible {
    /// The fields, in the order declared.
    public let fields: [RecordField]
    /// The distance between records in bytes.
    public let stride: Int
    /// The alignment of a record in bytes (a power of two).
    public let alignment: Int
    /// Earlier names of fields, by current name (`@Field(renamedFrom:)`), for schema evolution.
    /// Not part of the layout: equality and the hash ignore it.
    public internal(set) var previousNames: [String: String] = [:]

    /// Equal when the layouts are equal: fields, stride and alignment.
    public static func == (lhs: RecordSchema, rhs: RecordSchema) -> Bool {
        lhs.fields == rhs.fields && lhs.stride == rhs.stride && lhs.alignment == rhs.alignment
    }

    /// Hashes the layout.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(fields)
        hasher.combine(stride)
        hasher.combine(alignment)
    }

    /// The longest field name in bytes.
    public static let maximumNameLength = 47
    /// The most fields a schema may have.
    public static let maximumFieldCount = 1024

    /// Creates a schema from fields, checking that they fit the stride without overlapping.
    /// - Throws: A description of the first problem, for schemas that come from outside
    ///   (a file, a command line).
    public init(fields: [RecordField], stride: Int, alignment: Int) throws(SchemaProblem) {
        guard !fields.isEmpty else { throw SchemaProblem("a schema needs at least one field") }
        guard fields.count <= Self.maximumFieldCount else {
            throw SchemaProblem("more than \(Self.maximumFieldCount) fields")
        }
        guard alignment > 0, alignment & (alignment - 1) == 0, alignment <= 4096 else {
            throw SchemaProblem("the alignment \(alignment) is not a power of two up to 4096")
        }
        guard stride > 0, stride <= 1 << 24, stride % alignment == 0 else {
            throw SchemaProblem(
                "the stride \(stride) is not a positive multiple of the alignment \(alignment), up to 16 MiB")
        }
        var names = Set<String>()
        var covered = [(Int, Int, String)]()
        for field in fields {
            let nameLength = field.name.utf8.count
            guard nameLength >= 1, nameLength <= Self.maximumNameLength, !field.name.utf8.contains(0) else {
                throw SchemaProblem(
                    "the field name '\(field.name)' is not 1 to \(Self.maximumNameLength) bytes without NUL")
            }
            guard names.insert(field.name).inserted else {
                throw SchemaProblem("the field name '\(field.name)' appears twice")
            }
            guard field.count >= 1, field.count <= 1 << 24 else {
                throw SchemaProblem("field '\(field.name)' has the count \(field.count)")
            }
            guard field.offset >= 0, field.offset <= stride, field.size <= stride - field.offset else {
                throw SchemaProblem(
                    "field '\(field.name)' (\(field.size) bytes at offset \(field.offset)) overflows the stride \(stride)"
                )
            }
            for (start, end, other) in covered where field.offset < end && start < field.offset + field.size {
                throw SchemaProblem("fields '\(other)' and '\(field.name)' overlap")
            }
            covered.append((field.offset, field.offset + field.size, field.name))
        }
        self.fields = fields
        self.stride = stride
        self.alignment = alignment
        self.paddingRuns = Self.uncoveredRuns(of: fields, stride: stride)
    }

    /// Whether records of `other` can be read from records of this schema as they are: the
    /// same stride, and each of `other`'s fields here with the same type, count and offset.
    public func contains(_ other: RecordSchema) -> Bool {
        stride == other.stride && other.fields.allSatisfy { field(named: $0.name) == $0 }
    }

    /// The field with this name.
    public func field(named name: String) -> RecordField? { fields.first { $0.name == name } }

    /// The bytes of a record that no field covers, as (offset, length) runs, in order.
    /// (Computed once, when the schema is made: a table reads it on every open.)
    public let paddingRuns: [(offset: Int, length: Int)]

    /// Byte offsets of every Bool in a record, which loads must check.
    var boolOffsets: [Int] {
        fields.filter { $0.type == .bool }.flatMap { field in (0..<field.count).map { field.offset + $0 } }
    }

    /// Whether a record holds a Bool (without building ``boolOffsets``).
    var hasBools: Bool { fields.contains { $0.type == .bool } }

    /// The gaps between fields, which `init` has checked do not overlap.
    private static func uncoveredRuns(of fields: [RecordField], stride: Int) -> [(offset: Int, length: Int)] {
        var runs: [(offset: Int, length: Int)] = []
        var end = 0
        for field in fields.sorted(by: { $0.offset < $1.offset }) where field.size > 0 {
            if field.offset > end { runs.append((end, field.offset - end)) }
            end = max(end, field.offset + field.size)
        }
        if stride > end { runs.append((end, stride - end)) }
        return runs
    }

    /// FNV-1a over the canonical encoding of the fields, stride and alignment.
    public var hash64: UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        }
        func mix(_ value: Int) { unsafe withUnsafeBytes(of: UInt64(value).littleEndian) { unsafe mix($0) } }
        mix(stride)
        mix(alignment)
        for field in fields {
            mix(field.name.utf8)
            mix([0, field.type.rawValue])
            mix(field.offset)
            mix(field.count)
        }
        return hash
    }

    /// The differences between this schema (the file's) and `other` (a Swift type's), one line
    /// per field; empty when they match.
    public func differences(from other: RecordSchema, otherName: String) -> [String] {
        var lines: [String] = []
        if stride != other.stride {
            lines.append("stride: the file has \(stride) bytes, \(otherName) has \(other.stride)")
        }
        for field in fields {
            guard let theirs = other.field(named: field.name) else {
                lines.append("field '\(field.name)': in the file (\(field)), not in \(otherName)")
                continue
            }
            if theirs != field {
                lines.append("field '\(field.name)': the file has \(field), \(otherName) has \(theirs)")
            }
        }
        for field in other.fields where self.field(named: field.name) == nil {
            lines.append("field '\(field.name)': in \(otherName) (\(field)), not in the file")
        }
        return lines
    }

    /// `{ id: i64 @ 0, x: f64 @ 8 } stride 16`.
    public var description: String {
        "{ " + fields.map(\.description).joined(separator: ", ") + " } stride \(stride)"
    }
}

/// Why a schema is not valid.
public struct SchemaProblem: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}
