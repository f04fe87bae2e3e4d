import MemoryMappedFiles

// Schema evolution (docs/EVOLUTION.md): a table written with one schema is rewritten with
// another. Fields are matched by name; types widen on their own, narrow only when every stored
// value fits, and are dropped only when asked. The rewrite goes to a new, unnamed file beside
// the old one, which replaces the old path in one rename: the path always holds a whole table.

/// What to do beyond the rules when a table migrates.
public struct MigrationOptions: Sendable {
    /// Old field names to new ones (`--rename old=new`), beside the renames the target schema
    /// declares with `@Field(renamedFrom:)`.
    public var renames: [String: String]
    /// Values of added fields, by field name; other added fields are zero.
    public var defaults: [String: FieldValue]
    /// Old fields to drop. Dropping loses data, so a field of the old schema that the new one
    /// lacks must be named here.
    public var drops: Set<String>

    /// Options.
    public init(renames: [String: String] = [:], defaults: [String: FieldValue] = [:], drops: Set<String> = []) {
        self.renames = renames
        self.defaults = defaults
        self.drops = drops
    }
}

/// How one field of the new schema gets its value, or how an old one goes.
public struct MigrationStep: Sendable, Hashable, CustomStringConvertible {
    /// What happens to the field.
    public enum Kind: String, Sendable, Hashable {
        /// The same type at the same offset.
        case kept
        /// The same type at another offset.
        case moved
        /// A wider type that holds every value of the old one.
        case widened
        /// A narrower type: every stored value is checked to fit before anything is written.
        case narrowed
        /// New: zero, or its default.
        case added
        /// An old field, dropped as asked.
        case dropped
    }

    /// What happens.
    public let kind: Kind
    /// The field in the new schema (nil when dropped).
    public let target: RecordField?
    /// The field in the old schema (nil when added).
    public let source: RecordField?
    /// The value of an added field (nil: zero).
    public let defaultValue: FieldValue?

    /// Whether the field changed its name.
    public var isRenamed: Bool { source != nil && target != nil && source!.name != target!.name }

    /// One line, as `mrec migrate` prints the plan: `widened  qty: i32 @ 16 -> qty: i64 @ 16`.
    public var description: String {
        let word = kind.rawValue.padding(9)
        switch kind {
        case .added: return word + "\(target!)" + " = " + (defaultValue?.description ?? "0")
        case .dropped: return word + "\(source!)"
        case .narrowed:
            return word + "\(source!) -> \(target!)" + (isRenamed ? " (renamed)" : "")
                + " (checked: every stored value must fit)"
        default: return word + "\(source!) -> \(target!)" + (isRenamed ? " (renamed)" : "")
        }
    }
}

/// How a table of one schema becomes a table of another: a step per field, by name.
public struct MigrationPlan: Sendable {
    /// The old schema (the file's).
    public let source: RecordSchema
    /// The new schema.
    public let target: RecordSchema
    /// One step per field of the new schema, in its order, then the dropped fields.
    public let steps: [MigrationStep]

    /// Whether nothing changes: the same layout.
    public var isIdentity: Bool { source == target }

