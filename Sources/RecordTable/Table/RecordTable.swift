import MemoryMappedFiles

/// How a table is opened.
public enum TableAccess: Sendable, Hashable {
    /// Read-only: any number of processes, at the same time as a writer.
    case readOnly
    /// Read and write: one process at a time (an OFD lock that the kernel releases if it dies).
    case readWrite
    /// Append beside other processes that opened the table the same way: each append or batch
    /// holds the appender lock for its own duration only, and is whole and contiguous for
    /// readers. Excludes a `.readWrite` writer, and is excluded by one. In-place changes
    /// (`table[i] = …`, `removeLast`) trap: they need the exclusive writer.
    case sharedAppend
}

/// A persistent array of fixed-size records in a self-describing file (docs/FORMAT.md).
///
/// ```swift
/// @MappedRecord
/// struct Point {
///     var id: Int64
///     var x: Double
/// }
///
/// let table = try RecordTable<Point>.create(path: "points.mrec")
/// try table.append(Point(id: 1, x: 2.5))
/// for point in table where point.x > 1 { print(point.id) }
/// try table.close()
/// ```
///
/// One process writes; any number read, in other processes, at the same time. A reader
/// sees a consistent prefix: ``count`` is a snapshot that ``refresh()`` moves forward, and
/// every record below it is complete. Appends are safe from `kill -9` as soon as they return;
/// what survives a power loss depends on ``Durability``.
///
/// A table is a reference, like a file handle; it is not `Sendable`: `refresh()` remaps the
/// file and moves the snapshot, so two threads that used one handle at once could read through
/// a mapping the other had just replaced, and a lock on every `table[i]` would double its cost.
/// Use it from one task at a time. Swift 6's region-based isolation still lets you *send* a
/// handle to another task (`Task { [table] in … }`) when the sending task stops using it; to
/// follow a table from a task, ``updates()`` is `Sendable`. Indices outside `0..<count`,
/// writing to a read-only table, and using a closed one trap.
///
/// ## Safety
/// Reading a record copies it out. Fields of types with invalid bit patterns (Bool) are
/// checked: any non-zero byte reads as `true`. Another process truncating the file raises
/// `SIGBUS` in readers (docs/CAVEATS.md).
@safe public final class RecordTable<Record: MappedRecord>: RandomAccessCollection, MutableCollection {
    @usableFromInline let storage: TableStorage
    /// Offsets of Bool bytes in a record; loads normalize them.
    @usableFromInline let boolOffsets: [Int]
    /// Room for one record, where `table[unchecked:]` mends the Bools of a copy; nil for records
    /// without Bools. (The table is used from one task at a time.)
    @usableFromInline let mendingScratch: UnsafeMutableRawPointer?

    private init(storage: TableStorage) {
        self.storage = storage
        self.boolOffsets = Record.schema.boolOffsets
        unsafe self.mendingScratch =
            boolOffsets.isEmpty
            ? nil
            : UnsafeMutableRawPointer.allocate(
                byteCount: MemoryLayout<Record>.size, alignment: MemoryLayout<Record>.alignment)
    }

    deinit { unsafe mendingScratch?.deallocate() }

    /// Creates a new table file for `Record`; fails with `alreadyExists` if there is one.
    /// - Parameters:
    ///   - path: Where the file goes; nothing may exist there yet.
    ///   - capacity: Records to make room for now; the table grows as needed anyway.
    ///   - durability: When records become safe from power loss.
    ///   - metadata: Small key-value pairs stored in the header (keys 1 to 255 bytes).
    public static func create(
        path: String, capacity: Int = 0, durability: Durability = .batch, metadata: KeyValuePairs<String, String> = [:]
    ) throws(RecordTableError) -> RecordTable {
        var pairs = metadata.map { (key: $0.key, value: $0.value) }
        if let versioned = Record.self as? any VersionedRecord.Type {
            pairs.append((TableMigration.versionKey, String(versioned.schemaVersion)))
        }
        return RecordTable(
            storage: try TableStorage.create(
                path: path, schema: Record.schema, metadata: pairs, capacity: capacity, durability: durability))
    }

