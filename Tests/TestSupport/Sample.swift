import RecordTable

/// A self-checking record for the table tests: `check` is a function of `id`, so a torn or
/// misplaced record is caught by looking at it alone.
@MappedRecord
public struct Sample: Equatable, Sendable {
    public var id: Int64
    public var value: Double
    public var check: UInt64
    public var flag: Bool
    public var tag: MappedString<7>

    /// The record with this id.
    public init(id: Int64) {
        self.id = id
        self.value = Double(id) * 0.5
        self.check = Sample.expectedCheck(id)
        self.flag = id % 2 == 0
        self.tag = MappedString("r\(id % 1000)")
    }

    public static func expectedCheck(_ id: Int64) -> UInt64 {
        UInt64(bitPattern: id) &* 0x9E37_79B9_7F4A_7C15 ^ 0xDEAD_BEEF
    }

    /// Whether this is exactly the record `Sample(id: index)`.
    public func isValid(at index: Int) -> Bool {
        self == Sample(id: Int64(index))
    }
}

/// An older release of ``Sample``: the same first three fields, without `flag` and `tag`.
/// A table of these migrates to `Sample` by field names (the two new fields start as zero).
@MappedRecord
public struct OldSample: Equatable, Sendable {
    public var id: Int64
    public var value: Double
    public var check: UInt64

    /// The record with this id, as ``Sample/init(id:)`` makes its first three fields.
    public init(id: Int64) {
        let sample = Sample(id: id)
        self.id = sample.id
        self.value = sample.value
        self.check = sample.check
    }
}

/// A record of a journal that several processes append to: who wrote it, its place in that
/// writer's sequence, the batch it came in, and a check of all three, so that a torn record, a
/// record from another writer's slot, or a duplicate shows by looking at the records alone.
@MappedRecord
public struct JournalEntry: Equatable, Sendable {
    public var writer: Int32
    public var batchSize: Int32
    public var sequence: Int64
    public var check: UInt64

    /// The `sequence`-th record of `writer`, in a batch of `batchSize`.
    public init(writer: Int, sequence: Int, batchSize: Int) {
        self.writer = Int32(writer)
        self.batchSize = Int32(batchSize)
        self.sequence = Int64(sequence)
        self.check = JournalEntry.expectedCheck(writer: self.writer, sequence: self.sequence, batchSize: self.batchSize)
    }

    public static func expectedCheck(writer: Int32, sequence: Int64, batchSize: Int32) -> UInt64 {
        (UInt64(bitPattern: sequence) &* 0x9E37_79B9_7F4A_7C15) ^ (UInt64(UInt32(bitPattern: writer)) << 40)
            ^ UInt64(UInt32(bitPattern: batchSize)) ^ 0x5EED
    }

    /// Whether the check matches the other fields.
    public var isWhole: Bool {
        check == JournalEntry.expectedCheck(writer: writer, sequence: sequence, batchSize: batchSize)
    }
}