    /// Plans the migration from `source` to `target` by field names.
    /// - Throws: `schemaMismatch` for a field whose type cannot become the new one (say what a
    ///   custom stage should do), or an old field that would be dropped without being named in
    ///   `options.drops`; `invalidArgument` for a default that does not fit its field.
    public init(
        from source: RecordSchema, to target: RecordSchema, options: MigrationOptions = .init()
    ) throws(RecordTableError) {
        func refuse(_ message: String, code: RecordTableError.Code = .schemaMismatch) -> RecordTableError {
            RecordTableError(code, operation: "migrate", path: "", message: message)
        }
        var renames = options.renames  // old -> new
        for (new, old) in target.previousNames where renames[old] == nil { renames[old] = new }
        let newToOld = Dictionary(renames.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        for (old, new) in options.renames {
            guard source.field(named: old) != nil else {
                throw refuse("--rename \(old)=\(new): the old schema has no field '\(old)'", code: .invalidArgument)
            }
            guard target.field(named: new) != nil else {
                throw refuse("--rename \(old)=\(new): the new schema has no field '\(new)'", code: .invalidArgument)
            }
        }
        for name in options.defaults.keys where target.field(named: name) == nil {
            throw refuse("a default for '\(name)': the new schema has no such field", code: .invalidArgument)
        }
        for name in options.drops where source.field(named: name) == nil {
            throw refuse("dropping '\(name)': the old schema has no such field", code: .invalidArgument)
        }
        var steps: [MigrationStep] = []
        var used = Set<String>()
        for field in target.fields {
            let old =
                newToOld[field.name].flatMap { source.field(named: $0) }
                ?? (renames[field.name] == nil ? source.field(named: field.name) : nil)
            guard let old, !options.drops.contains(old.name) else {
                let value = options.defaults[field.name]
                if let value, let problem = FieldCodec.encodingProblem(value, for: field) {
                    throw refuse("the default for '\(field.name)': \(problem)", code: .invalidArgument)
                }
                steps.append(MigrationStep(kind: .added, target: field, source: nil, defaultValue: value))
                continue
            }
            used.insert(old.name)
            guard let change = FieldCodec.change(from: old, to: field) else {
                throw refuse(
                    "field '\(field.name)': \(old.type.name)\(old.count == 1 ? "" : "[\(old.count)]") cannot become "
                        + "\(field.type.name)\(field.count == 1 ? "" : "[\(field.count)]") by itself; give the migration a custom stage"
                )
            }
            let kind: MigrationStep.Kind =
                change == .same
                ? (old.offset == field.offset ? .kept : .moved)
                : change == .widen ? .widened : .narrowed
            steps.append(MigrationStep(kind: kind, target: field, source: old, defaultValue: nil))
        }
        let lost = source.fields.filter { !used.contains($0.name) }
        let unasked = lost.filter { !options.drops.contains($0.name) }
        guard unasked.isEmpty else {
            throw refuse(
                "the new schema has no field for \(unasked.map { "'\($0.name)'" }.joined(separator: ", ")); "
                    + "dropping loses data, so ask for it (MigrationOptions.drops, mrec migrate --drop), or rename it")
        }
        steps += lost.map { MigrationStep(kind: .dropped, target: nil, source: $0, defaultValue: nil) }
        self.source = source
        self.target = target
        self.steps = steps
    }

    /// The record transform this plan compiles to: plain integer operations (no Strings or
    /// Arrays touched per record), adjacent copies merged into one, and the defaults of added
    /// fields in a template record that each new record starts from.
    func transform() -> RecordTransform {
        var operations: [FieldOperation] = []
        var template = [UInt8](repeating: 0, count: target.stride)
        for step in steps {
            guard let target = step.target else { continue }
            if let source = step.source {
                operations.append(FieldOperation(source: source, target: target))
            } else if let value = step.defaultValue {
                let bytes = FieldCodec.encode(value, for: target)
                template.replaceSubrange(target.offset..<target.offset + bytes.count, with: bytes)
            }
        }
        let checked = operations.filter(\.needsCheck)
        let compiled = CompiledOperation.compile(operations)
        let usesTemplate = template.contains { $0 != 0 }
        let sourceStride = source.stride, targetStride = target.stride
        return unsafe RecordTransform(
            sourceStride: sourceStride, targetStride: targetStride,
            check: checked.isEmpty
                ? nil
                : { record in
                    for index in checked.indices {
                        if let problem = unsafe checked[index].problem(in: record) { return problem }
                    }
                    return nil
                },
            applyRecords: { source, target, count in
                unsafe compiled.withUnsafeBufferPointer { operations in
                    unsafe template.withUnsafeBytes { template in
                        for record in 0..<count {
                            let input = unsafe source + record &* sourceStride,
                                output = unsafe target + record &* targetStride
                            if usesTemplate {
                                unsafe output.copyMemory(from: template.baseAddress!, byteCount: targetStride)
                            }
                            for index in operations.indices { unsafe operations[index].apply(input, output) }
                        }
                    }
                }
            },
            targetSchema: target)
    }
}

/// One field's conversion as plain integers, for the per-record loop of a migration.
struct CompiledOperation {
    enum Kind: UInt8 { case copy, integer, float }
    var kind: Kind
    var sourceOffset: Int
    var targetOffset: Int
    /// Bytes to copy (`copy`), or elements to convert.
    var length: Int
    var sourceType: FieldType
    var targetType: FieldType

