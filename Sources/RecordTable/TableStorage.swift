import CMappedShims
import Glibc
import MemoryMappedFiles

/// When a table makes its records durable (safe from power loss).
///
/// Whatever the mode, an appended record is safe from a *process* crash (kill -9) as soon as
/// `append` returns: it is in the kernel's page cache, and the live count that covers it is
/// published after it. The modes differ in what survives a power loss or a kernel crash.
public enum Durability: UInt32, Sendable, Hashable, CaseIterable {
    /// Never waits for the disk. `commit()` and `close()` write a commit point without syncing;
    /// after a power loss the table opens at some earlier commit point, or its header is
    /// damaged and `open` throws `corrupt`. Fastest.
    case none = 0
    /// `commit()` (and `close()`) syncs the new records, then writes and syncs a commit point.
    /// After a power loss the table has exactly the records of the last completed commit.
    case batch = 1
    /// Every append commits before it returns, as `batch` does. Slowest: two syncs per append.
    case everyAppend = 2
}

/// The engine behind ``RecordTable`` and ``DynamicRecordTable``: the file, its mapping, the
/// header, the count, and the commit protocol (docs/FORMAT.md). One object per open table.
@usableFromInline
@safe final class TableStorage {
    let path: String
    let header: TableHeader
    @usableFromInline let isWritable: Bool
    @usableFromInline let durability: Durability
    /// This boot's identifier; the live count is trusted only when the file's matches.
    let bootIdentifier: [UInt8]

    // The table is used from one thread at a time and never re-enters itself, so these
    // need no dynamic exclusivity checks (which cost a runtime call per append).
    @exclusivity(unchecked) private var map: MemoryMappedFile?
    @usableFromInline @exclusivity(unchecked) var view: MappedViewAccessor?
    /// The record stride, for the inlined append path.
    @usableFromInline let stride: Int

    /// Byte 0 of the file in this process's mapping; valid while `view` is mapped.
    @exclusivity(unchecked) private(set) var base: UnsafeMutableRawPointer
    /// The first record.
    @usableFromInline @exclusivity(unchecked) private(set) var records: UnsafeMutableRawPointer
    /// Records this process may read: the writer's count, or a reader's last snapshot.
    @usableFromInline @exclusivity(unchecked) var count: Int {
        didSet { updateFastPathLimits() }
    }
    /// Indices below this may be loaded as they are: `count`, or 0 when records hold Bools
    /// (which need checking). One compare on the hot path does both tests.
    @usableFromInline @exclusivity(unchecked) private(set) var plainLoadLimit = 0
    /// In-place writes at `plainStoreStart..<plainStoreStart + plainStoreSpan` need nothing but
    /// the write: the table is writable, records hold no Bools and no padding, and the index is
    /// at or above `syncedBelow` (already due for the next sync; 0 in `Durability.none`, which
    /// syncs nothing). One subtraction and one unsigned compare on the hot path test all of it.
    @usableFromInline @exclusivity(unchecked) private(set) var plainStoreStart = 0
    /// The length of that range: 0 when no write may take the plain path.
    @usableFromInline @exclusivity(unchecked) private(set) var plainStoreSpan = 0
    /// Whether records hold Bool fields.
    let hasBools: Bool
    /// The bytes of a record that no field covers, as (offset, length) runs; typed writes store
    /// zeros there, since a Swift value's padding holds whatever was in memory (docs/FORMAT.md).
    @usableFromInline let paddingRuns: [(offset: Int, length: Int)]
    /// Whether `paddingRuns` is not empty: one load on the typed write paths.
    @usableFromInline let hasPadding: Bool
    /// Records the mapped file has room for.
    @usableFromInline @exclusivity(unchecked) private(set) var capacity: Int
    /// The last commit point read or written.
    @exclusivity(unchecked) private(set) var committed: CommitSlot
    /// Records below this index are on disk (durable modes); in-place writes lower it.
    @usableFromInline @exclusivity(unchecked) var syncedBelow: Int {
        didSet { updateFastPathLimits() }
    }
    /// How many closures are borrowing records zero-copy; growth must not remap meanwhile.
    @exclusivity(unchecked) var borrowCount = 0
    @usableFromInline @exclusivity(unchecked) private(set) var isClosed = false
    /// What lives as long as this table (RecordTable.attach): told when it closes.
    var companions: [any TableCompanion] = []
    /// A writer's doorbell (Doorbell.swift), if the system offers one.
    private var writerDoorbell: WriterDoorbell?
    /// The doorbell's registration word, or a word that is always 0: `publish` loads it once.
    @usableFromInline @exclusivity(unchecked) private(set) var doorbellRegistration = unsafe noDoorbellRegistration
    /// A reader's side of the doorbell, made when it first waits.
    private lazy var listener = DoorbellListener(forTableOn: fileDescriptor)
    /// The open file's descriptor, which `map` owns.
    private let fileDescriptor: Int32

