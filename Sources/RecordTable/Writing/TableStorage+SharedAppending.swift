// Shared appending (docs/FORMAT.md, "Several appenders"): any number of processes append to one
// table, each append under the appender lock (AppenderLock.swift), a word in the live area that a
// dead holder's successor takes over.
//
// The protocol, under the appender lock:
//   1. catch up: the count is this boot's live word (every appender publishes there), the
//      capacity the file's size when the count needs more than this mapping holds;
//   2. refuse a sealed table (its series went on to the next file);
//   3. grow the file if the records do not fit, write them past the count;
//   4. publish the new count (one release store), ring the doorbell if a reader sleeps;
//   5. release the lock.
// An appender killed before 4 leaves records past the live count, which nobody reads and the next
// appender overwrites; killed after 4, its records are whole and published. So a reader sees
// all of a batch or none of it, as with one writer. Commits take the lock too: the generation is
// read from the file, since another appender may have written the last slot.
//
// The doorbell: the first appender creates one and names it in the live area; the others
// attach the one named there. Each append compares the live area's doorbell word with the one it
// rings (one load) and adopts the named one when they differ. The last appender to leave (no other
// open file holds a lock on byte 0) withdraws it.

import Glibc
import MemoryMappedFiles

extension TableStorage {
    // MARK: The appender lock

    /// Takes the appender lock, waiting while another appender holds it (a holder that died
    /// is noticed within 10 ms). Taking it again while holding it does nothing.
    func lockAppenders(_ operation: String) throws(RecordTableError) {
        guard !holdsAppenderLock else { return }
        unsafe AppenderLock.acquire(base: base, token: appenderToken, descriptor: fileDescriptor)
        holdsAppenderLock = true
    }

    /// Releases the appender lock.
    func unlockAppenders() {
        guard holdsAppenderLock, unsafe !isClosed else { return }
        unsafe AppenderLock.release(base: base, token: appenderToken)
        holdsAppenderLock = false
    }

    // MARK: Appending

    /// Steps 1 to 3 of an append of `extra` records: returns holding the lock, with `count` the
    /// table's and room for the records; throws without it.
    func beginSharedAppend(_ extra: Int) throws(RecordTableError) {
        requireWritable("append")
        try lockAppenders("append")
        CrashPoint.reached("holding-appender-lock")
        do throws(RecordTableError) {
            try catchUpWithAppenders(operation: "append")
            if let next = sealedSuccessor() { throw sealedError(next: next, operation: "append") }
            unsafe precondition(count + extra <= LiveCount.maximum, "RecordTable: more than 2^48 - 1 records")
            if unsafe count + extra > capacity {
                try refreshMapping(operation: "append")
                if unsafe count + extra > capacity { unsafe try reserve(count + extra) }
            }
        } catch {
            unlockAppenders()
            throw error
        }
    }

    /// Step 5: the records are published.
    func endSharedAppend() {
        unlockAppenders()
    }

    /// A shared appender's `reserveCapacity`: grows the file under the lock.
    func reserveShared(_ minimum: Int) throws(RecordTableError) {
        try lockAppenders("reserveCapacity")
        defer { unlockAppenders() }
        try catchUpWithAppenders(operation: "reserveCapacity")
        try refreshMapping(operation: "reserveCapacity")
        try reserve(minimum)
    }

    /// Takes the table's current count from this boot's live word (under the lock, where it
    /// cannot move), remapping first if it lies past this mapping; adopts the doorbell the live
    /// area names if it is not the one this appender rings.
    func catchUpWithAppenders(operation: String) throws(RecordTableError) {
        let liveWord = unsafe Self.thisBootsLiveWord(view!, bootIdentifier: bootIdentifier)
        guard let live = liveWord.flatMap(LiveCount.count) else {
            // Every appender takes the live area over under this lock before it appends, so only
            // a foreign write gets here.
            throw RecordTableError(
                .corrupt, operation: operation, path: path,
                message: "the live count is missing or damaged while appenders hold the table")
        }
        if unsafe live > capacity { try refreshMapping(operation: operation) }
        guard unsafe live <= capacity else {
            throw RecordTableError(
                .corrupt, operation: operation, path: path,
                message: unsafe "the live count \(live) points past the end of the file (room for \(capacity) records)")
        }
        unsafe count = live
        updateFastPathLimits()
        let named = unsafe view!.atomicLoad(UInt64.self, at: DoorbellFormat.liveAreaOffset)
        if _slowPath(named != (writerDoorbell?.liveAreaWord ?? 0)) { adoptDoorbell(named: named) }
    }

