// What a map owns: its open descriptor, which closes itself, and the state its views share.

import Glibc
import Synchronization

/// State that a map and all of its views share: what to call it in errors,
/// and whether a flush has failed (after which no flush may report success).
final class MappingState: Sendable {
    /// The path, or the shared-memory name, for error messages.
    let path: String?
    /// Whether writes are meant to reach a file on disk.
    let isPersisted: Bool
    /// Whether views are mapped with `MAP_POPULATE` (the `.populate` option).
    let populatesViews: Bool
    /// The errno of the first failed flush, or 0.
    private let failedErrno = Atomic<Int32>(0)

    init(path: String?, isPersisted: Bool, populatesViews: Bool = false) {
        self.path = path
        self.isPersisted = isPersisted
        self.populatesViews = populatesViews
    }

    /// Records the first failure; later ones keep the first errno.
    func markFailed(errno value: Int32) {
        _ = failedErrno.compareExchange(expected: 0, desired: value, ordering: .relaxed)
    }

    /// The error to report for an operation on a failed map, or nil if it has not failed.
    func failure(operation: String) -> MappedFileError? {
        let value = failedErrno.load(ordering: .relaxed)
        guard value != 0 else { return nil }
        return MappedFileError(
            .mapFailed, operation: operation, path: path, systemCall: "msync", errno: value,
            message: "an earlier flush failed, so writes to this map may not have reached the file")
    }
}

/// An open file descriptor that closes itself.
struct OwnedDescriptor: ~Copyable {
    let rawValue: Int32
    /// Whether an implicit close should fsync first: a writable map of a file (until
    /// ``closeWithoutSync()``).
    private(set) var fsyncsOnClose: Bool
    /// Whether the leak report counts it; false for maps meant to live as long as the process.
    var isCounted = true
    /// Whether closing leaves the descriptor open: one adopted with `leaveOpen`, which its owner closes.
    let leavesOpen: Bool
    /// Whether a lock was taken through it (``MemoryMappedFile/tryLock(bytes:)``): closing then
    /// releases every lock of its open file description first.
    let tookLocks = Atomic<Bool>(false)

    init(_ rawValue: Int32, fsyncsOnClose: Bool = false, leavesOpen: Bool = false) {
        self.rawValue = rawValue
        self.fsyncsOnClose = fsyncsOnClose
        self.leavesOpen = leavesOpen
        MappingDiagnostics.mapOpened()
    }

    deinit {
        // Implicit close: flush as .NET's Dispose does; errors are lost here, which is why `close()` exists.
        if fsyncsOnClose { _ = system_fsync(rawValue) }
        // OFD locks belong to the open file description, which a child process being spawned
        // shares from its clone(2) until its exec(2) closes the copies. Closing alone would leave
        // the locks held through that window, and a process reopening the file at once (or any
        // other) would find it locked: so a descriptor that locked releases them first.
        if tookLocks.load(ordering: .relaxed) { MemoryMappedFile.releaseAllLocks(descriptor: rawValue) }
        // Close(2) releases the descriptor even when it reports EINTR or EIO.
        if !leavesOpen { _ = system_close(rawValue) }
        if isCounted { MappingDiagnostics.mapClosed() }
    }

    /// Closes without the implicit fsync (the deinit runs as this returns).
    consuming func closeWithoutSync() {
        fsyncsOnClose = false
    }

    mutating func stopCounting() {
        guard isCounted else { return }
        isCounted = false
        MappingDiagnostics.mapClosed()
    }

    /// The file's status.
    func status(operation: String, path: String?) throws(MappedFileError) -> stat {
        var status = stat()
        guard system_fstat(rawValue, &status) == 0 else {
            throw .system("fstat", errno: lastErrno, operation: operation, path: path)
        }
        return status
    }

    /// Writes the file's data and metadata to the disk.
    func synchronize(operation: String, path: String?) throws(MappedFileError) {
        #if MAPPED_RECORDS_FAULT_INJECTION
        FaultInjection.willSync(path: path, range: nil)
        #endif
        guard retryingOnInterrupt({ system_fsync(rawValue) }) == 0 else {
            throw .system("fsync", errno: lastErrno, operation: operation, path: path)
        }
    }
}