    /// Opens a table file whose schema must match `Record`'s.
    ///
    /// Opening takes the writer lock only when asked: `access` defaults to `.readOnly` here, in
    /// `open(name:access:durability:registry:)` (NamedTables) and in `DynamicRecordTable.open`, alike. Pass
    /// `.readWrite` to append or change records (one process at a time).
    ///
    /// A reader (`.readOnly`) may also open a file that has *more* fields than `Record`, when
    /// every field of `Record` is in the file with the same type, count and offset and the
    /// stride is the same: the file's other fields are not read. A writer needs the exact
    /// schema, since its writes would zero the bytes of fields it does not know; use
    /// `migrate(path:options:)` to rewrite the file.
    /// - Parameters:
    ///   - path: The table file.
    ///   - access: `.readWrite` to write (one process at a time), `.sharedAppend` to append
    ///     beside other processes, `.readOnly` to read.
    ///   - durability: The writer's durability mode; ignored for readers.
    ///   - waitForWriter: How long to wait for another writer to close; by default `open`
    ///     fails at once with `writerActive`.
    /// - Throws: `schemaMismatch` naming each differing field, `corrupt`, `notATable`,
    ///   `unsupportedVersion`, `byteOrderMismatch`, `writerActive`, or a file-system error.
    public static func open(
        path: String, access: TableAccess = .readOnly, durability: Durability = .batch, waitForWriter: Duration? = nil
    ) throws(RecordTableError) -> RecordTable {
        let storage = unsafe try TableStorage.open(
            path: path, writable: access != .readOnly, sharedAppender: access == .sharedAppend, durability: durability,
            waitForWriter: waitForWriter)
        // The same layout, field for field, is the common case and needs no report.
        let fileSchema = storage.header.schema
        if fileSchema != Record.schema {
            let differences = fileSchema.differences(from: Record.schema, otherName: "\(Record.self)")
            let readable = access == .readOnly && fileSchema.contains(Record.schema)
            guard differences.isEmpty || readable else {
                try? storage.close()
                throw RecordTableError(
                    .schemaMismatch, operation: "open", path: path,
                    message: "the file's schema differs from \(Record.self): " + differences.joined(separator: "; ")
                        + " (RecordTable.migrate(path:) rewrites it to the new schema)")
            }
        }
        return RecordTable(storage: storage)
    }

    // MARK: Properties

    /// The table's file.
    public var path: String { storage.path }
    /// The schema stored in the file.
    public var schema: RecordSchema { storage.header.schema }
    /// The metadata stored in the file.
    public var metadata: [(key: String, value: String)] { storage.header.metadata }
    /// Whether this table was opened for writing.
    public var isWritable: Bool { storage.isWritable }
    /// The durability mode of this writer.
    public var durability: Durability { storage.durability }
    /// Records the file has room for before it grows.
    public var capacity: Int { unsafe storage.capacity }
    /// The records at the last commit point this process wrote or read.
    public var committedCount: Int { storage.committed.count }
    /// Whether ``close()`` was called.
    public var isClosed: Bool { unsafe storage.isClosed }
    /// The number of the file that follows this one in its series, if the table is sealed
    /// (``TableSeries``); nil for a table that still takes records.
    public var sealedSuccessor: Int? { storage.sealedSuccessor() }

    // MARK: Collection

    /// 0.
    public var startIndex: Int { 0 }
    /// The number of records: the writer's count, or a reader's last snapshot.
    public var endIndex: Int { unsafe storage.count }
    /// The number of records: the writer's count, or a reader's last snapshot.
    public var count: Int { unsafe storage.count }