    /// The operations of `fields`, with copies that continue one another merged.
    static func compile(_ fields: [FieldOperation]) -> [CompiledOperation] {
        var operations: [CompiledOperation] = []
        for field in fields {
            let source = field.source!, target = field.target
            switch field.kind {
            case .copy:
                let length = min(source.size, target.size)
                if let last = operations.last, last.kind == .copy, last.sourceOffset + last.length == source.offset,
                    last.targetOffset + last.length == target.offset
                {
                    operations[operations.count - 1].length += length
                } else {
                    operations.append(
                        CompiledOperation(
                            kind: .copy, sourceOffset: source.offset, targetOffset: target.offset,
                            length: length, sourceType: source.type, targetType: target.type))
                }
            case .integer, .float:
                operations.append(
                    CompiledOperation(
                        kind: field.kind == .integer ? .integer : .float, sourceOffset: source.offset,
                        targetOffset: target.offset, length: target.count,
                        sourceType: source.type, targetType: target.type))
            }
        }
        return operations
    }

    @inline(__always)
    func apply(_ record: UnsafeRawPointer, _ output: UnsafeMutableRawPointer) {
        switch kind {
        case .copy:
            unsafe (output + targetOffset).copyMemory(from: record + sourceOffset, byteCount: length)
        case .integer:
            for element in 0..<length {
                let value = unsafe FieldCodec.loadInteger(record + sourceOffset + element * sourceType.size, sourceType)
                unsafe FieldCodec.storeInteger(value, output + targetOffset + element * targetType.size, targetType)
            }
        case .float:
            for element in 0..<length {
                let value = unsafe FieldCodec.loadDouble(record + sourceOffset + element * sourceType.size, sourceType)
                let address = unsafe output + targetOffset + element * targetType.size
                if targetType == .float64 {
                    unsafe address.storeBytes(of: value.bitPattern.littleEndian, as: UInt64.self)
                } else {
                    unsafe address.storeBytes(of: Float(value).bitPattern.littleEndian, as: UInt32.self)
                }
            }
        }
    }
}

/// A record-by-record rewrite: from records of one stride into zeroed records of another,
/// with an optional check that runs over every record before anything is written.
@safe struct RecordTransform: @unchecked Sendable {
    // SAFETY (Sendable): the closures capture only immutable values, and scratch memory used
    // from one thread at a time.
    let sourceStride: Int
    let targetStride: Int
    /// A problem with the record ("field 'qty': 70000 does not fit in i16"), or nil.
    let check: ((UnsafeRawPointer) -> String?)?
    /// Writes `count` new records from `count` old ones; the target bytes start as zeros.
    let applyRecords: (UnsafeRawPointer, UnsafeMutableRawPointer, Int) -> Void
    let targetSchema: RecordSchema

