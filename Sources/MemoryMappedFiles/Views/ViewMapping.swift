// One mmap(2) range of a view, unmapped exactly when the view that owns it ends.

import Glibc
import Synchronization

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
