extension RecordTable {
    /// The record at `index`, with no check that `index` is inside `0..<count`: for a caller that
    /// has checked its indices itself, in a loop where the one compare of `table[i]` matters
    /// (the compiler cannot unroll a loop whose every iteration may trap).
    ///
    /// Reading copies the record out, as `table[i]` does, with its Bool bytes made 0 or 1.
    /// Writing changes it in place, as `table[i]` does: it is plain for records the last write
    /// already covers, and otherwise checks the index and the access as `table[i]` does.
    ///
    /// - Precondition: `0 <= index < count`, and the table is open. An index outside reads or
    ///   writes memory outside the table's records: undefined behaviour, as with
    ///   `UnsafePointer`'s subscript. Hence `@unsafe`: every use is marked `unsafe`.
    /// - Complexity: O(1); one load (a read) beside the record's bytes.
    @unsafe @inlinable
    public subscript(unchecked index: Int) -> Record {
        @inline(__always) get {
            // SAFETY: the caller promises index < count <= capacity: inside the mapping.
            let address = unsafe UnsafeRawPointer(storage.records + index &* MemoryLayout<Record>.stride)
            // One load either way: from the mapping, or from a copy whose Bools were mended.
            let source = unsafe _fastPath(mendingScratch == nil) ? address : mendedCopy(of: address)
            return unsafe source.load(as: Record.self)
        }
        set { self[index] = newValue }
        _modify {
            // The checked subscript's in-place write is already plain where it may be: its fast
            // path (a record the last write covers) implies index < count.
            yield &self[index]
        }
    }

    /// Copies the record at `address` into the scratch record and makes each Bool byte 0 or 1
    /// there; returns the scratch record's address.
    @usableFromInline @inline(never)
    func mendedCopy(of address: UnsafeRawPointer) -> UnsafeRawPointer {
        let scratch = unsafe mendingScratch!
        unsafe scratch.copyMemory(from: address, byteCount: MemoryLayout<Record>.size)
        for offset in boolOffsets where unsafe scratch.load(fromByteOffset: offset, as: UInt8.self) > 1 {
            unsafe scratch.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
        }
        return UnsafeRawPointer(scratch)
    }
}