    /// Maps the file at its current size, if another appender grew it.
    func refreshMapping(operation: String) throws(RecordTableError) {
        do throws(MappedFileError) {
            let size = try map!.refreshCapacity()
            guard unsafe (size - header.dataOffset) / stride > capacity else { return }
            try remap(size: size)
        } catch {
            throw RecordTableError(error, operation: operation, path: path)
        }
    }

    // MARK: Committing

    /// A commit point under the appender lock, for the table's whole count: every record below
    /// it was published, so it is whole; the generation follows the file's latest slot.
    func commitShared() throws(RecordTableError) {
        try lockAppenders("commit")
        defer { unlockAppenders() }
        try catchUpForCommit(operation: "commit")
        try writeCommitPoint()
    }

    /// Under the appender lock, before a commit point: the table's count, and the latest slot
    /// (another appender may have written it), whose generation the next one follows.
    func catchUpForCommit(operation: String) throws(RecordTableError) {
        try catchUpWithAppenders(operation: operation)
        if let latest = unsafe view!.withUnsafeMutableBytes({ unsafe CommitSlot.latest(UnsafeRawBufferPointer($0)) }) {
            committed = latest
        }
    }

    // MARK: Sealing

    /// The number of the file that follows this one in its series, if the table is sealed.
    func sealedSuccessor() -> Int? {
        SealMark.next(unsafe view!.atomicLoad(UInt64.self, at: TableFormat.sealWordOffset))
    }

    func sealedError(next: Int, operation: String) -> RecordTableError {
        RecordTableError(
            .sealed, operation: operation, path: path,
            message: "the table is sealed: its series continues in file \(next); nothing was written")
    }

    /// Seals the table (a series rolls): commits, stores the seal mark naming `next`, syncs it
    /// in the durable modes, and wakes every sleeper, so that followers move on. The exclusive
    /// writer, or a shared appender holding the appender lock.
    func seal(next: Int) throws(RecordTableError) {
        requireWritable("seal")
        precondition(next > 0 && next <= LiveCount.maximum, "TableStorage: seal naming file \(next)")
        if isSharedAppender {
            precondition(holdsAppenderLock, "TableStorage: seal without the appender lock")
            try catchUpForCommit(operation: "seal")
        }
        try writeCommitPoint()
        unsafe view!.atomicStore(SealMark.word(next: next), at: TableFormat.sealWordOffset)
        if durability != .none {
            do { unsafe try view!.flush(range: TableFormat.liveOffset..<TableFormat.schemaOffset) } catch {
                throw RecordTableError(error, operation: "seal", path: path)
            }
        }
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
    }

    // MARK: Joining and leaving

    /// The end of a shared appender's `open`, which took the appender lock before it read the
    /// count and took the live area over: adopt the doorbell, release the lock.
    func joinAppenders() {
        holdsAppenderLock = true
        defer { unlockAppenders() }
        let named = unsafe view!.atomicLoad(UInt64.self, at: DoorbellFormat.liveAreaOffset)
        adoptDoorbell(named: named)
    }

    /// Rings the doorbell `named` in the live area if it can attach it, else creates one, names
    /// it there and wakes every sleeper (who then register with it).
    func adoptDoorbell(named: UInt64) {
        guard ringsReaders else { return }
        if named != 0, let attached = WriterDoorbell.attach(named: named, forTableOn: fileDescriptor) {
            writerDoorbell = attached
            unsafe doorbellRegistration = unsafe attached.registration
            return
        }
        installDoorbell()
    }

    /// Leaves the appenders (closing): the last one, when no other open file holds a lock on
    /// byte 0, withdraws the doorbell as a writer does.
    func leaveAppenders() {
        guard unsafe view != nil, (try? lockAppenders("close")) != nil else { return }
        defer { unlockAppenders() }
        let othersRemain = (try? map!.isLockedElsewhere(bytes: TableFormat.writerLockBytes)) ?? true
        if othersRemain {
            writerDoorbell = nil
            unsafe doorbellRegistration = unsafe noDoorbellRegistration
        } else {
            removeDoorbell()
        }
    }
}
