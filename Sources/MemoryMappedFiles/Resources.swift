import Glibc
import Synchronization

/// The memory page size of this system; .NET's `Environment.SystemPageSize`.
public let systemPageSize: Int = system_sysconf(Int32(_SC_PAGESIZE))

/// This boot's identifier: the 16 bytes of `/proc/sys/kernel/random/boot_id`, or 16 zero bytes
/// if it cannot be read. Every boot (so every power loss or kernel crash) gets a new one, which
/// tells data that only a running system keeps apart from data on disk.
package let systemBootIdentifier: [UInt8] = {
    let descriptor = unsafe system_open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC, 0)
    guard descriptor >= 0 else { return [UInt8](repeating: 0, count: 16) }
    defer { _ = system_close(descriptor) }
    var text = [UInt8](repeating: 0, count: 64)
    let length = unsafe text.withUnsafeMutableBytes { unsafe system_read(descriptor, $0.baseAddress!, $0.count) }
    let digits = text.prefix(max(0, length)).compactMap { byte -> UInt8? in
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
    guard digits.count == 32 else { return [UInt8](repeating: 0, count: 16) }
    return (0..<16).map { digits[2 * $0] << 4 | digits[2 * $0 + 1] }
}()

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

/// Counts of open maps and views, for finding leaks.
///
/// Debug builds print a warning at exit when any map or view was never closed.
package enum MappingDiagnostics {
    private static let openMaps = Atomic<Int>(0)
    private static let openViews = Atomic<Int>(0)
    #if DEBUG
    private static let exitReport: Void = {
        atexit {
            let maps = MappingDiagnostics.openMapCount
            let views = MappingDiagnostics.openViewCount
            if maps > 0 || views > 0 {
                let warning = "MemoryMappedFiles: \(maps) map(s) and \(views) view(s) were never closed (leaked?)\n"
                _ = unsafe warning.withCString { unsafe system_write(STDERR_FILENO, $0, strlen($0)) }
            }
        }
    }()
    #endif

    /// Maps (open descriptors) in this process that are not closed yet.
    package static var openMapCount: Int { openMaps.load(ordering: .relaxed) }
    /// Views (mappings) in this process that are not closed yet.
    package static var openViewCount: Int { openViews.load(ordering: .relaxed) }

    static func mapOpened() {
        #if DEBUG
        _ = exitReport
        #endif
        openMaps.add(1, ordering: .relaxed)
    }
    static func mapClosed() { openMaps.subtract(1, ordering: .relaxed) }
    static func viewOpened() { openViews.add(1, ordering: .relaxed) }
    static func viewClosed() { openViews.subtract(1, ordering: .relaxed) }
}

/// An open file descriptor that closes itself.
struct OwnedDescriptor: ~Copyable {
    let rawValue: Int32
    /// Whether an implicit close should fsync first: a writable map of a file.
    let fsyncsOnClose: Bool
    /// Whether the leak report counts it; false for maps meant to live as long as the process.
    var isCounted = true
    /// Whether closing leaves the descriptor open: one adopted with `leaveOpen`, which its owner closes.
    let leavesOpen: Bool

    init(_ rawValue: Int32, fsyncsOnClose: Bool = false, leavesOpen: Bool = false) {
        self.rawValue = rawValue
        self.fsyncsOnClose = fsyncsOnClose
        self.leavesOpen = leavesOpen
        MappingDiagnostics.mapOpened()
    }

    deinit {
        // Implicit close: flush as .NET's Dispose does; errors are lost here, which is why `close()` exists.
        if fsyncsOnClose { _ = system_fsync(rawValue) }
        closeNow()
    }

    /// Closes without the implicit fsync.
    consuming func closeWithoutSync() {
        closeNow()
        discard self
    }

    private func closeNow() {
        // Close(2) releases the descriptor even when it reports EINTR or EIO.
        if !leavesOpen { _ = system_close(rawValue) }
        if isCounted { MappingDiagnostics.mapClosed() }
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

/// One mmap(2) range and what a view needs to know about it, off the hot path.
///
/// The range starts on a page boundary; `pageDelta` is how far the view's byte 0
/// lies past it, so users see the offset they asked for. The view that owns this
/// object is `~Copyable`, so this object has exactly one owner and is freed, and the
/// range unmapped, exactly when that view ends.
@safe final class ViewMapping: @unchecked Sendable {
    // SAFETY (Sendable): only the owning view touches it, and the view is ~Copyable.
    let start: UnsafeMutableRawPointer
    let length: Int
    let pageDelta: Int
    /// Where the view starts in its map.
    let offset: Int
    let access: MemoryMappedFileAccess
    let state: MappingState
    /// Whether closing should msync: a writable, shared view of a file.
    let flushesOnClose: Bool
    private var isUnmapped = false

    init(
        start: UnsafeMutableRawPointer, length: Int, pageDelta: Int, offset: Int,
        access: MemoryMappedFileAccess, state: MappingState
    ) {
        unsafe self.start = unsafe start
        self.length = length
        self.pageDelta = pageDelta
        self.offset = offset
        self.access = access
        self.state = state
        self.flushesOnClose = state.isPersisted && access.canWrite && access != .copyOnWrite
        MappingDiagnostics.viewOpened()
    }

    deinit {
        // Implicit close: flush as .NET's Dispose does; errors are lost here, which is why `close()` exists.
        if flushesOnClose && !isUnmapped { _ = unsafe system_msync(start, length, MS_SYNC) }
        unmap()
    }

    /// Unmaps the range, once.
    func unmap() {
        guard !isUnmapped else { return }
        isUnmapped = true
        let result = unsafe system_munmap(start, length)
        // munmap fails only for an address range this type never hands out.
        precondition(
            result == 0,
            "MemoryMappedFiles internal error: munmap failed: \(MappedFileError.describe(errno: lastErrno))")
        MappingDiagnostics.viewClosed()
    }

    /// madvise(2) over `range` (view offsets), widened to whole pages. Advice is a hint:
    /// its failure changes nothing the program can see, so it is not reported.
    func advise(_ range: Range<Int>, advice: Int32) {
        let pageStart = (range.lowerBound + pageDelta) & ~(systemPageSize - 1)
        // SAFETY: the widened range lies inside [0, length): range is inside the view, start is page-aligned.
        let result = unsafe system_madvise(start + pageStart, range.upperBound + pageDelta - pageStart, advice)
        assert(result == 0 || lastErrno != EINVAL, "MemoryMappedFiles internal error: madvise over an unmapped range")
    }

    /// msync(2) over `range` (view offsets), widened to whole pages.
    func synchronize(_ range: Range<Int>, flags: Int32, operation: String) throws(MappedFileError) {
        if let failure = state.failure(operation: operation) { throw failure }
        let pageStart = (range.lowerBound + pageDelta) & ~(systemPageSize - 1)
        #if MAPPED_RECORDS_FAULT_INJECTION
        if flags & MS_SYNC != 0 {
            let fileStart = offset - pageDelta + pageStart
            FaultInjection.willSync(
                path: state.path, range: fileStart..<fileStart + range.upperBound + pageDelta - pageStart)
        }
        #endif
        // SAFETY: pageStart is inside [0, length) because range is inside the view, and start is page-aligned.
        let result = unsafe system_msync(start + pageStart, range.upperBound + pageDelta - pageStart, flags)
        guard result == 0 else {
            let value = lastErrno
            precondition(
                value != EINVAL && value != ENOMEM, "MemoryMappedFiles internal error: msync over an unmapped range")
            state.markFailed(errno: value)
            throw .system("msync", errno: value, operation: operation, path: state.path)
        }
    }
}
