// Growth: a map that becomes larger, or follows a file that another process grew.

import Glibc

// MARK: - Growth

extension MemoryMappedFile {
    /// Grows the file or memory object, and the map, to `newCapacity` bytes.
    ///
    /// The new bytes are allocated (`posix_fallocate`), so a full disk is a `noSpace` error
    /// now, never a `SIGBUS` later; after an error the size is unchanged. Existing views keep
    /// their size: make a new view to reach the new bytes. Traps if `newCapacity` is smaller
    /// than the capacity; needs write access.
    public mutating func grow(toCapacity newCapacity: Int) throws(MappedFileError) {
        precondition(
            newCapacity >= capacity,
            "MemoryMappedFile: grow(toCapacity: \(newCapacity)) is below the capacity \(capacity)")
        guard newCapacity > capacity else { return }
        guard access.canWrite && access != .copyOnWrite else {
            throw MappedFileError(
                .invalidAccess, operation: "grow", path: state.path,
                message: "a map with .\(access) access cannot grow the file")
        }
        let size = Int(try descriptor.status(operation: "grow", path: state.path).st_size)
        if newCapacity > size {
            try MemoryMappedFile.grow(descriptor, from: size, to: newCapacity, path: state.path, operation: "grow")
        }
        capacity = newCapacity
    }

    /// Sets the capacity to the file's current size, for a map of a file that another
    /// process grows. Returns the new capacity. A file that shrank below the capacity is
    /// a `fileTruncated` error, and the capacity stays.
    @discardableResult
    public mutating func refreshCapacity() throws(MappedFileError) -> Int {
        try refreshCapacityAndLinks().capacity
    }

    /// ``refreshCapacity()``, and whether the file still has a name: `isLinked` is false once
    /// every path to it was removed, or another file was renamed over it (a migration). One `fstat`.
    @discardableResult
    public mutating func refreshCapacityAndLinks() throws(MappedFileError) -> (capacity: Int, isLinked: Bool) {
        let status = try descriptor.status(operation: "refreshCapacity", path: state.path)
        let size = Int(status.st_size)
        guard size >= capacity else {
            throw MappedFileError(
                .fileTruncated, operation: "refreshCapacity", path: state.path,
                message: "the file has \(size) bytes, fewer than the map's \(capacity); another process truncated it")
        }
        capacity = size
        return (size, status.st_nlink > 0)
    }
}
