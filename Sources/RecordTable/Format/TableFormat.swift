// The byte layout of a table file, version 1. docs/FORMAT.md is the specification;
// this file encodes and decodes it. Every value is little-endian.
//
//   0      fixed header (64 bytes used, 512 reserved)
//   512    commit slot 0 (64 bytes, in its own 512-byte sector)
//   1024   commit slot 1
//   1536   live area: boot identifier and live count
//   2048   schema: 64-byte field entries, then metadata entries
//   dataOffset (a multiple of 4096): records, `stride` bytes apart

import MemoryMappedFiles

@usableFromInline
enum TableFormat {
    static let magic: [UInt8] = Array("MRECTBL".utf8) + [0]
    static let byteOrderMark: UInt32 = 0x0A0B_0C0D
    static let versionMajor: UInt16 = 1
    /// 1: the doorbell in the live area; 2: shared appenders and the seal mark (docs/FORMAT.md).
    static let versionMinor: UInt16 = 2
    /// Flag bits 16…31 are features a reader must understand; version 1 defines none.
    static let incompatibleFlagsMask: UInt32 = 0xFFFF_0000
    static let slotOffsets = [512, 1024]
    static let slotSize = 64
    static let liveOffset = 1536
    @usableFromInline static let liveCountOffset = liveOffset + 16
    static let schemaOffset = 2048
    static let fieldEntrySize = 64
    static let pageSize = 4096
    /// The byte the writer locks (an OFD lock): one writer at a time.
    static let writerLockBytes = 0..<1
    /// In the live area: 0, or the seal mark naming the file that follows in a series (minor 2).
    static let sealWordOffset = liveOffset + 32
    static let maximumMetadataBytes = 1 << 20

    // Offsets in the fixed header (docs/FORMAT.md, "Fixed header"): the one place they are written.
    static let byteOrderMarkOffset = 8
    static let versionMajorOffset = 12
    static let versionMinorOffset = 14
    static let checksumOffset = 16
    static let flagsOffset = 20
    static let strideOffset = 24
    static let alignmentOffset = 28
    static let dataOffsetOffset = 32
    static let fieldCountOffset = 40
    static let metadataCountOffset = 44
    static let schemaHashOffset = 48
    static let staticLengthOffset = 56
    static let fixedHeaderSize = 64

    // Offsets in a field entry of the schema region (docs/FORMAT.md, "Schema region").
    static let fieldNameBytes = 48
    static let fieldTypeOffset = 48
    static let fieldOffsetOffset = 52
    static let fieldCountInEntryOffset = 56

    // Offsets in a commit slot (docs/FORMAT.md, "Commit slots").
    static let slotGenerationOffset = 0
    static let slotCountOffset = 8
    static let slotCapacityOffset = 16
    static let slotChecksumOffset = 56
}

/// A problem found while decoding a file; the table layer turns it into a `RecordTableError`.
struct FormatProblem: Error {
    enum Kind { case notATable, byteOrderMismatch, unsupportedVersion, corrupt }
    let kind: Kind
    let message: String
    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// What the header says, apart from the commit slots and the live area.
struct TableHeader: Equatable, Sendable {
    var schema: RecordSchema
    var metadata: [(key: String, value: String)]
    var flags: UInt32
    var versionMinor: UInt16
    var dataOffset: Int

    static func == (lhs: TableHeader, rhs: TableHeader) -> Bool {
        lhs.schema == rhs.schema && lhs.flags == rhs.flags && lhs.dataOffset == rhs.dataOffset
            && lhs.metadata.elementsEqual(rhs.metadata, by: { $0.key == $1.key && $0.value == $1.value })
    }
}

/// A commit point: the count, and the capacity it was committed with.
struct CommitSlot: Equatable {
    var generation: UInt64
    var count: Int
    var capacity: Int
}

/// What the count rule chose (docs/FORMAT.md, "Which count to use").
enum CountChoice: Equatable {
    /// The count to use.
    case count(Int)
    /// Neither commit slot is valid: the file is damaged.
    case noCommitPoint
    /// The count to use lies past the end of the file (the commit point's, the live one having
    /// failed its own tests): the file was truncated, or the mapping is older than a growth.
    case pastTheEnd(Int)
}

extension TableFormat {
    /// The count a reader uses: docs/FORMAT.md, "Which count to use". Every reader of the
    /// library (open, refresh, waiting, the updates watcher) decides through this one function.
    ///
    /// 1. No valid commit slot: the file is damaged, whatever the live word says.
    /// 2. This boot's live count, if its check holds and it is at most the capacity.
    /// 3. Else the commit point's count, if it is at most the capacity.
    /// 4. Else the count lies past the end.
    ///
    /// A caller whose mapping may be older than the file reads the size again and remaps once
    /// before it takes `pastTheEnd` (or a live count above its mapping) as damage.
    /// - Parameters:
    ///   - liveWord: The live word, if the live area carries this boot's identifier; else nil.
    ///   - commitPoint: The latest valid commit slot, if any.
    ///   - capacity: Records the file has room for, from the size the caller mapped.
    static func chooseCount(liveWord: UInt64?, commitPoint: CommitSlot?, capacity: Int) -> CountChoice {
        guard let commitPoint else { return .noCommitPoint }
        if let liveWord, let live = LiveCount.count(liveWord), live <= capacity { return .count(live) }
        return commitPoint.count <= capacity ? .count(commitPoint.count) : .pastTheEnd(commitPoint.count)
    }