    /// This transform, then `next`, record by record through a scratch record.
    func then(_ next: RecordTransform) -> RecordTransform {
        let first = self
        let box = unsafe ScratchBox(
            UnsafeMutableRawPointer.allocate(byteCount: max(1, first.targetStride), alignment: 16))
        return unsafe RecordTransform(
            sourceStride: first.sourceStride, targetStride: next.targetStride,
            check: { record in
                if let problem = unsafe first.check?(record) { return problem }
                guard let secondCheck = unsafe next.check else { return nil }
                unsafe box.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: first.targetStride)
                unsafe first.applyRecords(record, box.pointer, 1)
                return unsafe secondCheck(UnsafeRawPointer(box.pointer))
            },
            applyRecords: { source, target, count in
                for record in 0..<count {
                    unsafe box.pointer.initializeMemory(as: UInt8.self, repeating: 0, count: first.targetStride)
                    unsafe first.applyRecords(source + record * first.sourceStride, box.pointer, 1)
                    unsafe next.applyRecords(UnsafeRawPointer(box.pointer), target + record * next.targetStride, 1)
                }
            },
            targetSchema: next.targetSchema)
    }
}

/// Scratch memory shared by a composed transform's closures; freed with the last of them.
@safe final class ScratchBox: @unchecked Sendable {
    // SAFETY (Sendable): a transform runs on one thread at a time.
    let pointer: UnsafeMutableRawPointer
    init(_ pointer: UnsafeMutableRawPointer) { unsafe self.pointer = unsafe pointer }
    deinit { unsafe pointer.deallocate() }
}

/// One field's conversion, compiled: copy, convert element by element, or fill with a default.
struct FieldOperation: Sendable {
    enum Kind: Sendable { case copy, integer, float }
    let kind: Kind
    let source: RecordField?
    let target: RecordField
    let needsCheck: Bool

    init(source: RecordField, target: RecordField) {
        self.source = source
        self.target = target
        let change = FieldCodec.change(from: source, to: target)!
        needsCheck = change == .narrow
        if source.type == target.type && (source.type == .char || source.type == .bytes || source.count == target.count)
        {
            kind = .copy
        } else if target.type.isFloat {
            kind = .float
        } else {
            kind = .integer
        }
    }

    /// Why this record's value does not fit the narrower field, or nil.
    func problem(in record: UnsafeRawPointer) -> String? {
        guard let source else { return nil }
        let name = target.name
        switch source.type {
        case .char:
            let bytes = unsafe UnsafeRawBufferPointer(start: record + source.offset, count: source.count)
            let length = unsafe bytes.firstIndex(of: 0) ?? bytes.count
            return length <= target.count
                ? nil : "field '\(name)': its text has \(length) bytes, more than char[\(target.count)] holds"
        case .bytes:
            let bytes = unsafe UnsafeRawBufferPointer(start: record + source.offset, count: source.count)
            return unsafe bytes[target.count...].allSatisfy({ $0 == 0 })
                ? nil
                : "field '\(name)': bytes past the first \(target.count) are not zero"
        default:
            for element in 0..<target.count {
                let address = unsafe record + source.offset + element * source.type.size
                if target.type.isFloat {
                    let value = unsafe FieldCodec.loadDouble(address, source.type)
                    if unsafe !FieldCodec.fitsExactly(value, address, source.type, in: target.type) {
                        return
                            unsafe "field '\(name)': \(FieldCodec.describe(address, source.type)) is not exactly representable as \(target.type.name)"
                    }
                } else if unsafe !FieldCodec.fits(FieldCodec.loadInteger(address, source.type), in: target.type) {
                    return
                        unsafe "field '\(name)': \(FieldCodec.describe(address, source.type)) does not fit in \(target.type.name)"
                }
            }
            return nil
        }
    }
}

/// Field conversions: which type may become which, and how values move between them.
enum FieldCodec {
    /// The change from one field to another: the same, wider, or narrower (checked); nil when
    /// the types cannot convert by themselves.
    enum Change { case same, widen, narrow }

