import Glibc
import MemoryMappedFiles

/// The engine behind ``RecordTable`` and ``DynamicRecordTable``: the file, its mapping, the
/// header, the count, and the commit protocol (docs/FORMAT.md). One object per open table.
@usableFromInline
@safe final class TableStorage {
    let path: String
    let header: TableHeader
    @usableFromInline let isWritable: Bool
    /// Whether this process appends beside others (`.sharedAppend`): each append takes the
    /// appender lock and catches up with the others' count (TableStorage+SharedAppending.swift).
    @usableFromInline let isSharedAppender: Bool
    /// Whether in-place writes are allowed: the exclusive writer's alone.
    @usableFromInline let updatesInPlace: Bool
    /// Whether this appender holds the appender lock now (between an append's start and its publish).
    var holdsAppenderLock = false
    /// A shared appender's token in the appender lock (AppenderLock.swift); 0 otherwise.
    var appenderToken: UInt32 = 0
    @usableFromInline let durability: Durability
    /// This boot's identifier; the live count is trusted only when the file's matches.
    let bootIdentifier: [UInt8]

    // The table is used from one thread at a time and never re-enters itself, so the fields
    // on the per-record paths (reads, in-place writes, appends, publish) need no dynamic
    // exclusivity checks, which cost a runtime call each; the rest keep them.
    var map: MemoryMappedFile?
    @usableFromInline @exclusivity(unchecked) var view: MappedViewAccessor?
    /// The record stride, for the inlined append path.
    @usableFromInline let stride: Int

    /// Byte 0 of the file in this process's mapping; valid while `view` is mapped. `publish`
    /// stores the live word through it: one store, where the view's `atomicStore` checks bounds
    /// and alignment that were checked when the table was opened.
    @usableFromInline @exclusivity(unchecked) var base: UnsafeMutableRawPointer
    /// The first record.
    @usableFromInline @exclusivity(unchecked) var records: UnsafeMutableRawPointer
    /// Records this process may read: the writer's count, or a reader's last snapshot. Whoever
    /// sets it calls `updateFastPathLimits()` (`publish` only `updateLoadLimit`), which a `didSet`
    /// would do through a call on every append.
    @usableFromInline @exclusivity(unchecked) var count: Int
    /// Indices below this may be loaded as they are: `count`, or 0 when records hold Bools
    /// (which need checking). One compare on the hot path does both tests.
    @usableFromInline @exclusivity(unchecked) var plainLoadLimit = 0
    /// In-place writes at `plainStoreStart..<plainStoreStart + plainStoreSpan` need nothing but
    /// the write: the table is writable, records hold no Bools and no padding, and the index is
    /// at or above `syncedBelow` (already due for the next sync; 0 in `Durability.none`, which
    /// syncs nothing). One subtraction and one unsigned compare on the hot path test all of it.
    @usableFromInline @exclusivity(unchecked) var plainStoreStart = 0
    /// The length of that range: 0 when no write may take the plain path.
    @usableFromInline @exclusivity(unchecked) var plainStoreSpan = 0
    /// Whether records hold Bool fields.
    let hasBools: Bool
    /// The bytes of a record that no field covers, as (offset, length) runs; typed writes store
    /// zeros there, since a Swift value's padding holds whatever was in memory (docs/FORMAT.md).
    @usableFromInline let paddingRuns: [(offset: Int, length: Int)]
    /// Whether `paddingRuns` is not empty: one load on the typed write paths.
    @usableFromInline let hasPadding: Bool
    /// Records the mapped file has room for.
    @usableFromInline @exclusivity(unchecked) var capacity: Int {
        didSet { unsafe appendLimit = updatesInPlace ? capacity : 0 }
    }
    /// Appends that stay at or below this count take the inline path: the capacity for the
    /// exclusive writer; 0 for shared appenders (every append takes the lock) and readers (whose
    /// appends trap), so that one compare sends both off the fast path.
    @usableFromInline @exclusivity(unchecked) var appendLimit = 0
    /// Whether `publish` has more to do than store the count: commit (`.everyAppend`) or
    /// release the appender lock (a shared appender). One load on the publish path.
    @usableFromInline let publishHasFollowUp: Bool
    /// The last commit point read or written.
    var committed: CommitSlot
    /// Records below this index are on disk (durable modes); in-place writes lower it.
    @usableFromInline @exclusivity(unchecked) var syncedBelow: Int {
        didSet { updateFastPathLimits() }
    }
    /// All ones, or 0 when records hold Bools: `plainLoadLimit` is `count & plainLoadMask`, one
    /// `and` on the append path.
    @usableFromInline let plainLoadMask: Int
    /// How many closures are borrowing records zero-copy; growth must not remap meanwhile.
    var borrowCount = 0
    @usableFromInline @exclusivity(unchecked) var isClosed = false
    /// What lives as long as this table (RecordTable.attach): told when it closes.
    var companions: [any TableCompanion] = []
    /// How many times this writer rang (tests check that a crashed sleeper costs one ring).
    @usableFromInline var doorbellRings = 0
    /// A writer's doorbell (Doorbell.swift), if the system offers one.
    var writerDoorbell: WriterDoorbell?
    /// The doorbell's registration word, or a word that is always 0: `publish` loads it once.
    @usableFromInline @exclusivity(unchecked) var doorbellRegistration = unsafe noDoorbellRegistration
    /// A reader's side of the doorbell, made when it first waits.
    lazy var listener = DoorbellListener(forTableOn: fileDescriptor)
    /// The open file's descriptor, which `map` owns.
    let fileDescriptor: Int32

