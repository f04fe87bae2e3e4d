// Creating and opening a table: the file made whole before it has a name, the writer lock
// (checked against the path once held), the header validated, the count chosen, the live area taken over.

import Glibc
import MemoryMappedFiles

extension TableStorage {
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
    /// - Parameter sharedAppender: Open as one of several appenders (`.sharedAppend`): a shared
    ///   lock on byte 0, and the count read and the live area taken over under the appender lock.
    static func open(
        path: String, writable: Bool, sharedAppender: Bool = false, durability: Durability, waitForWriter: Duration?,
        ringsReaders: Bool = true,
        bootIdentifier: [UInt8] = currentBootIdentifier, takeoverStep: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) throws(RecordTableError) -> TableStorage {
        let operation = "open"
        let shared = writable && sharedAppender
        var opened = try mapFile(path: path, writable: writable, shared: shared, waitForWriter: waitForWriter)
        var token: UInt32 = 0
        if shared {
            do { token = try AppenderLock.chooseToken(opened.map) } catch {
                throw RecordTableError(error, operation: operation, path: path)
            }
            // Held until joinAppenders: no append moves the count between its reading and the takeover.
            let base = unsafe opened.view.withUnsafeMutableBytes { $0.baseAddress! }
            unsafe AppenderLock.acquire(base: base, token: token, descriptor: opened.map.fileDescriptor)
        }
        let decoded: (TableHeader, CommitSlot, Int)
        do {
            decoded = unsafe try decodeAndTakeOver(
                &opened, writable: writable, bootIdentifier: bootIdentifier, path: path, takeoverStep: takeoverStep)
        } catch {
            if shared {
                let base = unsafe opened.view.withUnsafeMutableBytes { $0.baseAddress! }
                unsafe AppenderLock.release(base: base, token: token)
            }
            throw error
        }
        let (header, slot, count) = decoded
        let storage = TableStorage(
            path: path, header: header, isWritable: writable, durability: durability, bootIdentifier: bootIdentifier,
            map: opened.map, view: opened.view, count: count, committed: slot, ringsReaders: ringsReaders,
            sharedAppender: shared)
        if shared {
            storage.appenderToken = token
            storage.joinAppenders()
        }
        return storage
    }

    /// `open`'s reading of the file: the header and count (remapping once if the count lies past
    /// the mapping), a writer's refusal of a sealed table, and a writer's takeover of the live area.
    static func decodeAndTakeOver(
        _ opened: inout MappedFile, writable: Bool, bootIdentifier: [UInt8], path: String,
        takeoverStep: ((UnsafeRawBufferPointer) -> Void)?
    ) throws(RecordTableError) -> (TableHeader, CommitSlot, Int) {
        let operation = "open"
        // A count past this mapping may be a growth since it was made: a writer grows the file
        // before it publishes or commits a count past the old end, and a shared appender may
        // have done so between this process's mapping and its taking the appender lock (which
        // it holds now). So a count the file cannot hold here (`corrupt`), or a live count the
        // rule had to pass over for the commit point, first makes it read the size again and
        // remap once. Taking the commit point instead would make a writer's takeover below
        // publish it, and lose every record published after it.
        var decoded: (TableHeader, CommitSlot, Int)
        do {
            decoded = try decodeMapped(opened.view, bootIdentifier: bootIdentifier, path: path, operation: operation)
            let preferred = TableFormat.preferredCount(
                liveWord: thisBootsLiveWord(opened.view, bootIdentifier: bootIdentifier), commitPoint: decoded.1)
            if let preferred, preferred > decoded.2, try remapIfGrown(&opened, path: path) {
                decoded = try decodeMapped(
                    opened.view, bootIdentifier: bootIdentifier, path: path, operation: operation)
            }
        } catch  where error.code == .corrupt {
            guard try remapIfGrown(&opened, path: path) else { throw error }
            decoded = try decodeMapped(opened.view, bootIdentifier: bootIdentifier, path: path, operation: operation)
        }
        let (header, slot, count) = decoded
        if writable, let next = SealMark.next(opened.view.atomicLoad(UInt64.self, at: TableFormat.sealWordOffset)) {
            throw RecordTableError(
                .sealed, operation: operation, path: path,
                message: "the table is sealed: its series continues in file \(next); open that one to append")
        }
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
        return (header, slot, count)
    }

    /// Maps the file again if it grew since `opened` was mapped; returns whether it did.
    static func remapIfGrown(_ opened: inout MappedFile, path: String) throws(RecordTableError) -> Bool {
        guard let size = try? opened.map.refreshCapacity(), size > opened.view.capacity else { return false }
        do { opened.view = try opened.map.makeViewAccessor() } catch {
            throw RecordTableError(error, operation: "open", path: path)
        }
        return true
    }

    /// A file opened and mapped whole.
    struct MappedFile: ~Copyable {
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
    static func mapFile(
        path: String, writable: Bool, shared: Bool = false, waitForWriter: Duration?
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
                    acquired = try waitForWriterLock(map, shared: shared, until: deadline)
                    if acquired { isTheLockedFile = try map.isNamed(by: path) }
                } catch {
                    throw RecordTableError(error, operation: "open", path: path)
                }
                guard acquired else {
                    throw RecordTableError(
                        .writerActive, operation: "open", path: path,
                        message: shared
                            ? "another process has the table open as its exclusive writer"
                            : "another process has the table open for writing")
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

    /// Takes the writer lock (shared: a shared appender's read lock on the same byte), trying again with backoff until `deadline` (monotonic
    /// nanoseconds) has passed; returns whether it got it. (The outcome is a value, not an
    /// error message to match.)
    static func waitForWriterLock(
        _ map: borrowing MemoryMappedFile, shared: Bool = false, until deadline: UInt64
    ) throws(MappedFileError) -> Bool {
        var pause = 100
        while try
            !(shared
            ? map.tryLockShared(bytes: TableFormat.writerLockBytes) : map.tryLock(bytes: TableFormat.writerLockBytes))
        {
            guard monotonicNanoseconds() < deadline else { return false }
            sleepMicroseconds(pause)
            pause = min(pause * 2, 10_000)
        }
        return true
    }

    /// decodeState over a mapped file, with this boot's live word if it has one. (A file shorter
    /// than the header has no live area; decodeState refuses it with the reason.)
    static func decodeMapped(
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
    static func thisBootsLiveWord(_ view: borrowing MappedViewAccessor, bootIdentifier: [UInt8]) -> UInt64? {
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
    static func report(_ view: borrowing MappedViewAccessor, to hook: ((UnsafeRawBufferPointer) -> Void)?) {
        guard let hook = unsafe hook else { return }
        unsafe view.withUnsafeMutableBytes { unsafe hook(UnsafeRawBufferPointer($0)) }
    }

    /// Stores the boot identifier as two 8-byte release stores, after everything written before.
    static func storeBootIdentifier(_ identifier: [UInt8], into view: inout MappedViewAccessor) {
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
}