    private init(
        path: String, header: TableHeader, isWritable: Bool, durability: Durability, bootIdentifier: [UInt8],
        map: consuming MemoryMappedFile, view: consuming MappedViewAccessor, count: Int, committed: CommitSlot,
        ringsReaders: Bool = true
    ) {
        self.path = path
        self.header = header
        self.isWritable = isWritable
        self.durability = durability
        self.bootIdentifier = bootIdentifier
        self.stride = header.schema.stride
        // SAFETY: the pointer stays valid while `view` is mapped; `remap` and `close` update or retire it.
        let base = unsafe view.withUnsafeMutableBytes { $0.baseAddress! }
        unsafe self.base = unsafe base
        unsafe self.records = unsafe base + header.dataOffset
        unsafe self.capacity = (view.capacity - header.dataOffset) / header.schema.stride
        unsafe self.count = count
        unsafe self.committed = committed
        unsafe self.syncedBelow = committed.count
        self.hasBools = header.schema.hasBools
        self.paddingRuns = header.schema.paddingRuns
        self.hasPadding = !paddingRuns.isEmpty
        self.fileDescriptor = map.fileDescriptor
        unsafe self.map = Optional(map)
        unsafe self.view = Optional(view)
        self.ringsReaders = isWritable && ringsReaders
        updateFastPathLimits()
        if self.ringsReaders { installDoorbell() }
    }

    /// Whether this writer publishes a doorbell: not a migration's hold on the old table, which
    /// must stay byte for byte as it was.
    private let ringsReaders: Bool

