@_spi(Reflection) import Swift

/// A Swift struct that can be a record of a table: `BitwiseCopyable`, with its schema.
///
/// Let the `@MappedRecord` macro conform a struct: it lists every stored property, in
/// declaration order, so no field can be forgotten.
///
/// ```swift
/// @MappedRecord
/// struct Trade {
///     var id: Int64
///     var price: Double
///     var qty: Int32
///     var side: UInt8
/// }
/// ```
///
/// Field types: every integer and floating-point type, `Bool`, `InlineArray<N, T>` of those,
/// ``MappedString`` (`char[N]`), ``MappedBytes`` (`bytes[N]`), and nested `@MappedRecord`
/// structs, whose fields are flattened into dotted names (`position.x`).
public protocol MappedRecord: BitwiseCopyable {
    /// The record's layout.
    static var schema: RecordSchema { get }
}

#if MappedRecordMacro
/// Makes a struct a ``MappedRecord``: generates its `schema` from its stored properties, in
/// declaration order, with offsets from `MemoryLayout.offset(of:)`. Computed and static
/// properties are ignored; `String`, `Array`, optionals, pointers, references and property
/// wrappers are refused with a message that says what to use instead.
@attached(extension, conformances: MappedRecord, names: named(schema))
public macro MappedRecord() = #externalMacro(module: "MappedRecordMacros", type: "MappedRecordMacro")

/// Stores this property under another field name in the file.
@attached(peer)
public macro Field(_ name: String) = #externalMacro(module: "MappedRecordMacros", type: "FieldMacro")

/// Records the field's previous name, for schema evolution: a file that has the old name
/// maps its field to this property.
@attached(peer)
public macro Field(renamedFrom previousName: String) = #externalMacro(module: "MappedRecordMacros", type: "FieldMacro")

/// Another field name in the file, and the previous one.
@attached(peer)
public macro Field(_ name: String, renamedFrom previousName: String) =
    #externalMacro(module: "MappedRecordMacros", type: "FieldMacro")

/// A stored property that holds no field: bytes the file leaves unused (`mrec schema --swift`
/// declares gaps this way). Writes store zeros there.
@attached(peer)
public macro Padding() = #externalMacro(module: "MappedRecordMacros", type: "PaddingMacro")
#endif

extension RecordSchema {
    /// The schema of a Swift record type from its fields' key paths; what `@MappedRecord`
    /// generates. Traps, naming the property, when the list leaves out a stored property
    /// (use ``FieldDeclaration/padding(_:)`` for one that holds no field), and on fields
    /// that overlap: these are mistakes in code.
    public init<Record: BitwiseCopyable>(_ type: Record.Type, fields declarations: [FieldDeclaration<Record>]) {
        do {
            try self.init(
                fields: declarations.flatMap(\.fields),
                stride: MemoryLayout<Record>.stride, alignment: MemoryLayout<Record>.alignment)
        } catch {
            fatalError("RecordSchema for \(Record.self): \(error.description)")
        }
        previousNames = Dictionary(
            declarations.compactMap { declaration in
                declaration.previousName.map { (declaration.fields[0].name, $0) }
            }, uniquingKeysWith: { first, _ in first })
        let missing = Self.undeclaredProperties(of: Record.self, declared: declarations.map(\.declaredBytes))
        if !missing.isEmpty {
            fatalError(
                """
                RecordSchema for \(Record.self): the stored propert\(missing.count == 1 ? "y" : "ies") \
                \(missing.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") not in the schema, so \
                \(missing.count == 1 ? "its" : "their") bytes would be written but never read back. Add a .field for \
                each (.padding for bytes the file leaves unused), or declare the type with @MappedRecord. \
                If it is declared with @MappedRecord already, the property is one the macro cannot see: \
                one added by another macro or an extension's macro, or declared where no macro looks
                """)
        }
    }

    /// Stored properties of `type` (recursively, for partly declared structs) whose bytes no
    /// declaration covers, as "'name' (Type, N bytes at offset O)".
    static func undeclaredProperties(
        of type: Any.Type, declared: [Range<Int>], base: Int = 0, prefix: String = ""
    ) -> [String] {
        func isCovered(_ range: Range<Int>) -> Bool {
            range.allSatisfy { byte in declared.contains { $0.contains(byte) } }
        }
        var missing: [String] = []
        _ = unsafe _forEachField(of: type) { name, offset, fieldType, _ in
            let fieldName = unsafe prefix + String(cString: name)
            let size = _openExistential(fieldType, do: byteSize)
            let range = base + offset..<base + offset + size
            guard size > 0, !isCovered(range) else { return true }
            let partly = range.contains { byte in declared.contains { $0.contains(byte) } }
            let inner =
                partly
                ? undeclaredProperties(
                    of: fieldType, declared: declared, base: range.lowerBound, prefix: fieldName + ".") : []
            missing +=
                inner.isEmpty ? ["'\(fieldName)' (\(fieldType), \(size) bytes at offset \(range.lowerBound))"] : inner
            return true
        }
        return missing
    }
}

