// Zero-copy access: the records as a Span or MutableSpan, borrowed from the mapping.

extension RecordTable {
    /// `range` (all records when nil), checked to lie inside the count, and where its first
    /// record is in the mapping. Traps if it does not fit.
    private func borrowedRange(_ range: Range<Int>?) -> (Range<Int>, UnsafeMutableRawPointer) {
        let range = unsafe range ?? 0..<storage.count
        unsafe precondition(
            range.lowerBound >= 0 && range.upperBound <= storage.count,
            unsafe "RecordTable: range \(range) is out of range for a table of \(storage.count) records")
        return unsafe (range, storage.records + range.lowerBound * MemoryLayout<Record>.stride)
    }

    /// Calls `body` with the records in `range` (all of them by default) as a `Span`, without
    /// copying. The table cannot grow, remap or close while `body` runs (that traps).
    /// - Throws: `corrupt` if a Bool field in the range holds a byte other than 0 or 1, since
    ///   such a record cannot be viewed in place.
    /// - Complexity: O(1) to make the span for records without Bools; O(*n*) in the range's
    ///   records otherwise (each Bool byte is checked first).
    public func withRecords<Result>(
        in range: Range<Int>? = nil, _ body: (Span<Record>) -> Result
    ) throws(RecordTableError) -> Result {
        let (range, start) = unsafe borrowedRange(range)
        if !boolOffsets.isEmpty {
            for index in range {
                let record = unsafe start + (index - range.lowerBound) * MemoryLayout<Record>.stride
                for offset in boolOffsets where unsafe record.load(fromByteOffset: offset, as: UInt8.self) > 1 {
                    throw RecordTableError(
                        .corrupt, operation: "withRecords", path: path,
                        message: "record \(index) has a Bool field holding a byte other than 0 or 1")
                }
            }
        }
        storage.borrowCount += 1
        defer { storage.borrowCount -= 1 }
        // SAFETY: the range is inside the mapping, which cannot change while borrowCount > 0.
        let span = unsafe Span<Record>(_unsafeStart: start.assumingMemoryBound(to: Record.self), count: range.count)
        return body(span)
    }

    /// Calls `body` with the records in `range` (all of them by default) as a `MutableSpan`,
    /// to change them in place without copying (a writer only). The table cannot grow, remap or
    /// close while `body` runs (that traps).
    ///
    /// This is the fastest way to update many records: `body` keeps the span's start and count
    /// in registers, so each `records[i]` costs one bounds check beside the memory access
    /// itself. A loop of `table[i].x += 1` must load the table's state again after every store,
    /// since Swift cannot tell that the store did not change it (docs/PERFORMANCE.md, "The
    /// table's hot paths"). Bool bytes in the range are made 0 or 1 first; afterwards, padding
    /// bytes in the range are zeroed (a pass over the range, for records that have padding),
    /// and the next durable commit syncs the range.
    /// - Complexity: O(1) beside `body`, plus a pass over the range for records with Bools or
    ///   padding.
    public func withMutableRecords<Result, Failure: Error>(
        in range: Range<Int>? = nil, _ body: (inout MutableSpan<Record>) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        if !storage.updatesInPlace { storage.refuseInPlaceUpdate("withMutableRecords") }
        let (range, start) = unsafe borrowedRange(range)
        if !boolOffsets.isEmpty {
            for index in range {
                unsafe normalizeBools(start + (index - range.lowerBound) * MemoryLayout<Record>.stride)
            }
        }
        storage.borrowCount += 1
        defer {
            storage.borrowCount -= 1
            if storage.hasPadding { unsafe storage.zeroPadding(start, count: range.count) }
            if !range.isEmpty { storage.markWritten(index: range.lowerBound) }
        }
        // SAFETY: the range is inside the writable mapping, which cannot change while borrowCount > 0.
        var span = unsafe MutableSpan<Record>(
            _unsafeStart: start.assumingMemoryBound(to: Record.self), count: range.count)
        return try body(&span)
    }
}