    /// Creates the writer's doorbell, names it in the live area, and wakes every sleeper: any
    /// that registered with an earlier writer's doorbell attaches this one (Doorbell.swift).
    private func installDoorbell() {
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
    private func removeDoorbell() {
        guard ringsReaders, unsafe view != nil else { return }
        unsafe view!.atomicStore(UInt64(0), at: DoorbellFormat.liveAreaOffset)
        writerDoorbell = nil
        unsafe doorbellRegistration = unsafe noDoorbellRegistration
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
    }

    private func updateFastPathLimits() {
        unsafe plainLoadLimit = unsafe hasBools ? 0 : count
        let storeLimit = unsafe hasBools || hasPadding || !isWritable ? 0 : count
        unsafe plainStoreStart = unsafe durability == .none ? 0 : min(syncedBelow, storeLimit)
        unsafe plainStoreSpan = unsafe storeLimit - plainStoreStart
    }

    /// A table dropped without `close()` closes as `close()` does: it commits (syncing only what
    /// its durability mode promises) and unmaps without the implicit whole-file `msync` and
    /// `fsync` that a writable view and map would otherwise run when they go away.
    deinit {
        if unsafe !isClosed { try? close() }
    }

    static let currentBootIdentifier = systemBootIdentifier

    // MARK: Create and open

    /// Creates a table. With `replacing`, the new file stays unnamed until ``replaceFile()``
    /// puts it over the table at `path` (a migration); otherwise it is linked at once and fails
    /// with `alreadyExists` if the path is taken.
    /// - Parameter preparing: Called with the new, still unnamed file before anything is
    ///   written to it or a doorbell made for it (whose mode follows the file's): a migration
    ///   gives it the old table's owner, mode and extended attributes there.
    static func create(
        path: String, schema: RecordSchema, metadata: [(key: String, value: String)], capacity: Int,
        durability: Durability,
        replacing: Bool = false,
        preparing: (borrowing MemoryMappedFile) throws(MappedFileError) -> Void = { _ throws(MappedFileError) in }
    ) throws(RecordTableError) -> TableStorage {
        let operation = "create"
        func invalid(_ message: String) -> RecordTableError {
            RecordTableError(.invalidArgument, operation: operation, path: path, message: message)
        }
        guard capacity >= 0 else { throw invalid("the capacity \(capacity) is negative") }
        guard capacity <= LiveCount.maximum else {
            throw invalid("the capacity \(capacity) is above the format's limit of \(LiveCount.maximum) records")
        }
        for entry in metadata {
            guard (1...255).contains(entry.key.utf8.count), entry.value.utf8.count <= 65_535 else {
                throw invalid("metadata key '\(entry.key)' must be 1 to 255 bytes, its value at most 65,535")
            }
        }
        guard TableHeader.metadataSize(metadata) <= TableFormat.maximumMetadataBytes else {
            throw invalid("the metadata is larger than \(TableFormat.maximumMetadataBytes) bytes")
        }
        let dataOffset = TableHeader.dataOffset(schema: schema, metadata: metadata)
        let header = TableHeader(
            schema: schema, metadata: metadata, flags: durability.rawValue, versionMinor: TableFormat.versionMinor,
            dataOffset: dataOffset)
        guard let fileSize = fileSize(dataOffset: dataOffset, stride: schema.stride, records: max(capacity, 1)) else {
            throw invalid("\(capacity) records of \(schema.stride) bytes are more than a file can hold")
        }
        do throws(MappedFileError) {
            // Written while it has no name, then linked into place: any file a reader finds at
            // the path is a whole table, never a half-written header.
            let map = try MemoryMappedFile.createUnnamedFile(destinedFor: path, capacity: fileSize)
            guard try map.tryLock(bytes: TableFormat.writerLockBytes) else {
                preconditionFailure("TableStorage: an unnamed file was locked by someone else")
            }
            try preparing(map)
            var view = try map.makeViewAccessor()
            let recordCapacity = (fileSize - dataOffset) / schema.stride
            let bytes = header.encoded(capacity: recordCapacity)
            view.write(contentsOf: bytes.span, at: 0)
            let boot = currentBootIdentifier
            view.write(contentsOf: boot.span, at: TableFormat.liveOffset)
            if durability != .none { try view.flush(range: 0..<dataOffset) }
            if !replacing { try map.linkIntoPlace(syncingDirectory: durability != .none) }
            return TableStorage(
                path: path, header: header, isWritable: true, durability: durability, bootIdentifier: boot,
                map: map, view: view, count: 0, committed: CommitSlot(generation: 1, count: 0, capacity: recordCapacity)
            )
        } catch {
            throw RecordTableError(error, operation: operation, path: path)
        }
    }

    /// - Parameter takeoverStep: Tests only: called with the file's header bytes after each
    ///   store of a writer's takeover of the live area, to check what a reader sees then.
    /// - Parameter ringsReaders: Publish a doorbell and wake sleepers (a writer); false for a
    ///   migration's hold on the table it replaces, which never publishes and must not change it.
    static func open(
        path: String, writable: Bool, durability: Durability, waitForWriter: Duration?, ringsReaders: Bool = true,
        bootIdentifier: [UInt8] = currentBootIdentifier, takeoverStep: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) throws(RecordTableError) -> TableStorage {
        let operation = "open"
        var opened = try mapFile(path: path, writable: writable, waitForWriter: waitForWriter)
        let decoded: (TableHeader, CommitSlot, Int)
        do {
            decoded = try decodeMapped(opened.view, bootIdentifier: bootIdentifier, path: path, operation: operation)
        } catch  where error.code == .corrupt {
            // A writer grows the file before it publishes or commits a count past the old end, so
            // a count past this mapping may be a growth since it was made: read the size again
            // (after the count) and remap once before calling the file damaged.
            guard let size = try? opened.map.refreshCapacity(), size > opened.view.capacity else { throw error }
            do { opened.view = try opened.map.makeViewAccessor() } catch {
                throw RecordTableError(error, operation: operation, path: path)
            }
            decoded = try decodeMapped(opened.view, bootIdentifier: bootIdentifier, path: path, operation: operation)
        }
        let (header, slot, count) = decoded
        if writable {
            // Take over: publish this boot and the recovered count for readers. When the boot
            // identifier changes, the live word is invalidated *first*: a reader that sees this
            // boot's identifier must never pair it with a live word left from an earlier boot,
            // which may count records that never reached the disk. Within one boot the word
            // stays: it is this boot's, and readers that hold its count must not see it go back
            // to the commit point's (docs/FORMAT.md, "Live area").
            if thisBootsLiveWord(opened.view, bootIdentifier: bootIdentifier) == nil {
                opened.view.atomicStore(LiveCount.invalidWord, at: TableFormat.liveCountOffset)
                unsafe report(opened.view, to: takeoverStep)
            }
            storeBootIdentifier(bootIdentifier, into: &opened.view)
            unsafe report(opened.view, to: takeoverStep)
            opened.view.atomicStore(LiveCount.word(count), at: TableFormat.liveCountOffset)
            unsafe report(opened.view, to: takeoverStep)
        }
        return TableStorage(
            path: path, header: header, isWritable: writable, durability: durability, bootIdentifier: bootIdentifier,
            map: opened.map, view: opened.view, count: count, committed: slot, ringsReaders: ringsReaders)
    }

    /// A file opened and mapped whole.
    private struct MappedFile: ~Copyable {
        var map: MemoryMappedFile
        var view: MappedViewAccessor
    }

    /// How many times a writer opens the path again after finding, once it holds the lock, that
    /// another file took the path while it waited (a migration renames its new table over the
    /// old one while holding the old one's lock).
    static let reopenAttempts = 16

    /// Opens and maps the file at `path`; a writer also takes the writer lock, waiting up to
    /// `waitForWriter`, and then checks that the path still names the file it locked. The lock
    /// it waited for may be that of a file that a migration replaced meanwhile: its appends
    /// would go to a file no one opens again. On such a change it opens the path again, up to
    /// ``reopenAttempts`` times, then fails with `replaced`.
    private static func mapFile(
        path: String, writable: Bool, waitForWriter: Duration?
    ) throws(RecordTableError) -> MappedFile {
        let deadline = monotonicNanoseconds().saturatingAdd((waitForWriter ?? .zero).saturatingNanoseconds)
        var attempt = 0
        while true {
            let map: MemoryMappedFile
            do {
                map = try MemoryMappedFile.createFromFile(
                    path: path, mode: .open, access: writable ? .readWrite : .read)
            } catch {
                throw RecordTableError(error, operation: "open", path: path)
            }
            if writable {
                var acquired = false, isTheLockedFile = false
                do throws(MappedFileError) {
                    acquired = try waitForWriterLock(map, until: deadline)
                    if acquired { isTheLockedFile = try map.isNamed(by: path) }
                } catch {
                    throw RecordTableError(error, operation: "open", path: path)
                }
                guard acquired else {
                    throw RecordTableError(
                        .writerActive, operation: "open", path: path,
                        message: "another process has the table open for writing")
                }
                guard isTheLockedFile else {
                    try? map.close(flush: false)
                    attempt += 1
                    guard attempt < reopenAttempts else {
                        throw RecordTableError(
                            .replaced, operation: "open", path: path,
                            message:
                                "another file took the path each of \(reopenAttempts) times this process got the writer lock; nothing was written"
                        )
                    }
                    continue
                }
            }
            do {
                let view = try map.makeViewAccessor()
                return MappedFile(map: map, view: view)
            } catch {
                throw RecordTableError(error, operation: "open", path: path)
            }
        }
    }

    /// Takes the writer lock, trying again with backoff until `deadline` (monotonic
    /// nanoseconds) has passed; returns whether it got it. (The outcome is a value, not an
    /// error message to match.)
    private static func waitForWriterLock(
        _ map: borrowing MemoryMappedFile, until deadline: UInt64
    ) throws(MappedFileError) -> Bool {
        var pause = 100
        while try !map.tryLock(bytes: TableFormat.writerLockBytes) {
            guard monotonicNanoseconds() < deadline else { return false }
            sleepMicroseconds(pause)
            pause = min(pause * 2, 10_000)
        }
        return true
    }

    /// decodeState over a mapped file, with this boot's live word if it has one. (A file shorter
    /// than the header has no live area; decodeState refuses it with the reason.)
    private static func decodeMapped(
        _ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8], path: String, operation: String
    ) throws(RecordTableError) -> (TableHeader, CommitSlot, Int) {
        let liveWord =
            view.capacity >= TableFormat.pageSize ? thisBootsLiveWord(view, bootIdentifier: bootIdentifier) : nil
        return unsafe try view.withUnsafeMutableBytes { bytes throws(RecordTableError) in
            unsafe try decodeState(UnsafeRawBufferPointer(bytes), liveWord: liveWord, path: path, operation: operation)
        }
    }

