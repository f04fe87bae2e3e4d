// Making views of a map, and paging advice for them.

import CMappedShims
import Glibc

// MARK: - Making views

extension MemoryMappedFile {
    /// Makes a random-access view; .NET's `CreateViewAccessor`.
    ///
    /// - Parameters:
    ///   - offset: Where the view starts in the map. Any byte offset: the mapping starts
    ///     on the page boundary below, and the view hides the difference.
    ///   - length: The view's size in bytes; 0 means to the end of the map.
    ///   - access: The view's access; by default the map's. Asking for more than the map
    ///     allows is an `invalidAccess` error.
    /// Traps if `offset` or `length` is negative or the view would end past the map's capacity.
    public func makeViewAccessor(
        offset: Int = 0, length: Int = 0, access: MemoryMappedFileAccess? = nil
    ) throws(MappedFileError) -> MappedViewAccessor {
        try mapView(offset: offset, length: length, access: access ?? self.access, operation: "makeViewAccessor")
    }

    func mapView(
        offset: Int, length: Int, access: MemoryMappedFileAccess, operation: String
    ) throws(MappedFileError) -> MappedViewAccessor {
        precondition(
            offset >= 0 && offset <= capacity,
            "MemoryMappedFile: view offset \(offset) is out of range for a map of \(capacity) bytes")
        precondition(
            length >= 0 && length <= capacity - offset,
            "MemoryMappedFile: a view of \(length) bytes at offset \(offset) does not fit in a map of \(capacity) bytes"
        )
        let viewLength = length == 0 ? capacity - offset : length
        precondition(
            viewLength > 0, "MemoryMappedFile: a view at offset \(offset) of a map of \(capacity) bytes would be empty")
        guard self.access.allowsView(access) else {
            throw MappedFileError(
                .invalidAccess, operation: operation, path: state.path,
                message: "a view cannot have .\(access) access to a map opened with .\(self.access) access")
        }
        if state.isPersisted {
            // A file shorter than the view would raise SIGBUS on first touch: refuse it now.
            let size = Int(try descriptor.status(operation: operation, path: state.path).st_size)
            guard size >= offset + viewLength else {
                throw MappedFileError(
                    .fileTruncated, operation: operation, path: state.path,
                    message:
                        "the file has \(size) bytes, fewer than the view's end at \(offset + viewLength); another process truncated it"
                )
            }
        }
        let pageDelta = offset & (systemPageSize - 1)
        let mappingLength = viewLength + pageDelta
        guard
            let start = unsafe system_mmap(
                mappingLength, access.protection, access.sharing | (state.populatesViews ? MAP_POPULATE : 0),
                descriptor.rawValue,
                off_t(offset - pageDelta))
        else {
            let value = lastErrno
            throw .system(
                "mmap", errno: value, operation: operation, path: state.path,
                message: value == EPERM && access.protection & PROT_EXEC != 0
                    ? "the file system does not allow execution (mounted noexec)" : nil)
        }
        let mapping = unsafe ViewMapping(
            start: start, length: mappingLength, pageDelta: pageDelta, offset: offset, access: access, state: state)
        return MappedViewAccessor(mapping: mapping, capacity: viewLength)
    }
}

/// How a view's pages will be used: advice for the kernel's paging (madvise(2)).
public enum MappingAdvice: Sendable, Hashable {
    /// No special treatment (`MADV_NORMAL`).
    case normal
    /// Read in order: read ahead aggressively, free pages soon after (`MADV_SEQUENTIAL`).
    case sequential
    /// Read in no order: no read-ahead (`MADV_RANDOM`).
    case random
    /// Needed soon: start reading the pages in now (`MADV_WILLNEED`).
    case willNeed
    /// Not needed for now: drop the pages from this process (`MADV_DONTNEED`). The data stays
    /// in the file or shared memory and comes back on the next access, so the process's
    /// resident size stays small during a long scan. Ignored for copy-on-write views.
    case doneWith
    /// Map the pages now, reading them in where needed, so that later reads take no page fault
    /// (`MADV_POPULATE_READ`, Linux 5.14; older kernels ignore it). A prefetch: it returns when
    /// the pages are mapped.
    case populateRead
    /// The same for writing (`MADV_POPULATE_WRITE`): the pages are made writable, and allocated in
    /// a file's holes or in memory. Traps on a view that cannot be written.
    case populateWrite
    /// Back the range with transparent huge pages where the kernel can (`MADV_HUGEPAGE`): fewer
    /// TLB misses on random access. Anonymous and shared memory; files only where the file
    /// system supports large folios.
    case hugePages

    var systemValue: Int32 {
        switch self {
        case .normal: return MADV_NORMAL
        case .sequential: return MADV_SEQUENTIAL
        case .random: return MADV_RANDOM
        case .willNeed: return MADV_WILLNEED
        case .doneWith: return MADV_DONTNEED
        case .populateRead: return 22  // MADV_POPULATE_READ (Linux 5.14; not in every Glibc's headers)
        case .populateWrite: return 23  // MADV_POPULATE_WRITE
        case .hugePages: return MADV_HUGEPAGE
        }
    }
}
