import MemoryMappedFiles

/// The value of one field, decoded through a schema without a Swift type.
public enum FieldValue: Hashable, Sendable, CustomStringConvertible {
    /// A signed integer field.
    case int(Int64)
    /// An unsigned integer field.
    case uint(UInt64)
    /// A floating-point field.
    case float(Double)
    /// A Bool field holding 0 or 1.
    case bool(Bool)
    /// A Bool field holding another byte: damaged data.
    case invalidBool(UInt8)
    /// A `bytes` field (or array of them).
    case bytes([UInt8])
    /// A `char` field: UTF-8 text up to the first NUL (invalid UTF-8 is repaired).
    case string(String)
    /// A fixed array of numbers or Bools.
    case array([FieldValue])

    /// The value as text: numbers in Swift's shortest round-trip form (NaN as `nan` or `-nan`,
    /// without its payload), bytes in hex.
    public var description: String {
        switch self {
        case .int(let value): return String(value)
        case .uint(let value): return String(value)
        case .float(let value):
            // Every NaN is "nan" or "-nan": the sign survives a text round trip, the payload does not.
            return value.isNaN ? (value.sign == .minus ? "-nan" : "nan") : value.description
        case .bool(let value): return value ? "true" : "false"
        case .invalidBool(let byte): return "invalid(\(byte))"
        case .bytes(let bytes): return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        case .string(let text): return text
        case .array(let values): return "[" + values.map(\.description).joined(separator: ",") + "]"
        }
    }
}

/// Decoding of one field from a record's bytes; shared with the tool's raw-struct reader.
extension RecordField {
    /// The field's value in `record` (the record's bytes), read in `byteOrder`.
    public func value(in record: RawSpan, bigEndian: Bool = false) -> FieldValue {
        precondition(
            offset + size <= record.byteCount,
            "RecordField: '\(name)' lies outside a record of \(record.byteCount) bytes")
        switch type {
        case .bytes:
            return .bytes((0..<count).map { unsafe record.unsafeLoad(fromByteOffset: offset + $0, as: UInt8.self) })
        case .char:
            var text: [UInt8] = []
            for index in 0..<count {
                let byte = unsafe record.unsafeLoad(fromByteOffset: offset + index, as: UInt8.self)
                if byte == 0 { break }
                text.append(byte)
            }
            return .string(String(decoding: text, as: UTF8.self))
        default:
            guard count > 1 else { return element(in: record, at: offset, bigEndian: bigEndian) }
            return .array((0..<count).map { element(in: record, at: offset + $0 * type.size, bigEndian: bigEndian) })
        }
    }

    private func element(in record: RawSpan, at position: Int, bigEndian: Bool) -> FieldValue {
        // SAFETY: value(in:) checked that the field lies inside the record.
        unsafe record.withUnsafeBytes { bytes in
            let address = unsafe bytes.baseAddress! + position
            switch type {
            case .float32, .float64: return .float(unsafe FieldCodec.loadDouble(address, type, bigEndian: bigEndian))
            case .bool:
                let byte = unsafe UInt8(FieldCodec.loadBits(address, type))
                return byte <= 1 ? .bool(byte == 1) : .invalidBool(byte)
            case .bytes, .char: return .bytes([unsafe UInt8(FieldCodec.loadBits(address, type))])
            default:
                let value = unsafe FieldCodec.loadInteger(address, type, bigEndian: bigEndian)
                guard type.isSigned else { return .uint(value.magnitude) }
                return .int(value.negative ? Int64(bitPattern: ~value.magnitude &+ 1) : Int64(value.magnitude))
            }
        }
    }
}

/// A record read through its table's stored schema.
public struct DynamicRecord: Sendable, Hashable {
    /// The schema the record was read with.
    public let schema: RecordSchema
    /// The record's `stride` bytes.
    public let bytes: [UInt8]

    /// The value of the field with this name, or nil if there is none.
    public subscript(name: String) -> FieldValue? {
        schema.field(named: name).map { value(of: $0) }
    }