    /// The record at `index`. Reading copies it out; writing changes it in place (a writer only).
    /// Traps if `index` is outside `0..<count`.
    /// - Complexity: O(1): one compare and the record's load or store.
    @inlinable
    public subscript(index: Int) -> Record {
        get { load(index) }
        set { store(newValue, at: index) }
        _modify {
            // SAFETY: index < count <= capacity, inside the writable mapping; stride keeps alignment.
            let address = unsafe storage.records + index &* MemoryLayout<Record>.stride
            // The yield goes straight into the mapping: the accessor inlines and touches only the
            // changed bytes. One compare decides that the write needs nothing else (see
            // TableStorage.plainStoreStart); a negative index wraps to a huge unsigned value.
            // One yield only, or the coroutine is no longer inlined.
            let offset = unsafe UInt(bitPattern: index &- storage.plainStoreStart)
            let isPlain = unsafe _fastPath(offset < UInt(bitPattern: storage.plainStoreSpan))
            if !isPlain { prepareSlowStore(at: index) }
            yield unsafe &address.assumingMemoryBound(to: Record.self).pointee
            if _slowPath(!isPlain) { unsafe finishSlowStore(address, at: index) }
        }
    }

    /// A record copied out of the mapping.
    ///
    /// Everything on this path is inline, and nothing on it writes memory the caller can see:
    /// an index check that fails calls a function that never returns, and Bool bytes are mended
    /// in the copy. Both loads of the table's state come first, before anything can leave a
    /// caller's loop. So in a loop of `table[i]` the compiler keeps the record pointer and the
    /// limit in registers, as it does for a raw pointer, and each access costs one unsigned
    /// compare beside the load itself (docs/PERFORMANCE.md, "The table's hot paths").
    @inlinable @inline(__always)
    func load(_ index: Int) -> Record {
        let records = unsafe storage.records
        let plainLimit = unsafe storage.plainLoadLimit
        // SAFETY: below plainLoadLimit, index < count <= capacity, so the record lies inside the mapping.
        let address = unsafe records + index &* MemoryLayout<Record>.stride
        if _fastPath(UInt(bitPattern: index) < UInt(bitPattern: plainLimit)) {
            return unsafe address.load(as: Record.self)
        }
        // Records with Bools, and indices that trap. The copy's address is taken only here, so
        // the plain load above stays in registers.
        checkIndex(index)
        var record = unsafe address.load(as: Record.self)
        unsafe withUnsafeMutableBytes(of: &record) { bytes in
            for offset in boolOffsets where unsafe bytes[offset] > 1 { unsafe bytes[offset] = 1 }
        }
        return record
    }

    /// The checks of an in-place write off the fast path: the index, a read-only table, and
    /// damaged Bool bytes, which a writer repairs in place since the record is being written anyway.
    @usableFromInline @inline(never)
    func prepareSlowStore(at index: Int) {
        checkIndex(index)
        storage.updateFastPathLimits()  // appends leave the store range behind the count
        if !storage.updatesInPlace { storage.refuseInPlaceUpdate("an in-place write") }
        unsafe normalizeBools(storage.records + index * MemoryLayout<Record>.stride)
    }

    /// The work of an in-place write off the fast path after the write: zeros in the padding,
    /// and a note for the next durable commit.
    @usableFromInline @inline(never)
    func finishSlowStore(_ address: UnsafeMutableRawPointer, at index: Int) {
        if storage.hasPadding { unsafe storage.zeroPadding(address, count: 1) }
        storage.markWritten(index: index)
    }

    /// Makes every Bool byte of the record at `address` 0 or 1, in place (writers only).
    func normalizeBools(_ address: UnsafeMutableRawPointer) {
        for offset in boolOffsets where unsafe address.load(fromByteOffset: offset, as: UInt8.self) > 1 {
            unsafe address.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
        }
    }