    /// The count the rule would pick if the file had room for every count: what a reader
    /// compares with its mapping to learn whether to read the file's size again.
    static func preferredCount(liveWord: UInt64?, commitPoint: CommitSlot?) -> Int? {
        if let liveWord, let live = LiveCount.count(liveWord) { return live }
        return commitPoint?.count
    }
}

// MARK: - Little-endian access

// Untrusted bytes (a header read from a file) are decoded through `RawSpan`, whose bounds checks
// stay in release builds: a decoding bug traps instead of reading past the header.
extension RawSpan {
    /// The little-endian integer at `offset`; traps if it does not lie inside the span.
    func loadLittleEndian<T: FixedWidthInteger & BitwiseCopyable>(_ offset: Int, as type: T.Type) -> T {
        unsafe T(littleEndian: unsafeLoadUnaligned(fromByteOffset: offset, as: T.self))
    }

    /// The byte at `offset`; traps if it does not lie inside the span.
    func byte(at offset: Int) -> UInt8 {
        unsafe unsafeLoad(fromByteOffset: offset, as: UInt8.self)
    }

    /// The bytes of `range` as text, if they are valid UTF-8.
    func utf8String(_ range: Range<Int>) -> String? {
        unsafe extracting(range).withUnsafeBytes { unsafe String(validating: $0, as: UTF8.self) }
    }

    /// CRC-32C of the bytes of `range`, continuing `crc`.
    func crc32c(_ range: Range<Int>, continuing crc: UInt32 = 0) -> UInt32 {
        unsafe extracting(range).withUnsafeBytes { unsafe CRC32C.checksum($0, continuing: crc) }
    }
}

extension UnsafeRawBufferPointer {
    func loadLittleEndian<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        // SAFETY: every caller checks offset + size <= count first (the header is at least a page).
        unsafe T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawBufferPointer {
    func storeLittleEndian<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        unsafe storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
    }
}

// MARK: - Encoding

extension TableHeader {
    /// The metadata entries' encoded size: 2 + 2 + key + value bytes each, padded to 8.
    static func metadataSize(_ metadata: [(key: String, value: String)]) -> Int {
        metadata.reduce(0) { $0 + (4 + $1.key.utf8.count + $1.value.utf8.count + 7) & ~7 }
    }

    /// The data offset for a schema and metadata: the first page after them.
    static func dataOffset(schema: RecordSchema, metadata: [(key: String, value: String)]) -> Int {
        let end = TableFormat.schemaOffset + schema.fields.count * TableFormat.fieldEntrySize + metadataSize(metadata)
        return max(TableFormat.pageSize, (end + TableFormat.pageSize - 1) / TableFormat.pageSize * TableFormat.pageSize)
    }