    /// The value of `field`.
    public func value(of field: RecordField) -> FieldValue {
        unsafe field.value(in: bytes.span.bytes)
    }
}

/// What ``DynamicRecordTable/verify(progress:)`` found, and what it checked.
public struct VerificationReport: Sendable {
    /// Damage: Bool bytes other than 0 or 1, a commit point past the capacity. Empty when clean.
    public var findings: [String]
    /// Not damage, but not what the format asks of writers: text that is not UTF-8, bytes
    /// after a text's NUL, padding that is not zero (files written before padding was zeroed).
    public var warnings: [String]
    /// Records read: every committed record.
    public var checkedRecords: Int
    /// What was checked in every record, in words: "2 Bool fields", "1 text field", "3 padding bytes".
    public var checks: [String]
    /// Whether the table is free of damage (warnings allowed).
    public var isClean: Bool { findings.isEmpty }
}

/// Any record table, read and written through its stored schema, with no Swift type:
/// what the `mrec` tool uses.
public final class DynamicRecordTable {
    let storage: TableStorage

    private init(storage: TableStorage) { self.storage = storage }

    /// Opens a table file; see ``RecordTable/open(path:access:durability:waitForWriter:)``.
    public static func open(
        path: String, access: TableAccess = .readOnly, durability: Durability = .batch, waitForWriter: Duration? = nil
    ) throws(RecordTableError) -> DynamicRecordTable {
        unsafe DynamicRecordTable(
            storage: try TableStorage.open(
                path: path, writable: access != .readOnly, sharedAppender: access == .sharedAppend,
                durability: durability, waitForWriter: waitForWriter))
    }

    /// Creates a table file with `schema`; see ``RecordTable/create(path:capacity:durability:metadata:)``.
    public static func create(
        path: String, schema: RecordSchema, capacity: Int = 0, durability: Durability = .batch,
        metadata: [(key: String, value: String)] = []
    ) throws(RecordTableError) -> DynamicRecordTable {
        DynamicRecordTable(
            storage: try TableStorage.create(
                path: path, schema: schema, metadata: metadata, capacity: capacity, durability: durability))
    }

    /// The table's file.
    public var path: String { storage.path }
    /// The schema stored in the file.
    public var schema: RecordSchema { storage.header.schema }
    /// The metadata stored in the file.
    public var metadata: [(key: String, value: String)] { storage.header.metadata }
    /// The number of records: the writer's count, or a reader's last snapshot.
    public var count: Int { unsafe storage.count }
    /// Records the file has room for.
    public var capacity: Int { unsafe storage.capacity }
    /// Where the records start in the file (a multiple of 4096).
    public var dataOffset: Int { storage.header.dataOffset }
    /// The number of the file that follows this one in its series, if the table is sealed
    /// (docs/FORMAT.md, "Series"); nil for a table that still takes records.
    public var sealedSuccessor: Int? { storage.sealedSuccessor() }
    /// The format version, as `major.minor`.
    public var formatVersion: String { "\(TableFormat.versionMajor).\(storage.header.versionMinor)" }
    /// The durability mode the file was created with.
    public var createdDurability: Durability { Durability(rawValue: storage.header.flags & 3) ?? .none }
    /// The latest commit point: its generation and count.
    public var committed: (generation: UInt64, count: Int) {
        (storage.committed.generation, storage.committed.count)
    }

    /// The record at `index`, decoded later field by field. Traps outside `0..<count`.
    public func record(at index: Int) -> DynamicRecord {
        DynamicRecord(
            schema: schema,
            bytes: withRecordBytes(at: index) { bytes in
                (0..<bytes.byteCount).map { unsafe bytes.unsafeLoad(fromByteOffset: $0, as: UInt8.self) }
            })
    }

    /// Calls `body` with the bytes of the record at `index`, without copying.
    public func withRecordBytes<Result>(at index: Int, _ body: (RawSpan) -> Result) -> Result {
        unsafe precondition(!storage.isClosed, "DynamicRecordTable: use of a closed table")
        unsafe precondition(
            index >= 0 && index < storage.count,
            unsafe "DynamicRecordTable: index \(index) is out of range for a table of \(storage.count) records")
        let stride = schema.stride
        // SAFETY: index < count <= capacity, so the record lies inside the mapping.
        let span = unsafe RawSpan(_unsafeStart: UnsafeRawPointer(storage.records + index * stride), byteCount: stride)
        return body(span)
    }