    @inlinable
    func store(_ record: Record, at index: Int) {
        checkIndex(index)
        if _slowPath(!storage.updatesInPlace) { storage.refuseInPlaceUpdate("an in-place write") }
        // SAFETY: index < count <= capacity, inside the writable mapping.
        let address = unsafe storage.records + index &* MemoryLayout<Record>.stride
        unsafe address.storeBytes(of: record, as: Record.self)
        if _slowPath(storage.hasPadding) { unsafe storage.zeroPadding(address, count: 1) }
        storage.markWritten(index: index)
    }

    @inlinable @inline(__always)
    func checkIndex(_ index: Int) {
        if unsafe _slowPath(UInt(bitPattern: index) >= UInt(bitPattern: storage.count)) { indexFailure(index) }
    }

    @usableFromInline @inline(never)
    func indexFailure(_ index: Int) -> Never {
        if unsafe storage.isClosed { fatalError("RecordTable: index \(index) of a closed table") }
        fatalError(unsafe "RecordTable: index \(index) is out of range for a table of \(storage.count) records")
    }

    // MARK: Appending and removing

    /// Appends a record. It is visible to readers, and safe from a process crash, when this returns.
    /// - Throws: `noSpace` if the file cannot grow; the table keeps its old count.
    /// - Complexity: Amortized O(1), with no system call unless the file grows (by its
    ///   capacity, at least 64 KiB) or a reader sleeps on the doorbell.
    @inlinable @inline(__always)
    public func append(_ record: Record) throws(RecordTableError) {
        let address = unsafe try storage.slotsForAppending(1)
        // SAFETY: slotsForAppending made room for one record at this address.
        unsafe address.storeBytes(of: record, as: Record.self)
        if _slowPath(storage.hasPadding) { unsafe storage.zeroPadding(address, count: 1) }
        unsafe try storage.publish(count: storage.count + 1)
    }

    /// Appends records, and publishes them together: readers see all or none of them.
    ///
    /// A batch of 1 MiB or more, of records without padding, is written with one `pwrite`
    /// instead of through the mapping: the kernel then fills fresh pages directly, where a first
    /// touch through the mapping would have it zero-fill each page first.
    /// - Complexity: O(*n*) for *n* records: one copy, one publish.
    @inlinable
    public func append(contentsOf newRecords: Span<Record>) throws(RecordTableError) {
        guard !newRecords.isEmpty else { return }
        let address = unsafe try storage.slotsForAppending(newRecords.count)
        let byteCount = newRecords.count &* MemoryLayout<Record>.stride
        if byteCount >= 1 << 20 && !storage.hasPadding {
            unsafe try newRecords.withUnsafeBytes { (source) throws(RecordTableError) in
                unsafe try storage.writeRecords(source, at: storage.count, startingWriteback: false)
            }
            unsafe try storage.publish(count: storage.count + newRecords.count)
            return
        }
        unsafe newRecords.withUnsafeBytes { source in
            // SAFETY: slotsForAppending made room for the records at this address.
            unsafe address.copyMemory(from: source.baseAddress!, byteCount: source.count)
        }
        if _slowPath(storage.hasPadding) { unsafe storage.zeroPadding(address, count: newRecords.count) }
        unsafe try storage.publish(count: storage.count + newRecords.count)
    }

    /// Appends the records of an array; see ``append(contentsOf:)-(Span<Record>)``.
    public func append(contentsOf newRecords: [Record]) throws(RecordTableError) {
        try append(contentsOf: newRecords.span)
    }

    /// Makes room for `minimumCapacity` records, so appends up to it never grow the file.
    public func reserveCapacity(_ minimumCapacity: Int) throws(RecordTableError) {
        try storage.reserve(minimumCapacity)
    }

    /// Removes the last `n` records (the file keeps its size). Traps if `n > count`.
    /// - Complexity: O(1): one publish of the lower count.
    public func removeLast(_ n: Int = 1) throws(RecordTableError) {
        try storage.removeLast(n)
    }

    /// Removes every record (the file keeps its size).
    public func removeAll() throws(RecordTableError) {
        unsafe try storage.removeLast(storage.count)
    }