    static func change(from old: RecordField, to new: RecordField) -> Change? {
        switch (old.type, new.type) {
        case (.char, .char), (.bytes, .bytes):
            return old.count == new.count ? .same : old.count < new.count ? .widen : .narrow
        case (.bool, .bool):
            return old.count == new.count ? .same : nil
        default:
            guard old.count == new.count else { return nil }
            if old.type == new.type { return .same }
            if isInteger(old.type) && isInteger(new.type) {
                let wider = new.type.size > old.type.size
                if old.type.isSigned == new.type.isSigned { return wider ? .widen : .narrow }
                return !old.type.isSigned && wider ? .widen : .narrow
            }
            if isInteger(old.type) && new.type.isFloat {
                let mantissa = new.type == .float64 ? 53 : 24
                return old.type.size * 8 - (old.type.isSigned ? 1 : 0) <= mantissa ? .widen : .narrow
            }
            if old.type == .float32 && new.type == .float64 { return .widen }
            if old.type == .float64 && new.type == .float32 { return .narrow }
            return nil
        }
    }

    static func isInteger(_ type: FieldType) -> Bool {
        [.int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64].contains(type)
    }

    /// An integer as a signed or unsigned 64-bit pattern, with its sign.
    struct Integer { let magnitude: UInt64; let negative: Bool }

    static func loadInteger(_ address: UnsafeRawPointer, _ type: FieldType) -> Integer {
        func signed(_ value: Int64) -> Integer { Integer(magnitude: value.magnitude, negative: value < 0) }
        switch type {
        case .int8: return unsafe signed(Int64(address.loadUnaligned(as: Int8.self)))
        case .int16: return unsafe signed(Int64(Int16(littleEndian: address.loadUnaligned(as: Int16.self))))
        case .int32: return unsafe signed(Int64(Int32(littleEndian: address.loadUnaligned(as: Int32.self))))
        case .int64: return unsafe signed(Int64(littleEndian: address.loadUnaligned(as: Int64.self)))
        case .uint8: return unsafe Integer(magnitude: UInt64(address.loadUnaligned(as: UInt8.self)), negative: false)
        case .uint16:
            return unsafe Integer(
                magnitude: UInt64(UInt16(littleEndian: address.loadUnaligned(as: UInt16.self))), negative: false)
        case .uint32:
            return unsafe Integer(
                magnitude: UInt64(UInt32(littleEndian: address.loadUnaligned(as: UInt32.self))), negative: false)
        default:
            return unsafe Integer(
                magnitude: UInt64(littleEndian: address.loadUnaligned(as: UInt64.self)), negative: false)
        }
    }

    /// Whether an integer fits a type.
    static func fits(_ value: Integer, in type: FieldType) -> Bool {
        let bits = UInt64(type.size * 8)
        if type.isSigned {
            let limit: UInt64 = 1 << (bits - 1)
            return value.negative ? value.magnitude <= limit : value.magnitude < limit
        }
        return !value.negative && (bits == 64 || value.magnitude < 1 << bits)
    }

    /// Stores an integer that fits (checked before, or widened).
    static func storeInteger(_ value: Integer, _ address: UnsafeMutableRawPointer, _ type: FieldType) {
        let bits = value.negative ? (~value.magnitude &+ 1) : value.magnitude  // two's complement
        switch type.size {
        case 1: unsafe address.storeBytes(of: UInt8(truncatingIfNeeded: bits), as: UInt8.self)
        case 2: unsafe address.storeBytes(of: UInt16(truncatingIfNeeded: bits).littleEndian, as: UInt16.self)
        case 4: unsafe address.storeBytes(of: UInt32(truncatingIfNeeded: bits).littleEndian, as: UInt32.self)
        default: unsafe address.storeBytes(of: bits.littleEndian, as: UInt64.self)
        }
    }