    /// The bytes of the whole header, `[0, dataOffset)`, with slot 0 committing `count` 0.
    func encoded(capacity: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: dataOffset)
        let staticLength = schema.fields.count * TableFormat.fieldEntrySize + Self.metadataSize(metadata)
        unsafe bytes.withUnsafeMutableBytes { buffer in
            unsafe buffer.copyBytes(from: TableFormat.magic)
            unsafe buffer.storeLittleEndian(TableFormat.byteOrderMark, at: TableFormat.byteOrderMarkOffset)
            unsafe buffer.storeLittleEndian(TableFormat.versionMajor, at: TableFormat.versionMajorOffset)
            unsafe buffer.storeLittleEndian(versionMinor, at: TableFormat.versionMinorOffset)
            unsafe buffer.storeLittleEndian(flags, at: TableFormat.flagsOffset)
            unsafe buffer.storeLittleEndian(UInt32(schema.stride), at: TableFormat.strideOffset)
            unsafe buffer.storeLittleEndian(UInt32(schema.alignment), at: TableFormat.alignmentOffset)
            unsafe buffer.storeLittleEndian(UInt64(dataOffset), at: TableFormat.dataOffsetOffset)
            unsafe buffer.storeLittleEndian(UInt32(schema.fields.count), at: TableFormat.fieldCountOffset)
            unsafe buffer.storeLittleEndian(UInt32(metadata.count), at: TableFormat.metadataCountOffset)
            unsafe buffer.storeLittleEndian(schema.hash64, at: TableFormat.schemaHashOffset)
            unsafe buffer.storeLittleEndian(UInt32(staticLength), at: TableFormat.staticLengthOffset)
            var offset = TableFormat.schemaOffset
            for field in schema.fields {
                let name = Array(field.name.utf8)
                unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + name.count]).copyBytes(
                    from: name)
                unsafe buffer[offset + TableFormat.fieldTypeOffset] = field.type.rawValue
                unsafe buffer.storeLittleEndian(UInt32(field.offset), at: offset + TableFormat.fieldOffsetOffset)
                unsafe buffer.storeLittleEndian(UInt32(field.count), at: offset + TableFormat.fieldCountInEntryOffset)
                offset += TableFormat.fieldEntrySize
            }
            for entry in metadata {
                let key = Array(entry.key.utf8), value = Array(entry.value.utf8)
                unsafe buffer.storeLittleEndian(UInt16(key.count), at: offset)
                unsafe buffer.storeLittleEndian(UInt16(value.count), at: offset + 2)
                unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[offset + 4..<offset + 4 + key.count]).copyBytes(
                    from: key)
                unsafe UnsafeMutableRawBufferPointer(
                    rebasing: buffer[offset + 4 + key.count..<offset + 4 + key.count + value.count]
                ).copyBytes(from: value)
                offset += (4 + key.count + value.count + 7) & ~7
            }
            unsafe buffer.storeLittleEndian(
                Self.checksum(UnsafeRawBufferPointer(buffer), staticLength: staticLength),
                at: TableFormat.checksumOffset)
            let first = CommitSlot(generation: 1, count: 0, capacity: capacity)
            unsafe first.encode(into: buffer, at: first.offset)
        }
        return bytes
    }

    /// CRC-32C over the fixed header (its checksum field read as zero) and the schema region.
    static func checksum(_ bytes: UnsafeRawBufferPointer, staticLength: Int) -> UInt32 {
        unsafe checksum(RawSpan(_unsafeBytes: bytes), staticLength: staticLength)
    }

    static func checksum(_ bytes: RawSpan, staticLength: Int) -> UInt32 {
        var crc = bytes.crc32c(0..<TableFormat.checksumOffset)
        crc = unsafe withUnsafeBytes(of: UInt32(0)) { unsafe CRC32C.checksum($0, continuing: crc) }
        crc = bytes.crc32c((TableFormat.checksumOffset + 4)..<512, continuing: crc)
        let schemaEnd = TableFormat.schemaOffset + staticLength
        return bytes.crc32c(TableFormat.schemaOffset..<schemaEnd, continuing: crc)
    }
}

extension CommitSlot {
    /// Where this generation goes: generation g in slot g % 2, so a commit never overwrites
    /// the commit point before it.
    var offset: Int { TableFormat.slotOffsets[Int(generation % 2)] }