    /// Tells the kernel how the records in `range` will be used: `.sequential` before a long
    /// scan, `.doneWith` after part of one, so a scan of a table larger than memory keeps a
    /// small resident size. A hint only: the records read the same either way.
    public func advise(_ advice: MappingAdvice, records range: Range<Int>) {
        storage.advise(advice, records: range)
    }

    /// Writes a commit point; in `.batch` and `.everyAppend` modes, syncs the records first,
    /// so that they survive a power loss.
    /// - Complexity: O(*n*) in the records written since the last commit (one `msync` of
    ///   them, one of the slot); O(1) in mode `.none`.
    public func commit() throws(RecordTableError) {
        try storage.commit()
    }

    // MARK: Readers

    /// Moves a reader's snapshot to the count the writer has published, remapping if the
    /// file grew; returns the new count. A writer's count is always current.
    /// - Complexity: O(1): no system call while the count fits the mapping; a remap when
    ///   the file grew.
    @discardableResult
    public func refresh() throws(RecordTableError) -> Int {
        try storage.refresh()
    }

    /// Waits until there are more than `known` records (as `tail -f` does), or until
    /// `timeout`; returns the count, mapped and readable (the table is refreshed).
    ///
    /// By default it sleeps until the writer rings the table's doorbell (a futex, docs/FORMAT.md):
    /// no CPU while idle, and it wakes tens of microseconds after the append. `.spin` or
    /// `.spinThenBlock` trade a busy core for sub-microsecond notice. A table that no writer
    /// holds, or one whose writer predates the doorbell, is checked in growing intervals of at
    /// most 100 ms; a writer that opens it wakes every sleeper at once.
    public func waitForRecords(
        beyond known: Int, timeout: Duration, strategy: WaitStrategy = .block
    ) throws(RecordTableError) -> Int {
        try storage.waitForRecords(beyond: known, timeout: timeout, strategy: strategy)
    }

    /// The record count, each time another process changes it: `for try await count in table.updates()`.
    ///
    /// It waits as ``waitForRecords(beyond:timeout:strategy:)`` does, on a thread of its own,
    /// never on one of the cooperative pool's; cancelling the task ends the sequence within
    /// microseconds. It yields counts only: call ``refresh()`` (on the table's own task) to map
    /// the new records. It throws `truncated` or `replaced` if the file is cut short or another
    /// file takes its path.
    public func updates() throws(RecordTableError) -> TableUpdates {
        try TableUpdates(storage: storage)
    }

    /// Whether a process has the table open for writing (this one, if it is the writer). A
    /// follower that sees it false knows the writer has gone (a writer that closes also wakes
    /// every sleeper, so ``waitForRecords(beyond:timeout:strategy:)`` returns at once).
    public func writerIsActive() throws(RecordTableError) -> Bool {
        try storage.writerIsActive()
    }

    // MARK: Closing

    /// Commits (for a writer), unmaps and closes the file; the writer lock is released.
    /// Closing twice does nothing; using a closed table traps.
    public func close() throws(RecordTableError) {
        try storage.close()
    }
}

/// Something that lives as long as a table handle: the table keeps it, tells it when the table
/// closes, and lets go of it then. The name registry keeps a table's published names this way,
/// so a name lasts exactly as long as the table that published it.
public protocol TableCompanion: AnyObject {
    /// The table closed (or was deinitialized without closing): let go of what this holds.
    func tableDidClose()
}

extension RecordTable {
    /// Keeps `companion` until the table closes; ``close()`` then calls its `tableDidClose()`.
    public func attach(_ companion: any TableCompanion) {
        unsafe precondition(!storage.isClosed, "RecordTable: attach to a closed table")
        storage.companions.append(companion)
    }

    /// Lets go of `companion` early, without calling it.
    public func detach(_ companion: any TableCompanion) {
        storage.companions.removeAll { $0 === companion }
    }

    /// The companions attached to this table.
    public var companions: [any TableCompanion] { storage.companions }
}