    /// The live word, if the live area carries `bootIdentifier`; else nil. The identifier is
    /// loaded first, with acquire ordering, so the word read after it is at least as new as the
    /// invalidation a writer stores before it changes the identifier.
    private static func thisBootsLiveWord(_ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8]) -> UInt64? {
        RecordWaiting.thisBootsLiveWord(view, bootIdentifier: bootIdentifier)
    }

    /// Validates the header and picks the count: the live count if this boot wrote it
    /// (`liveWord`, from ``thisBootsLiveWord(_:bootIdentifier:)``), else the latest commit point.
    static func decodeState(
        _ bytes: UnsafeRawBufferPointer, liveWord: UInt64?, path: String, operation: String
    ) throws(RecordTableError) -> (TableHeader, CommitSlot, Int) {
        let header: TableHeader
        do {
            header = unsafe try TableHeader.decode(bytes, fileSize: bytes.count)
        } catch {
            throw RecordTableError(error, operation: operation, path: path)
        }
        func corrupt(_ message: String) -> RecordTableError {
            RecordTableError(.corrupt, operation: operation, path: path, message: message)
        }
        let slot = unsafe CommitSlot.latest(bytes)
        let capacity = (bytes.count - header.dataOffset) / header.schema.stride
        switch TableFormat.chooseCount(liveWord: liveWord, commitPoint: slot, capacity: capacity) {
        case .count(let count): return (header, slot!, count)
        case .noCommitPoint: throw corrupt("neither commit slot is valid")
        case .pastTheEnd(let count):
            throw corrupt("the count \(count) points past the end of the file, which has room for \(capacity) records")
        }
    }

    /// Hands the view's bytes to a test's takeover hook, if any.
    private static func report(_ view: borrowing MappedViewAccessor, to hook: ((UnsafeRawBufferPointer) -> Void)?) {
        guard let hook = unsafe hook else { return }
        unsafe view.withUnsafeMutableBytes { unsafe hook(UnsafeRawBufferPointer($0)) }
    }

    /// Stores the boot identifier as two 8-byte release stores, after everything written before.
    private static func storeBootIdentifier(_ identifier: [UInt8], into view: inout MappedViewAccessor) {
        for half in 0..<2 {
            var word: UInt64 = 0
            unsafe withUnsafeMutableBytes(of: &word) { unsafe $0.copyBytes(from: identifier[half * 8..<half * 8 + 8]) }
            view.atomicStore(word, at: TableFormat.liveOffset + half * 8)
        }
    }

    /// The file size for `records` records, rounded up to a page; nil if it overflows.
    static func fileSize(dataOffset: Int, stride: Int, records: Int) -> Int? {
        let (data, overflow) = stride.multipliedReportingOverflow(by: records)
        guard !overflow, data <= Int.max - dataOffset - TableFormat.pageSize else { return nil }
        let bytes = dataOffset + data
        return (bytes + TableFormat.pageSize - 1) / TableFormat.pageSize * TableFormat.pageSize
    }

    // MARK: Writing

    private func requireWritable(_ operation: String) {
        unsafe precondition(!isClosed, "RecordTable: \(operation) on a closed table")
        precondition(isWritable, "RecordTable: \(operation) on a table opened read-only")
    }

    /// Makes room for `minimum` records, growing the file in chunks.
    func reserve(_ minimum: Int) throws(RecordTableError) {
        requireWritable("reserveCapacity")
        guard unsafe minimum > capacity else { return }
        unsafe precondition(borrowCount == 0, "RecordTable: cannot grow the table while its records are borrowed")
        let stride = header.schema.stride
        let step = unsafe min(max(capacity, (1 << 16) / stride), (1 << 30) / stride)
        let target = unsafe Swift.max(minimum, capacity + step)
        guard let newSize = Self.fileSize(dataOffset: header.dataOffset, stride: stride, records: target) else {
            throw RecordTableError(
                .invalidArgument, operation: "grow", path: path,
                message: "\(target) records of \(stride) bytes are more than a file can hold")
        }
        do throws(MappedFileError) {
            unsafe try map!.grow(toCapacity: newSize)
            let newView = unsafe try map!.makeViewAccessor()
            unsafe try view.take()?.close(flush: false)
            unsafe view = Optional(newView)
        } catch {
            throw RecordTableError(error, operation: "grow", path: path)
        }
        // SAFETY: the new mapping replaces the old one; base and records now point into it.
        unsafe base = unsafe view!.withUnsafeMutableBytes { $0.baseAddress! }
        unsafe records = unsafe base + header.dataOffset
        unsafe capacity = (newSize - header.dataOffset) / stride
    }

    /// Reserves room for `extra` more records and returns where the first goes.
    /// (A closed or read-only table has capacity 0 or fails in `reserve`, which traps.)
    @inlinable @inline(__always)
    func slotsForAppending(_ extra: Int) throws(RecordTableError) -> UnsafeMutableRawPointer {
        if unsafe _slowPath(count + extra > capacity || !isWritable) { try makeRoom(extra) }
        return unsafe records + count &* stride
    }

    @usableFromInline
    func makeRoom(_ extra: Int) throws(RecordTableError) {
        unsafe precondition(count + extra <= LiveCount.maximum, "RecordTable: more than 2^48 - 1 records")
        unsafe try reserve(count + extra)
    }

    /// Publishes `newCount` records to readers (after they are written), rings the doorbell if
    /// a reader sleeps, and commits in `everyAppend` mode. Without sleepers this is one store,
    /// one load and no fence (the argument is in Doorbell.swift).
    @inlinable @inline(__always)
    func publish(count newCount: Int) throws(RecordTableError) {
        unsafe count = newCount
        unsafe view!.atomicStore(LiveCount.word(newCount), at: TableFormat.liveCountOffset)
        // The word is the complement of the smallest target a sleeper waits for (0: no sleeper,
        // which no count reaches): one load and one compare.
        let registered = unsafe cmapped_load_after_stores_u64(doorbellRegistration)
        if _slowPath(UInt64(truncatingIfNeeded: newCount) >= ~registered) { ringDoorbell(registered: registered) }
        if _slowPath(durability == .everyAppend) { try commit() }
    }

    /// The count reached the smallest target a sleeper registered: clears the registration and
    /// wakes every reader that sleeps on the live word, one system call whatever their number.
    @usableFromInline @inline(never)
    func ringDoorbell(registered: UInt64) {
        writerDoorbell?.clearRegistration(registered)
        unsafe view!.wakeWaiters(onWordAt: TableFormat.liveCountOffset)
        unsafe doorbellRings &+= 1
    }

    /// Whether this writer has a doorbell, and whether a reader is registered on it (tests).
    var hasDoorbell: Bool { writerDoorbell != nil }
    var doorbellHasSleeper: Bool { unsafe cmapped_load_acquire_u64(doorbellRegistration) != 0 }

    /// How many times this writer rang (tests check that a crashed sleeper costs one ring).
    @usableFromInline @exclusivity(unchecked) var doorbellRings = 0

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
        unsafe precondition(n >= 0 && n <= count, unsafe "RecordTable: cannot remove \(n) of \(count) records")
        unsafe try publish(count: count - n)
    }

    /// Writes a commit point for the current count, syncing first in the durable modes.
    @usableFromInline
    func commit() throws(RecordTableError) {
        requireWritable("commit")
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
        unsafe committed = slot
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
        if startingWriteback { unsafe map!.startWriteback(range: offset..<offset + bytes.count) }
    }

    /// The file's owner, group and mode.
    func ownership() throws(RecordTableError) -> FileOwnership {
        do { return unsafe try map!.ownership() } catch {
            throw RecordTableError(error, operation: "ownership", path: path)
        }
    }

    /// How many names (hard links) the file has.
    func linkCount() throws(RecordTableError) -> Int {
        do { return unsafe try map!.linkCount() } catch {
            throw RecordTableError(error, operation: "linkCount", path: path)
        }
    }

    /// Copies this table's file's extended attributes (ACLs among them) to `other`.
    func copyExtendedAttributes(to other: borrowing MemoryMappedFile) throws(MappedFileError) {
        unsafe try other.copyExtendedAttributes(from: map!)
    }

    /// Puts this table, made by `create(…replacing: true)`, over the file at its path: fsyncs
    /// it whole, then renames it into place and syncs the directory.
    func replaceFile() throws(RecordTableError) {
        do throws(MappedFileError) {
            unsafe try map!.flush()
            unsafe try map!.replaceFile(syncingDirectory: true)
        } catch {
            throw RecordTableError(error, operation: "replaceFile", path: path)
        }
    }

    // MARK: Reading

    /// Re-reads the count another process published, remapping if the file grew; returns it.
    /// One `fstat` first: a file that another process truncated is a `truncated` error here,
    /// before any read of its missing pages could raise SIGBUS; a file that another replaced
    /// at its path (a migration) is `replaced`.
    func refresh() throws(RecordTableError) -> Int {
        unsafe precondition(!isClosed, "RecordTable: refresh on a closed table")
        guard !isWritable else { return unsafe count }
        let file: (capacity: Int, isLinked: Bool)
        do {
            file = unsafe try map!.refreshCapacityAndLinks()
        } catch {
            throw RecordTableError(error, operation: "refresh", path: path)
        }
        guard file.isLinked else {
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
            unsafe precondition(borrowCount == 0, "RecordTable: cannot remap the table while its records are borrowed")
            do throws(MappedFileError) {
                // The size again, after the count: the writer grows the file before it publishes
                // a count past the old end, so only a size read after the count covers it.
                let mappedBytes = unsafe try map!.refreshCapacity()
                let newView = unsafe try map!.makeViewAccessor()
                unsafe try view.take()?.close(flush: false)
                unsafe view = Optional(newView)
                unsafe capacity = (mappedBytes - header.dataOffset) / header.schema.stride
            } catch {
                throw RecordTableError(error, operation: "refresh", path: path)
            }
            // SAFETY: the new mapping replaces the old one.
            unsafe base = unsafe view!.withUnsafeMutableBytes { $0.baseAddress! }
            unsafe records = unsafe base + header.dataOffset
        }
        let newCount = try chosenCount(inputs, operation: "refresh")
        unsafe count = newCount
        return newCount
    }

    /// The count rule (``TableFormat/chooseCount(liveWord:commitPoint:capacity:)``) over this
    /// mapping: a live count past it falls back to the commit point, as `open` does. Keeps the
    /// latest commit point it read.
    private func chosenCount(
        _ inputs: (liveWord: UInt64?, commitPoint: CommitSlot?), operation: String
    ) throws(RecordTableError) -> Int {
        if let slot = inputs.commitPoint { unsafe committed = slot }
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
                return live
            }
            let current = try refresh()
            let now = monotonicNanoseconds()
            if current > known || now >= deadline || isWritable { return current }
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
            return unsafe try map!.isLockedElsewhere(bytes: TableFormat.writerLockBytes)
        } catch {
            throw RecordTableError(error, operation: "writerIsActive", path: path)
        }
    }

    // MARK: Closing

    /// Closes; a writer commits first unless `committing` is false (a migration leaves the
    /// old table exactly as it found it).
    func close(committing: Bool = true) throws(RecordTableError) {
        guard unsafe !isClosed else { return }
        unsafe precondition(borrowCount == 0, "RecordTable: cannot close the table while its records are borrowed")
        var failure: RecordTableError?
        if isWritable && committing {
            do { try commit() } catch { failure = error }
        }
        removeDoorbell()
        unsafe isClosed = true
        unsafe count = 0
        unsafe capacity = 0
        let closing = companions
        companions = []
        for companion in closing { companion.tableDidClose() }
        unsafe try? view.take()?.close(flush: false)
        unsafe try? map.take()?.close(flush: false)
        if let failure { throw failure }
    }
}