    init(
        path: String, header: TableHeader, isWritable: Bool, durability: Durability, bootIdentifier: [UInt8],
        map: consuming MemoryMappedFile, view: consuming MappedViewAccessor, count: Int, committed: CommitSlot,
        ringsReaders: Bool = true, sharedAppender: Bool = false
    ) {
        self.path = path
        self.header = header
        self.isWritable = isWritable
        self.isSharedAppender = isWritable && sharedAppender
        self.updatesInPlace = isWritable && !sharedAppender
        self.publishHasFollowUp = durability == .everyAppend || (isWritable && sharedAppender)
        self.durability = durability
        self.bootIdentifier = bootIdentifier
        self.stride = header.schema.stride
        // SAFETY: the pointer stays valid while `view` is mapped; `remap` and `close` update or retire it.
        let base = unsafe view.withUnsafeMutableBytes { $0.baseAddress! }
        unsafe self.base = unsafe base
        unsafe self.records = unsafe base + header.dataOffset
        unsafe self.capacity = (view.capacity - header.dataOffset) / header.schema.stride
        unsafe self.count = count
        self.committed = committed
        self.hasBools = header.schema.hasBools
        self.paddingRuns = header.schema.paddingRuns
        self.hasPadding = !paddingRuns.isEmpty
        self.plainLoadMask = hasBools ? 0 : ~0
        unsafe self.syncedBelow = committed.count
        self.fileDescriptor = map.fileDescriptor
        self.map = Optional(map)
        unsafe self.view = Optional(view)
        self.ringsReaders = isWritable && ringsReaders
        unsafe appendLimit = updatesInPlace ? capacity : 0
        updateFastPathLimits()
        // Shared appenders adopt the doorbell under the appender lock (TableStorage+SharedAppending).
        if self.ringsReaders && !isSharedAppender { installDoorbell() }
    }

    /// Whether this writer publishes a doorbell: not a migration's hold on the old table, which
    /// must stay byte for byte as it was.
    let ringsReaders: Bool

