// A migration's per-record work: field operations compiled to plain integers, applied with
// no allocation and no call per record, and chained through versioned stages.

import MemoryMappedFiles

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