    func encode(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) {
        let slot = unsafe UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<offset + TableFormat.slotSize])
        unsafe slot.storeLittleEndian(generation, at: TableFormat.slotGenerationOffset)
        unsafe slot.storeLittleEndian(UInt64(count), at: TableFormat.slotCountOffset)
        unsafe slot.storeLittleEndian(UInt64(capacity), at: TableFormat.slotCapacityOffset)
        unsafe slot.storeLittleEndian(
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slot[0..<TableFormat.slotChecksumOffset])),
            at: TableFormat.slotChecksumOffset)
    }

    /// The slot at `offset`, or nil if it was never written or its checksum does not match.
    static func decode(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> CommitSlot? {
        let slot = unsafe RawSpan(_unsafeBytes: bytes).extracting(offset..<offset + TableFormat.slotSize)
        let generation = slot.loadLittleEndian(TableFormat.slotGenerationOffset, as: UInt64.self)
        guard generation > 0,
            slot.loadLittleEndian(TableFormat.slotChecksumOffset, as: UInt32.self)
                == slot.crc32c(0..<TableFormat.slotChecksumOffset)
        else {
            return nil
        }
        let count = slot.loadLittleEndian(TableFormat.slotCountOffset, as: UInt64.self),
            capacity = slot.loadLittleEndian(TableFormat.slotCapacityOffset, as: UInt64.self)
        guard count <= capacity, capacity <= UInt64(Int.max) else { return nil }
        return CommitSlot(generation: generation, count: Int(count), capacity: Int(capacity))
    }

    /// The valid slot with the highest generation, or nil if neither is valid.
    static func latest(_ bytes: UnsafeRawBufferPointer) -> CommitSlot? {
        let first = unsafe decode(bytes, at: TableFormat.slotOffsets[0])
        let second = unsafe decode(bytes, at: TableFormat.slotOffsets[1])
        guard let first, let second else { return first ?? second }
        return second.generation > first.generation ? second : first
    }
}

// MARK: - Decoding: validate everything before trusting anything

extension TableHeader {
    /// Decodes and validates the header from the first bytes of a file of `fileSize` bytes.
    static func decode(_ buffer: UnsafeRawBufferPointer, fileSize: Int) throws(FormatProblem) -> TableHeader {
        unsafe try decode(RawSpan(_unsafeBytes: buffer), fileSize: fileSize)
    }

    /// The same over a span: every read is bounds-checked, in release builds too.
    ///
    /// Bytes this process has validated before (``ValidatedHeaders``) are not decoded again:
    /// equal bytes decode to an equal header, so only the check against this file's size is
    /// left to make.
    static func decode(_ bytes: RawSpan, fileSize: Int) throws(FormatProblem) -> TableHeader {
        if let header = ValidatedHeaders.header(matching: bytes), header.dataOffset <= fileSize { return header }
        let header = try decodeAndValidate(bytes, fileSize: fileSize)
        ValidatedHeaders.remember(header, from: bytes)
        return header
    }

