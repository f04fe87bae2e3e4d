// Field values: how a stored number is read (the one decoder, for migrations and for reading
// through a stored schema), which type may become which, and how values move between them
// (integers exactly, floats checked, text and bytes by length).

import MemoryMappedFiles

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

    /// The bits of one element of `type` at `address` (any alignment), in the byte order given,
    /// zero-extended to 64 bits: the one place where a stored number is read, by the migration's
    /// transforms and by ``RecordField/value(in:bigEndian:)`` alike.
    @inline(__always)
    static func loadBits(_ address: UnsafeRawPointer, _ type: FieldType, bigEndian: Bool = false) -> UInt64 {
        switch type.size {
        case 1: return unsafe UInt64(address.loadUnaligned(as: UInt8.self))
        case 2:
            let raw = unsafe address.loadUnaligned(as: UInt16.self)
            return UInt64(bigEndian ? UInt16(bigEndian: raw) : UInt16(littleEndian: raw))
        case 4:
            let raw = unsafe address.loadUnaligned(as: UInt32.self)
            return UInt64(bigEndian ? UInt32(bigEndian: raw) : UInt32(littleEndian: raw))
        default:
            let raw = unsafe address.loadUnaligned(as: UInt64.self)
            return bigEndian ? UInt64(bigEndian: raw) : UInt64(littleEndian: raw)
        }
    }

    /// The integer of `type` at `address`, with its sign.
    @inline(__always)
    static func loadInteger(_ address: UnsafeRawPointer, _ type: FieldType, bigEndian: Bool = false) -> Integer {
        let bits = unsafe loadBits(address, type, bigEndian: bigEndian)
        guard type.isSigned else { return Integer(magnitude: bits, negative: false) }
        let value: Int64
        switch type.size {
        case 1: value = Int64(Int8(truncatingIfNeeded: bits))
        case 2: value = Int64(Int16(truncatingIfNeeded: bits))
        case 4: value = Int64(Int32(truncatingIfNeeded: bits))
        default: value = Int64(bitPattern: bits)
        }
        return Integer(magnitude: value.magnitude, negative: value < 0)
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
    static func loadDouble(_ address: UnsafeRawPointer, _ type: FieldType, bigEndian: Bool = false) -> Double {
        switch type {
        case .float32: return unsafe Double(Float(bitPattern: UInt32(loadBits(address, type, bigEndian: bigEndian))))
        case .float64: return unsafe Double(bitPattern: loadBits(address, type, bigEndian: bigEndian))
        default:
            let value = unsafe loadInteger(address, type, bigEndian: bigEndian)
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