/// `MemoryLayout<T>.size`, for an opened metatype.
private func byteSize<T>(_: T.Type) -> Int { MemoryLayout<T>.size }

/// A field declared from a key path, for ``RecordSchema/init(_:fields:)``.
public struct FieldDeclaration<Record>: Sendable {
    /// The fields it declares: one, or a nested record's fields, flattened; none for padding.
    let fields: [RecordField]
    /// The bytes of the record that it accounts for: the whole stored property.
    let declaredBytes: Range<Int>
    /// The field's previous name, for schema evolution.
    let previousName: String?

    /// The field `name`, stored at `keyPath`; its offset comes from `MemoryLayout.offset(of:)`.
    /// - Parameters:
    ///   - name: The field's name in the file.
    ///   - keyPath: The stored property that holds it.
    ///   - previousName: The name the field had in older files (schema evolution).
    public static func field<Value: RecordFieldValue>(
        _ name: String, _ keyPath: KeyPath<Record, Value> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        let offset = storedOffset(of: keyPath, name)
        precondition(
            MemoryLayout<Value>.size == Value.fieldType.size * Value.fieldCount,
            "RecordSchema: field '\(name)' of type \(Value.self) is not a packed array of \(Value.fieldType)")
        return FieldDeclaration(
            fields: [RecordField(name: name, type: Value.fieldType, offset: offset, count: Value.fieldCount)],
            declaredBytes: offset..<offset + MemoryLayout<Value>.size, previousName: previousName)
    }

    /// A nested record at `keyPath`: its fields, flattened into `name.field` at their offsets.
    public static func field<Value: MappedRecord>(
        _ name: String, _ keyPath: KeyPath<Record, Value> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        let offset = storedOffset(of: keyPath, name)
        let fields = Value.schema.fields.map { inner in
            RecordField(
                name: name + "." + inner.name, type: inner.type, offset: offset + inner.offset, count: inner.count)
        }
        return FieldDeclaration(
            fields: fields, declaredBytes: offset..<offset + MemoryLayout<Value>.size, previousName: previousName)
    }

    /// A stored property that holds no field: bytes the file leaves unused. Typed writes store
    /// zeros there, as in every other byte no field covers.
    public static func padding<Value: BitwiseCopyable>(_ keyPath: KeyPath<Record, Value> & Sendable) -> FieldDeclaration
    {
        let offset = storedOffset(of: keyPath, "padding")
        return FieldDeclaration(
            fields: [], declaredBytes: offset..<offset + MemoryLayout<Value>.size, previousName: nil)
    }

    private static func storedOffset<Value>(of keyPath: KeyPath<Record, Value>, _ name: String) -> Int {
        guard let offset = MemoryLayout<Record>.offset(of: keyPath) else {
            fatalError(
                "RecordSchema: the key path for field '\(name)' is not a stored property of \(Record.self) with an offset (a property with willSet or didSet has none; so has a computed one)"
            )
        }
        return offset
    }

    // Types that cannot be fields, refused at compile time with a message that says why.

    /// Unavailable: text has no fixed size.
    @available(
        *, unavailable,
        message: "String has no fixed size in a file; use MappedString<N> for UTF-8 text of up to N bytes"
    )
    public static func field(
        _ name: String, _ keyPath: KeyPath<Record, String> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        fatalError("unavailable")
    }

    /// Unavailable: an Array's elements live on the heap.
    @available(*, unavailable, message: "an Array stores its elements on the heap; use InlineArray<N, Element>")
    public static func field<Element>(
        _ name: String, _ keyPath: KeyPath<Record, [Element]> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        fatalError("unavailable")
    }

    /// Unavailable: an Optional has no fixed layout.
    @available(
        *, unavailable,
        message: "an Optional has no fixed layout in a file; store a sentinel value, or a Bool field beside the value"
    )
    public static func field<Wrapped>(
        _ name: String, _ keyPath: KeyPath<Record, Wrapped?> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        fatalError("unavailable")
    }

    /// Unavailable: an enum loaded from file bytes may be no valid case. (A raw-value struct whose
    /// every bit pattern is valid, such as an `OptionSet`, conforms to ``RecordFieldValue`` instead.)
    @available(
        *, unavailable,
        message:
            "an enum loaded from file bytes may hold no valid case, which is undefined behaviour; store its rawValue (such as UInt8) and convert. A struct whose every bit pattern is valid (an OptionSet) can conform to RecordFieldValue"
    )
    public static func field<Value: RawRepresentable>(
        _ name: String, _ keyPath: KeyPath<Record, Value> & Sendable, renamedFrom previousName: String? = nil
    ) -> FieldDeclaration {
        fatalError("unavailable")
    }
}