    /// Appends one record given as its `stride` bytes.
    public func append(bytes: RawSpan) throws(RecordTableError) {
        try stage(bytes: bytes, position: 0)
        try publishStaged(1)
    }

    /// Writes one record `position` places past the end without publishing it: readers, and
    /// the file after a crash, see none of the staged records until ``publishStaged(_:)``.
    /// An import stages every row, then publishes them at once or not at all.
    public func stage(bytes: RawSpan, position: Int) throws(RecordTableError) {
        precondition(
            bytes.byteCount == schema.stride,
            "DynamicRecordTable: a record has \(schema.stride) bytes, not \(bytes.byteCount)")
        precondition(position >= 0, "DynamicRecordTable: a negative staging position \(position)")
        let address = unsafe try storage.slotsForAppending(position + 1) + position * schema.stride
        // SAFETY: slotsForAppending made room for position + 1 records past the count.
        unsafe bytes.withUnsafeBytes { unsafe address.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Publishes the first `stagedCount` staged records, as one append.
    public func publishStaged(_ stagedCount: Int) throws(RecordTableError) {
        unsafe precondition(
            stagedCount >= 0 && storage.count + stagedCount <= storage.capacity,
            "DynamicRecordTable: \(stagedCount) records were not staged")
        unsafe try storage.publish(count: storage.count + stagedCount)
    }

    /// See ``RecordTable/advise(_:records:)``.
    public func advise(_ advice: MappingAdvice, records range: Range<Int>) { storage.advise(advice, records: range) }

    /// See ``RecordTable/refresh()``.
    @discardableResult
    public func refresh() throws(RecordTableError) -> Int { try storage.refresh() }

    /// See ``RecordTable/waitForRecords(beyond:timeout:strategy:)``.
    public func waitForRecords(
        beyond known: Int, timeout: Duration, strategy: WaitStrategy = .block
    ) throws(RecordTableError) -> Int {
        try storage.waitForRecords(beyond: known, timeout: timeout, strategy: strategy)
    }

    /// See ``RecordTable/updates()``.
    public func updates() throws(RecordTableError) -> TableUpdates {
        try TableUpdates(storage: storage)
    }

    /// Whether a process has the table open for writing.
    public func writerIsActive() throws(RecordTableError) -> Bool { try storage.writerIsActive() }

    /// See ``RecordTable/commit()``.
    public func commit() throws(RecordTableError) { try storage.commit() }

    /// See ``RecordTable/close()``.
    public func close() throws(RecordTableError) { try storage.close() }

    /// A full check beyond what `open` validates. Every committed record is read: its Bool
    /// bytes must be 0 or 1 (a finding otherwise); its text must be UTF-8 with only NULs after
    /// the first NUL, and its padding bytes zero (warnings otherwise). `progress` is called
    /// with the records checked so far, every 65,536 records.
    public func verify(progress: (Int) -> Void = { _ in }) -> VerificationReport {
        unsafe precondition(!storage.isClosed, "DynamicRecordTable: verify on a closed table")
        var findings: [String] = []
        if unsafe storage.committed.count > storage.capacity {
            findings.append(
                unsafe "the commit point's count \(storage.committed.count) is past the capacity \(storage.capacity)")
        }
        let plan = VerificationPlan(schema)
        var badBools = Tally(), badText = Tally(), dirtyPadding = Tally()
        var fold: UInt8 = 0
        let stride = schema.stride, count = unsafe storage.count
        for index in 0..<count {
            // SAFETY: index < count <= capacity: the record lies inside the mapping.
            let record = unsafe UnsafeRawBufferPointer(start: storage.records + index * stride, count: stride)
            for offset in plan.boolOffsets where unsafe record[offset] > 1 {
                badBools.note(index, plan.fieldName(at: offset))
                break
            }
            for field in plan.textFields
            where unsafe !Self.isCleanText(
                UnsafeRawBufferPointer(rebasing: record[field.offset..<field.offset + field.count]))
            {
                badText.note(index, field.name)
                break
            }
            for offset in plan.paddingOffsets where unsafe record[offset] != 0 {
                dirtyPadding.note(index, "byte \(offset)")
                break
            }
            if index & 0xFFFF == 0 { progress(index) }
        }
        progress(count)
        // Every byte is read, 8 at a time, so a page the file no longer has stops us here.
        let bytes = count * stride
        // SAFETY: the count * stride bytes from `records` lie inside the mapping, which is page-aligned.
        let words = unsafe UnsafeRawPointer(storage.records).assumingMemoryBound(to: UInt64.self)
        var folded: UInt64 = 0
        for index in 0..<bytes / 8 { unsafe folded ^= words[index] }
        for offset in bytes / 8 * 8..<bytes {
            unsafe fold ^= storage.records.load(fromByteOffset: offset, as: UInt8.self)
        }
        withExtendedLifetime((fold, folded)) {}
        if let text = badBools.summary("a Bool field holds a byte other than 0 or 1") { findings.append(text) }
        var warnings: [String] = []
        if let text = badText.summary(
            "a text field is not valid UTF-8, or has bytes other than NUL after its first NUL")
        {
            warnings.append(text)
        }
        if let text = dirtyPadding.summary(
            "padding is not zero (written before padding was zeroed, or by a foreign writer)")
        {
            warnings.append(text)
        }
        return VerificationReport(findings: findings, warnings: warnings, checkedRecords: count, checks: plan.checks)
    }

    /// Whether `bytes` is UTF-8 text up to its first NUL, and only NULs after it. ASCII, the
    /// common case, is checked byte by byte without making a String.
    private static func isCleanText(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var end = bytes.count, ascii = true
        for index in 0..<bytes.count {
            let byte = unsafe bytes[index]
            if byte == 0 { end = index; break }
            if byte >= 0x80 { ascii = false }
        }
        for index in end..<bytes.count where unsafe bytes[index] != 0 { return false }
        return unsafe ascii || String(validating: UnsafeRawBufferPointer(rebasing: bytes[..<end]), as: UTF8.self) != nil
    }
}

/// What ``DynamicRecordTable/verify(progress:)`` looks at in each record.
private struct VerificationPlan {
    let schema: RecordSchema
    let boolOffsets: [Int]
    let textFields: [RecordField]
    let paddingOffsets: [Int]
    init(_ schema: RecordSchema) {
        self.schema = schema
        boolOffsets = schema.boolOffsets
        textFields = schema.fields.filter { $0.type == .char }
        paddingOffsets = schema.paddingRuns.flatMap { $0.offset..<$0.offset + $0.length }
    }

    func fieldName(at offset: Int) -> String {
        schema.fields.first { $0.offset <= offset && offset < $0.offset + $0.size }?.name ?? "?"
    }

    /// The checks, in words.
    var checks: [String] {
        func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }
        var checks = ["every byte read"]
        let bools = schema.fields.filter { $0.type == .bool }.count
        if bools > 0 { checks.append(counted(bools, "Bool field")) }
        if !textFields.isEmpty { checks.append(counted(textFields.count, "text field")) }
        if !paddingOffsets.isEmpty { checks.append(counted(paddingOffsets.count, "padding byte")) }
        return checks
    }
}

/// Records with one kind of problem: how many, and the first few.
private struct Tally {
    var count = 0
    var examples: [String] = []

    mutating func note(_ index: Int, _ place: String) {
        count += 1
        if examples.count < 5 { examples.append("record \(index) (\(place))") }
    }

    func summary(_ problem: String) -> String? {
        guard count > 0 else { return nil }
        let more = count > examples.count ? ", and \(count - examples.count) more" : ""
        return "\(count) record\(count == 1 ? "" : "s"): \(problem): \(examples.joined(separator: ", "))\(more)"
    }
}
