// Writing: growth, appends, publishing the count, the commit protocol, and a migration's
// bulk writes and replacement.

import Glibc
import MemoryMappedFiles

extension TableStorage {
    // MARK: Writing

    func requireWritable(_ operation: String) {
        unsafe precondition(!isClosed, "RecordTable: \(operation) on a closed table")
        precondition(isWritable, "RecordTable: \(operation) on a table opened read-only")
    }

    /// Traps: an in-place write (or `removeLast`) on a table that is not its exclusive writer's.
    @usableFromInline @inline(never)
    func refuseInPlaceUpdate(_ operation: String) -> Never {
        if isSharedAppender {
            preconditionFailure(
                "RecordTable: \(operation) on a table opened for shared appending; in-place changes need the exclusive writer (.readWrite)"
            )
        }
        preconditionFailure("RecordTable: cannot write to a table opened read-only")
    }

    /// Makes room for `minimum` records, growing the file in chunks.
    func reserve(_ minimum: Int) throws(RecordTableError) {
        requireWritable("reserveCapacity")
        guard unsafe minimum > capacity else { return }
        if isSharedAppender && !holdsAppenderLock { return try reserveShared(minimum) }
        precondition(borrowCount == 0, "RecordTable: cannot grow the table while its records are borrowed")
        let stride = header.schema.stride
        let step = unsafe min(max(capacity, (1 << 16) / stride), (1 << 30) / stride)
        let target = unsafe Swift.max(minimum, capacity + step)
        guard let newSize = Self.fileSize(dataOffset: header.dataOffset, stride: stride, records: target) else {
            throw RecordTableError(
                .invalidArgument, operation: "grow", path: path,
                message: "\(target) records of \(stride) bytes are more than a file can hold")
        }
        do throws(MappedFileError) {
            try map!.grow(toCapacity: newSize)
            try remap(size: newSize)
        } catch {
            throw RecordTableError(error, operation: "grow", path: path)
        }
    }

    /// Reserves room for `extra` more records and returns where the first goes.
    /// (A closed or read-only table has capacity 0 or fails in `reserve`, which traps.)
    @inlinable @inline(__always)
    func slotsForAppending(_ extra: Int) throws(RecordTableError) -> UnsafeMutableRawPointer {
        if unsafe _slowPath(count + extra > appendLimit) { try makeRoom(extra) }
        return unsafe records + count &* stride
    }

    @usableFromInline
    func makeRoom(_ extra: Int) throws(RecordTableError) {
        if isSharedAppender { return try beginSharedAppend(extra) }
        unsafe precondition(count + extra <= LiveCount.maximum, "RecordTable: more than 2^48 - 1 records")
        unsafe try reserve(count + extra)
    }

    /// Publishes `newCount` records to readers (after they are written), rings the doorbell if
    /// a reader sleeps, and commits in `everyAppend` mode. Without sleepers this is one store,
    /// one load and no fence (the argument is in Doorbell.swift).
    @inlinable @inline(__always)
    func publish(count newCount: Int) throws(RecordTableError) {
        unsafe count = newCount
        updateLoadLimit(grownTo: newCount)
        // SAFETY: the live word lies in the header page of the mapping `base` points to (checked
        // at open), 8-byte aligned; `remap` and `close` update `base`.
        unsafe SharedAtomics.storeRelease(base + TableFormat.liveCountOffset, LiveCount.word(newCount))
        // The word is the complement of the smallest target a sleeper waits for (0: no sleeper,
        // which no count reaches): one load and one compare.
        let registered = unsafe SharedAtomics.loadAfterStores(doorbellRegistration)
        if _slowPath(UInt64(truncatingIfNeeded: newCount) >= ~registered) { ringDoorbell(registered: registered) }
        if _slowPath(publishHasFollowUp) { try followUpPublish() }
    }

    /// After a publish: a shared appender releases the appender lock; `.everyAppend` commits.
    @usableFromInline @inline(never)
    func followUpPublish() throws(RecordTableError) {
        if isSharedAppender { endSharedAppend() }
        if durability == .everyAppend { try commit() }
    }

    /// The count reached the smallest target a sleeper registered: clears the registration and
    /// wakes every reader that sleeps on the live word, one system call whatever their number.
    @usableFromInline @inline(never)
    func ringDoorbell(registered: UInt64) {
        writerDoorbell?.clearRegistration(registered)
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
        doorbellRings &+= 1
    }

    /// Whether this writer has a doorbell, and whether a reader is registered on it (tests).
    var hasDoorbell: Bool { writerDoorbell != nil }
    var doorbellHasSleeper: Bool { unsafe SharedAtomics.loadAcquire(doorbellRegistration) != 0 }

