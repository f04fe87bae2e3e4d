/// The type of a field in a record, as the file stores it (one byte).
///
/// Every value is little-endian. `bool` is one byte, 0 or 1. `bytes` and `char` are
/// fixed arrays of bytes; `char` holds UTF-8 text padded with NUL bytes.
public enum FieldType: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case int8 = 1, int16 = 2, int32 = 3, int64 = 4
    case uint8 = 5, uint16 = 6, uint32 = 7, uint64 = 8
    case float32 = 9, float64 = 10
    case bool = 11
    /// Raw bytes; with a count, a fixed byte array.
    case bytes = 12
    /// UTF-8 text in a fixed array of bytes, padded with NUL.
    case char = 13

    /// The size of one element in bytes.
    public var size: Int {
        switch self {
        case .int8, .uint8, .bool, .bytes, .char: return 1
        case .int16, .uint16: return 2
        case .int32, .uint32, .float32: return 4
        case .int64, .uint64, .float64: return 8
        }
    }

    /// The short name used in schemas and by the tool: `i8` … `i64`, `u8` … `u64`, `f32`, `f64`,
    /// `bool`, `bytes`, `char`.
    public var name: String {
        switch self {
        case .int8: return "i8"
        case .int16: return "i16"
        case .int32: return "i32"
        case .int64: return "i64"
        case .uint8: return "u8"
        case .uint16: return "u16"
        case .uint32: return "u32"
        case .uint64: return "u64"
        case .float32: return "f32"
        case .float64: return "f64"
        case .bool: return "bool"
        case .bytes: return "bytes"
        case .char: return "char"
        }
    }

    /// The type with a short name, such as `i64`.
    public init?(name: String) {
        guard let type = FieldType.allCases.first(where: { $0.name == name }) else { return nil }
        self = type
    }

    /// The numpy dtype code of one element, little-endian: `<i8`, `<f8`, `?`, `V1`, `S1` ….
    public var numpyCode: String {
        switch self {
        case .int8: return "i1"
        case .uint8: return "u1"
        case .bool: return "?"
        case .bytes: return "V1"
        case .char: return "S1"
        default: return "<" + (isFloat ? "f" : isSigned ? "i" : "u") + String(size)
        }
    }

    /// Whether the type is a signed integer.
    public var isSigned: Bool { [.int8, .int16, .int32, .int64].contains(self) }
    /// Whether the type is a floating-point number.
    public var isFloat: Bool { self == .float32 || self == .float64 }

    /// `name`.
    public var description: String { name }
}

/// A Swift type that can be a field of a record: a scalar whose every bit pattern
/// the file may hold is valid, or Bool, which is checked on load.
public protocol RecordFieldValue: BitwiseCopyable {
    /// The type of one element as the file stores it.
    static var fieldType: FieldType { get }
    /// The number of elements: 1 for scalars, N for fixed arrays.
    static var fieldCount: Int { get }
}

extension RecordFieldValue {
    /// One element.
    public static var fieldCount: Int { 1 }
}

extension Int8: RecordFieldValue {
    /// `.int8`.
    public static var fieldType: FieldType { .int8 }
}
extension Int16: RecordFieldValue {
    /// `.int16`.
    public static var fieldType: FieldType { .int16 }
}
extension Int32: RecordFieldValue {
    /// `.int32`.
    public static var fieldType: FieldType { .int32 }
}
extension Int64: RecordFieldValue {
    /// `.int64`.
    public static var fieldType: FieldType { .int64 }
}
extension UInt8: RecordFieldValue {
    /// `.uint8`.
    public static var fieldType: FieldType { .uint8 }
}
extension UInt16: RecordFieldValue {
    /// `.uint16`.
    public static var fieldType: FieldType { .uint16 }
}
extension UInt32: RecordFieldValue {
    /// `.uint32`.
    public static var fieldType: FieldType { .uint32 }
}
extension UInt64: RecordFieldValue {
    /// `.uint64`.
    public static var fieldType: FieldType { .uint64 }
}
extension Float: RecordFieldValue {
    /// `.float32`.
    public static var fieldType: FieldType { .float32 }
}
extension Double: RecordFieldValue {
    /// `.float64`.
    public static var fieldType: FieldType { .float64 }
}
extension Bool: RecordFieldValue {
    /// `.bool`.
    public static var fieldType: FieldType { .bool }
}

/// A fixed array of scalars, such as `InlineArray<4, Float>`: a field with a count.
extension InlineArray: RecordFieldValue where Element: RecordFieldValue {
    /// The element's type.
    public static var fieldType: FieldType { Element.fieldType }
    /// The array's length times the element's own count.
    public static var fieldCount: Int { count * Element.fieldCount }
}

/// Fixed-size UTF-8 text, padded with NUL bytes: a `char` field of `size` bytes
/// (`MappedString<16>` is `char[16]`).
public struct MappedString<let size: Int>: RecordFieldValue, Equatable, Sendable, CustomStringConvertible,
    ExpressibleByStringLiteral
{
    /// The raw bytes.
    public var bytes: InlineArray<size, UInt8>

    /// The element type, `char`.
    public static var fieldType: FieldType { .char }
    /// The byte count.
    public static var fieldCount: Int { size }

    /// Stores `text`, cut at `size` bytes (at a character boundary) and padded with NUL.
    public init(_ text: String) {
        bytes = InlineArray(repeating: 0)
        var used = 0
        for character in text {
            let utf8 = Array(String(character).utf8)
            guard used + utf8.count <= size else { break }
            for byte in utf8 { bytes[used] = byte; used += 1 }
        }
    }

    /// Stores a literal, as ``init(_:)`` does.
    public init(stringLiteral text: String) { self.init(text) }

    /// The text up to the first NUL; invalid UTF-8 is repaired.
    public var string: String {
        var result: [UInt8] = []
        for index in 0..<size {
            if bytes[index] == 0 { break }
            result.append(bytes[index])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// `string`.
    public var description: String { string }

    /// Equal when the bytes are equal.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        (0..<size).allSatisfy { lhs.bytes[$0] == rhs.bytes[$0] }
    }
}

/// Fixed-size raw bytes: a `bytes` field of `size` bytes (`MappedBytes<16>` is `bytes[16]`).
public struct MappedBytes<let size: Int>: RecordFieldValue, Equatable, Sendable, CustomStringConvertible {
    /// The raw bytes.
    public var bytes: InlineArray<size, UInt8>

    /// The element type, `bytes`.
    public static var fieldType: FieldType { .bytes }
    /// The byte count.
    public static var fieldCount: Int { size }

    /// All zeros.
    public init() { bytes = InlineArray(repeating: 0) }

    /// The first `size` bytes of `source`, padded with zeros.
    public init(_ source: some Sequence<UInt8>) {
        self.init()
        for (index, byte) in zip(0..<size, source) { bytes[index] = byte }
    }

    /// The byte at `index`; traps outside `0..<size`.
    public subscript(index: Int) -> UInt8 {
        get { bytes[index] }
        set { bytes[index] = newValue }
    }

    /// The bytes in hex, as `mrec dump` prints them.
    public var description: String {
        (0..<size).map { bytes[$0] < 16 ? "0" + String(bytes[$0], radix: 16) : String(bytes[$0], radix: 16) }.joined()
    }

    /// Equal when the bytes are equal.
    public static func == (lhs: Self, rhs: Self) -> Bool {
        (0..<size).allSatisfy { lhs.bytes[$0] == rhs.bytes[$0] }
    }
}