    /// A number as a Double (integers exactly up to 2^53; fitsExactly checks the rest).
    static func loadDouble(_ address: UnsafeRawPointer, _ type: FieldType) -> Double {
        switch type {
        case .float32:
            return unsafe Double(Float(bitPattern: UInt32(littleEndian: address.loadUnaligned(as: UInt32.self))))
        case .float64: return unsafe Double(bitPattern: UInt64(littleEndian: address.loadUnaligned(as: UInt64.self)))
        default:
            let value = unsafe loadInteger(address, type)
            return value.negative ? -Double(value.magnitude) : Double(value.magnitude)
        }
    }

    /// Whether the number at `address` survives the conversion to `type` exactly (NaN counts).
    static func fitsExactly(
        _ value: Double, _ address: UnsafeRawPointer, _ sourceType: FieldType, in type: FieldType
    ) -> Bool {
        if value.isNaN { return true }
        if isInteger(sourceType) {
            let integer = unsafe loadInteger(address, sourceType)
            let converted = type == .float32 ? Double(Float(value)) : value
            guard converted.isFinite, converted.magnitude < 18_446_744_073_709_551_616 else { return false }
            return UInt64(converted.magnitude) == integer.magnitude && (converted < 0) == integer.negative
        }
        return type == .float64 || Double(Float(value)) == value
    }

    static func describe(_ address: UnsafeRawPointer, _ type: FieldType) -> String {
        if type.isFloat { return unsafe loadDouble(address, type).description }
        let value = unsafe loadInteger(address, type)
        return (value.negative ? "-" : "") + String(value.magnitude)
    }

    /// Why `value` cannot be stored in `field`, or nil.
    static func encodingProblem(_ value: FieldValue, for field: RecordField) -> String? {
        switch (value, field.type) {
        case (.string(let text), .char):
            return text.utf8.count <= field.count ? nil : "'\(text)' is longer than char[\(field.count)]"
        case (.bytes(let bytes), .bytes):
            return bytes.count <= field.count ? nil : "\(bytes.count) bytes do not fit bytes[\(field.count)]"
        case (.bool, .bool): return nil
        case (.float(let number), let type) where type.isFloat:
            return type == .float32 && !number.isNaN && Double(Float(number)) != number
                ? "\(number) is not exactly an f32" : nil
        case (.int(let number), let type) where isInteger(type):
            return fits(Integer(magnitude: number.magnitude, negative: number < 0), in: type)
                ? nil : "\(number) does not fit \(type.name)"
        case (.uint(let number), let type) where isInteger(type):
            return fits(Integer(magnitude: number, negative: false), in: type)
                ? nil : "\(number) does not fit \(type.name)"
        case (.array, _): return "arrays take no default; they start as zeros"
        default: return "\(value) is not a value of type \(field.type.name)"
        }
    }

    /// The field's bytes for a value that fits (see encodingProblem); one element for arrays.
    static func encode(_ value: FieldValue, for field: RecordField) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: field.type.size)
        switch value {
        case .string(let text): bytes = Array(text.utf8) + [UInt8](repeating: 0, count: field.count - text.utf8.count)
        case .bytes(let raw): bytes = raw + [UInt8](repeating: 0, count: field.count - raw.count)
        case .bool(let flag): bytes = [flag ? 1 : 0]
        case .float(let number):
            bytes =
                unsafe field.type == .float64
                ? withUnsafeBytes(of: number.bitPattern.littleEndian, Array.init)
                : withUnsafeBytes(of: Float(number).bitPattern.littleEndian, Array.init)
        case .int(let number):
            unsafe bytes.withUnsafeMutableBytes {
                unsafe storeInteger(
                    Integer(magnitude: number.magnitude, negative: number < 0), $0.baseAddress!, field.type)
            }
        case .uint(let number):
            unsafe bytes.withUnsafeMutableBytes {
                unsafe storeInteger(Integer(magnitude: number, negative: false), $0.baseAddress!, field.type)
            }
        default: break
        }
        return bytes
    }
}

extension String {
    /// Left-aligned in `width` characters.
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
