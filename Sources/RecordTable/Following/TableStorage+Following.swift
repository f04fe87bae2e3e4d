// Reading a table another process writes: refresh, the count rule, and waiting for records.

import Glibc
import MemoryMappedFiles

extension TableStorage {
    // MARK: Reading

    /// Re-reads the count another process published, remapping if the file grew; returns it.
    /// One `fstat` first: a file that another process truncated is a `truncated` error here,
    /// before any read of its missing pages could raise SIGBUS; a file that another replaced
    /// at its path (a migration) is `replaced`.
    /// - Parameter requiringName: Fail with `replaced` once the file has no name (false: a
    ///   series' reader, whose retention removes whole sealed files it may still be reading).
    func refresh(requiringName: Bool = true) throws(RecordTableError) -> Int {
        unsafe precondition(!isClosed, "RecordTable: refresh on a closed table")
        guard !updatesInPlace else { return unsafe count }
        let file: (capacity: Int, isLinked: Bool)
        do {
            file = try map!.refreshCapacityAndLinks()
        } catch {
            throw RecordTableError(error, operation: "refresh", path: path)
        }
        guard file.isLinked || !requiringName else {
            throw RecordTableError(
                .replaced, operation: "refresh", path: path,
                message:
                    "another file took this table's path (a migration, or a replacement); open it again to read the new one"
            )
        }
        // The count rule's inputs, read once: the count chosen below comes from these.
        let inputs = unsafe RecordWaiting.countInputs(view!, bootIdentifier: bootIdentifier)
        // The preferred count lies past this mapping: the file may have grown since it was made.
        if let preferred = TableFormat.preferredCount(liveWord: inputs.liveWord, commitPoint: inputs.commitPoint),
            unsafe preferred > capacity
        {
            do throws(MappedFileError) {
                // The size again, after the count: the writer grows the file before it publishes
                // a count past the old end, so only a size read after the count covers it.
                try remap(size: try map!.refreshCapacity())
            } catch {
                throw RecordTableError(error, operation: "refresh", path: path)
            }
        }
        let newCount = try chosenCount(inputs, operation: "refresh")
        unsafe count = newCount
        updateFastPathLimits()
        return newCount
    }

    /// The count rule (``TableFormat/chooseCount(liveWord:commitPoint:capacity:)``) over this
    /// mapping: a live count past it falls back to the commit point, as `open` does. Keeps the
    /// latest commit point it read.
    func chosenCount(
        _ inputs: (liveWord: UInt64?, commitPoint: CommitSlot?), operation: String
    ) throws(RecordTableError) -> Int {
        if let slot = inputs.commitPoint { committed = slot }
        switch TableFormat.chooseCount(
            liveWord: inputs.liveWord, commitPoint: inputs.commitPoint, capacity: unsafe capacity)
        {
        case .count(let count): return count
        case .noCommitPoint:
            throw RecordTableError(.corrupt, operation: operation, path: path, message: "neither commit slot is valid")
        case .pastTheEnd(let count):
            throw RecordTableError(
                .corrupt, operation: operation, path: path,
                message: unsafe "the count \(count) points past the end of the file (room for \(capacity) records)")
        }
    }

    /// Waits until the count passes `known` or `timeout` passes; returns the count. Spins first
    /// if the strategy says so, then sleeps on the live word until the writer rings.
    func waitForRecords(beyond known: Int, timeout: Duration, strategy: WaitStrategy) throws(RecordTableError) -> Int {
        unsafe precondition(!isClosed, "RecordTable: waitForRecords on a closed table")
        let start = monotonicNanoseconds()
        let deadline = start.saturatingAdd(timeout.saturatingNanoseconds)
        let spinUntil = min(deadline, start.saturatingAdd(strategy.spinNanoseconds))
        var backoff = Duration.microseconds(25)
        while true {
            // The word is read before the count, so a publish between the two makes the sleep
            // below return at once (the kernel compares the word) instead of being missed.
            let seen = unsafe view!.atomicLoad(UInt64.self, at: TableFormat.liveCountOffset)
            // Records that fit the mapping need no system call to be read: take them at once
            // (refresh() also checks the file's size, which costs a microsecond on the hot path).
            if LiveCount.count(seen).map({ $0 > known }) == true,
                unsafe Self.thisBootsLiveWord(view!, bootIdentifier: bootIdentifier) == seen,
                let live = try? chosenCount(
                    unsafe RecordWaiting.countInputs(view!, bootIdentifier: bootIdentifier), operation: "waitForRecords"
                ),
                live > known
            {
                unsafe count = live
                updateFastPathLimits()
                return live
            }
            let current = try refresh()
            let now = monotonicNanoseconds()
            // A sealed table takes no more records: its follower moves to the next file.
            if current > known || now >= deadline || updatesInPlace || sealedSuccessor() != nil { return current }
            if now < spinUntil {
                unsafe RecordWaiting.spin(view!, seen: seen, until: spinUntil)
                continue
            }
            let sleep = unsafe RecordWaiting.prepareSleep(
                view!, seen: seen, target: known.saturatingSuccessor, listener: listener,
                bootIdentifier: bootIdentifier,
                remaining: deadline - now,
                backoff: &backoff)
            _ = unsafe view!.waitForWake(
                onWordAt: TableFormat.liveCountOffset, whileEqualTo: sleep.expected, timeout: sleep.limit)
        }
    }

    /// A duplicate of the file's descriptor, for a ``TableUpdates`` watcher.
    func duplicateDescriptor() throws(RecordTableError) -> Int32 {
        unsafe precondition(!isClosed, "RecordTable: updates() on a closed table")
        let duplicate = system_dup_cloexec(fileDescriptor)
        guard duplicate >= 0 else {
            let code = lastErrno
            throw RecordTableError(
                .ioError, operation: "updates", path: path, systemCall: "fcntl(F_DUPFD_CLOEXEC)",
                errno: code, message: "could not duplicate the table's descriptor for a watcher")
        }
        return duplicate
    }

    /// Whether another process holds the writer lock.
    func writerIsActive() throws(RecordTableError) -> Bool {
        guard !isWritable else { return true }
        do {
            return try map!.isLockedElsewhere(bytes: TableFormat.writerLockBytes)
        } catch {
            throw RecordTableError(error, operation: "writerIsActive", path: path)
        }
    }
}