    /// Paging advice for the records in `range` (clamped to the capacity).
    func advise(_ advice: MappingAdvice, records range: Range<Int>) {
        unsafe precondition(!isClosed, "RecordTable: advise on a closed table")
        let records = unsafe range.clamped(to: 0..<capacity)
        guard !records.isEmpty else { return }
        let stride = header.schema.stride
        unsafe view!.advise(
            advice,
            range: header.dataOffset + records.lowerBound * stride..<header.dataOffset + records.upperBound * stride)
    }

    /// Stores zeros in the padding of `count` records from `address` (typed writes only).
    @usableFromInline @inline(never)
    func zeroPadding(_ address: UnsafeMutableRawPointer, count: Int) {
        var record = unsafe address
        for _ in 0..<count {
            for run in paddingRuns {
                unsafe (record + run.offset).initializeMemory(as: UInt8.self, repeating: 0, count: run.length)
            }
            unsafe record += stride
        }
    }

    /// Notes an in-place write, so the next durable commit syncs it.
    @inlinable @inline(__always)
    func markWritten(index: Int) {
        if unsafe index < syncedBelow { unsafe syncedBelow = index }
    }

    func removeLast(_ n: Int) throws(RecordTableError) {
        requireWritable("removeLast")
        if isSharedAppender { refuseInPlaceUpdate("removeLast") }
        unsafe precondition(n >= 0 && n <= count, unsafe "RecordTable: cannot remove \(n) of \(count) records")
        // The limits shrink first: a store range above the count must never be seen.
        unsafe count -= n
        updateFastPathLimits()
        unsafe try publish(count: count)
    }

    /// Writes a commit point for the current count, syncing first in the durable modes.
    @usableFromInline
    func commit() throws(RecordTableError) {
        requireWritable("commit")
        if isSharedAppender { return try commitShared() }
        try writeCommitPoint()
    }

    /// The commit itself: sync (in the durable modes) what is not yet on disk, then write the
    /// next slot and sync it. A shared appender calls it under the appender lock.
    func writeCommitPoint() throws(RecordTableError) {
        let stride = header.schema.stride
        let slot = unsafe CommitSlot(generation: committed.generation + 1, count: count, capacity: capacity)
        let slotOffset = slot.offset
        do throws(MappedFileError) {
            if unsafe durability != .none && syncedBelow < count {
                // LMDB's order: the data reaches the disk before the commit point that covers it.
                unsafe try view!.flush(
                    range: (header.dataOffset + syncedBelow * stride)..<(header.dataOffset + count * stride))
            }
            unsafe view!.withUnsafeMutableBytes { unsafe slot.encode(into: $0, at: slotOffset) }
            if durability != .none { unsafe try view!.flush(range: slotOffset..<slotOffset + TableFormat.slotSize) }
        } catch {
            throw RecordTableError(error, operation: "commit", path: path)
        }
        committed = slot
        unsafe syncedBelow = unsafe count
    }

    /// Writes whole records at `index` through the descriptor (`pwrite`), for bulk filling of
    /// a fresh table: no page faults, no zero-filling of pages first. Publish them afterwards.
    /// - Parameter startingWriteback: Start writing them to the disk at once (a migration, which
    ///   syncs at its end anyway).
    @usableFromInline
    func writeRecords(
        _ bytes: UnsafeRawBufferPointer, at index: Int, startingWriteback: Bool = true
    ) throws(RecordTableError) {
        requireWritable("writeRecords")
        unsafe precondition(
            bytes.count % stride == 0 && index + bytes.count / stride <= capacity,
            "TableStorage: writeRecords past the capacity")
        let offset = header.dataOffset + index * stride
        do {
            unsafe try map!.write(bytes, atFileOffset: offset)
        } catch {
            throw RecordTableError(error, operation: "writeRecords", path: path)
        }
        if startingWriteback { map!.startWriteback(range: offset..<offset + bytes.count) }
    }

    /// The file's owner, group and mode.
    func ownership() throws(RecordTableError) -> FileOwnership {
        do { return try map!.ownership() } catch {
            throw RecordTableError(error, operation: "ownership", path: path)
        }
    }

    /// How many names (hard links) the file has.
    func linkCount() throws(RecordTableError) -> Int {
        do { return try map!.linkCount() } catch {
            throw RecordTableError(error, operation: "linkCount", path: path)
        }
    }

    /// Copies this table's file's extended attributes (ACLs among them) to `other`.
    func copyExtendedAttributes(to other: borrowing MemoryMappedFile) throws(MappedFileError) {
        try other.copyExtendedAttributes(from: map!)
    }

    /// Puts this table, made by `create(…replacing: true)`, over the file at its path: fsyncs
    /// it whole, then renames it into place and syncs the directory.
    func replaceFile() throws(RecordTableError) {
        do throws(MappedFileError) {
            try map!.flush()
            try map!.replaceFile(syncingDirectory: true)
        } catch {
            throw RecordTableError(error, operation: "replaceFile", path: path)
        }
    }
}