    /// Creates the writer's doorbell, names it in the live area, and wakes every sleeper: any
    /// that registered with an earlier writer's doorbell attaches this one (Doorbell.swift).
    func installDoorbell() {
        if let doorbell = WriterDoorbell.make(forTableOn: fileDescriptor) {
            writerDoorbell = doorbell
            unsafe doorbellRegistration = unsafe doorbell.registration
            unsafe view!.atomicStore(doorbell.liveAreaWord, at: DoorbellFormat.liveAreaOffset)
        } else {
            unsafe view!.atomicStore(UInt64(0), at: DoorbellFormat.liveAreaOffset)
        }
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
    }

    /// Withdraws the doorbell (the writer is leaving) and wakes every sleeper, so that
    /// followers notice at once: `writerIsActive()` is false from now on.
    func removeDoorbell() {
        guard ringsReaders, unsafe view != nil else { return }
        unsafe view!.atomicStore(UInt64(0), at: DoorbellFormat.liveAreaOffset)
        writerDoorbell = nil
        unsafe doorbellRegistration = unsafe noDoorbellRegistration
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
    }

    /// Maps the file whole again at `size` bytes (it grew) and points `base`, `records` and
    /// `capacity` into the new mapping; the old one is unmapped. Records must not be borrowed.
    func remap(size: Int) throws(MappedFileError) {
        precondition(borrowCount == 0, "RecordTable: cannot remap the table while its records are borrowed")
        let newView = try map!.makeViewAccessor()
        unsafe try view.take()?.close(flush: false)
        unsafe view = Optional(newView)
        // SAFETY: the new mapping replaces the old one; base and records now point into it.
        unsafe base = unsafe view!.withUnsafeMutableBytes { $0.baseAddress! }
        unsafe records = unsafe base + header.dataOffset
        unsafe capacity = (size - header.dataOffset) / stride
    }

    /// The fast-path limits for the current count (`plainLoadLimit`, `plainStoreStart`,
    /// `plainStoreSpan`).
    func updateFastPathLimits() {
        unsafe plainLoadLimit = unsafe count & plainLoadMask
        let storeLimit = unsafe hasBools || hasPadding || !updatesInPlace ? 0 : count
        unsafe plainStoreStart = unsafe durability == .none ? 0 : min(syncedBelow, storeLimit)
        unsafe plainStoreSpan = unsafe storeLimit - plainStoreStart
    }

    /// What `publish` does for a count that grew: only the load limit. The store range may stay
    /// below the count (a limit too low only sends a write to the checked path, which updates
    /// it: `RecordTable.prepareSlowStore`); a count that shrinks updates everything
    /// (`removeLast`), since a limit too high would let a write past the count through.
    @inlinable @inline(__always)
    func updateLoadLimit(grownTo count: Int) {
        unsafe plainLoadLimit = count & plainLoadMask
    }

    /// A table dropped without `close()` closes as `close()` does: it commits (syncing only what
    /// its durability mode promises) and unmaps without the implicit whole-file `msync` and
    /// `fsync` that a writable view and map would otherwise run when they go away.
    deinit {
        if unsafe !isClosed { try? close() }
    }

    static let currentBootIdentifier = systemBootIdentifier

    // MARK: Closing

    /// Closes; a writer commits first unless `committing` is false (a migration leaves the
    /// old table exactly as it found it).
    func close(committing: Bool = true) throws(RecordTableError) {
        guard unsafe !isClosed else { return }
        precondition(borrowCount == 0, "RecordTable: cannot close the table while its records are borrowed")
        var failure: RecordTableError?
        if isWritable && committing {
            do { try commit() } catch { failure = error }
        }
        if isSharedAppender { leaveAppenders() } else { removeDoorbell() }
        unsafe isClosed = true
        if holdsAppenderLock { unlockAppenders() }
        unsafe count = 0
        updateFastPathLimits()
        unsafe capacity = 0
        let closing = companions
        companions = []
        for companion in closing { companion.tableDidClose() }
        unsafe try? view.take()?.close(flush: false)
        try? map.take()?.close(flush: false)
        if let failure { throw failure }
    }
}