    /// Decodes every field of the header and checks it.
    private static func decodeAndValidate(_ bytes: RawSpan, fileSize: Int) throws(FormatProblem) -> TableHeader {
        guard fileSize > 0 else { throw FormatProblem(.notATable, "the file is empty") }
        guard bytes.byteCount >= 12,
            unsafe bytes.extracting(0..<8).withUnsafeBytes({ unsafe $0.elementsEqual(TableFormat.magic) })
        else {
            throw FormatProblem(.notATable, "it does not start with the magic bytes of a record table (MRECTBL)")
        }
        let mark = bytes.loadLittleEndian(TableFormat.byteOrderMarkOffset, as: UInt32.self)
        guard mark == TableFormat.byteOrderMark else {
            if mark == TableFormat.byteOrderMark.byteSwapped {
                throw FormatProblem(.byteOrderMismatch, "it was written with the opposite byte order (big-endian)")
            }
            throw FormatProblem(.corrupt, "the byte-order mark is 0x\(String(mark, radix: 16)), not 0x0a0b0c0d")
        }
        guard bytes.byteCount >= TableFormat.pageSize else {
            throw FormatProblem(.corrupt, "the file has \(fileSize) bytes, fewer than the 4096-byte header")
        }
        let major = bytes.loadLittleEndian(TableFormat.versionMajorOffset, as: UInt16.self),
            minor = bytes.loadLittleEndian(TableFormat.versionMinorOffset, as: UInt16.self)
        guard major == TableFormat.versionMajor else {
            throw FormatProblem(
                .unsupportedVersion,
                "it has format version \(major).\(minor); this library reads version \(TableFormat.versionMajor).x")
        }
        let flags = bytes.loadLittleEndian(TableFormat.flagsOffset, as: UInt32.self)
        guard flags & TableFormat.incompatibleFlagsMask == 0 else {
            throw FormatProblem(
                .unsupportedVersion,
                "it needs features this library does not know (flags 0x\(String(flags, radix: 16)))")
        }
        let staticLength = Int(bytes.loadLittleEndian(TableFormat.staticLengthOffset, as: UInt32.self))
        guard staticLength <= bytes.byteCount - TableFormat.schemaOffset else {
            throw FormatProblem(.corrupt, "the schema region (\(staticLength) bytes) runs past the header")
        }
        let storedChecksum = bytes.loadLittleEndian(TableFormat.checksumOffset, as: UInt32.self)
        guard storedChecksum == checksum(bytes, staticLength: staticLength) else {
            throw FormatProblem(.corrupt, "the header checksum does not match; the header is damaged")
        }
        let dataOffset64 = bytes.loadLittleEndian(TableFormat.dataOffsetOffset, as: UInt64.self)
        guard dataOffset64 % UInt64(TableFormat.pageSize) == 0,
            dataOffset64 >= UInt64(TableFormat.schemaOffset + staticLength),
            dataOffset64 <= UInt64(fileSize)
        else {
            throw FormatProblem(
                .corrupt, "the data offset \(dataOffset64) is not a page boundary inside the file after the schema")
        }
        let stride = Int(bytes.loadLittleEndian(TableFormat.strideOffset, as: UInt32.self)),
            alignment = Int(bytes.loadLittleEndian(TableFormat.alignmentOffset, as: UInt32.self))
        let fieldCount = Int(bytes.loadLittleEndian(TableFormat.fieldCountOffset, as: UInt32.self)),
            metadataCount = Int(bytes.loadLittleEndian(TableFormat.metadataCountOffset, as: UInt32.self))
        guard fieldCount * TableFormat.fieldEntrySize <= staticLength else {
            throw FormatProblem(
                .corrupt, "\(fieldCount) fields do not fit in the schema region of \(staticLength) bytes")
        }
        var fields: [RecordField] = []
        var offset = TableFormat.schemaOffset
        for _ in 0..<fieldCount {
            var nameLength = 0
            while nameLength < TableFormat.fieldNameBytes && bytes.byte(at: offset + nameLength) != 0 {
                nameLength += 1
            }
            guard let name = bytes.utf8String(offset..<offset + nameLength) else {
                throw FormatProblem(.corrupt, "a field name at byte \(offset) is not valid UTF-8")
            }
            let code = bytes.byte(at: offset + TableFormat.fieldTypeOffset)
            guard let type = FieldType(rawValue: code) else {
                throw FormatProblem(.corrupt, "field '\(name)' has the unknown type code \(code)")
            }
            fields.append(
                RecordField(
                    name: name, type: type,
                    offset: Int(bytes.loadLittleEndian(offset + TableFormat.fieldOffsetOffset, as: UInt32.self)),
                    count: Int(bytes.loadLittleEndian(offset + TableFormat.fieldCountInEntryOffset, as: UInt32.self))))
            offset += TableFormat.fieldEntrySize
        }
        let schema: RecordSchema
        do {
            schema = try RecordSchema(fields: fields, stride: stride, alignment: alignment)
        } catch {
            throw FormatProblem(.corrupt, "the schema is not valid: \(error.description)")
        }
        guard bytes.loadLittleEndian(TableFormat.schemaHashOffset, as: UInt64.self) == schema.hash64 else {
            throw FormatProblem(.corrupt, "the schema hash does not match the schema")
        }
        let schemaEnd = TableFormat.schemaOffset + staticLength
        var metadata: [(key: String, value: String)] = []
        for _ in 0..<metadataCount {
            guard offset + 4 <= schemaEnd else {
                throw FormatProblem(.corrupt, "the metadata runs past the schema region")
            }
            let keyLength = Int(bytes.loadLittleEndian(offset, as: UInt16.self)),
                valueLength = Int(bytes.loadLittleEndian(offset + 2, as: UInt16.self))
            guard keyLength > 0 else {
                throw FormatProblem(
                    .corrupt, "a metadata entry at byte \(offset) has an empty key (keys are 1 to 255 bytes)")
            }
            guard offset + 4 + keyLength + valueLength <= schemaEnd,
                let key = bytes.utf8String(offset + 4..<offset + 4 + keyLength),
                let value = bytes.utf8String(offset + 4 + keyLength..<offset + 4 + keyLength + valueLength)
            else { throw FormatProblem(.corrupt, "a metadata entry at byte \(offset) is damaged") }
            metadata.append((key, value))
            offset += (4 + keyLength + valueLength + 7) & ~7
        }
        return TableHeader(
            schema: schema, metadata: metadata, flags: flags, versionMinor: minor, dataOffset: Int(dataOffset64))
    }
}
