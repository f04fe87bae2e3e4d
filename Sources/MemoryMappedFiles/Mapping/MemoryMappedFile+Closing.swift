// Properties, permissions, flushing, closing, and writing through the descriptor.

import Glibc

// MARK: - Properties, permissions and closing

extension MemoryMappedFile {
    /// The permission bits of the file or object; .NET's `GetAccessControl`.
    public func permissions() throws(MappedFileError) -> FilePermissions {
        let status = try descriptor.status(operation: "permissions", path: state.path)
        return FilePermissions(rawValue: status.st_mode & 0o7777)
    }

    /// Changes the permission bits of the file or object; .NET's `SetAccessControl`.
    /// Only the owner (or root) may do this.
    public func setPermissions(_ permissions: FilePermissions) throws(MappedFileError) {
        guard system_fchmod(descriptor.rawValue, mode_t(permissions.rawValue)) == 0 else {
            throw .system("fchmod", errno: lastErrno, operation: "setPermissions", path: state.path)
        }
    }

    /// Writes everything that views have written to the file through to the disk
    /// (fsync). Does nothing for non-persisted maps.
    public func flush() throws(MappedFileError) {
        guard state.isPersisted && access.canWrite && access != .copyOnWrite else { return }
        if let failure = state.failure(operation: "flush") { throw failure }
        do {
            try descriptor.synchronize(operation: "flush", path: state.path)
        } catch {
            if let value = error.errno { state.markFailed(errno: value) }
            throw error
        }
    }

    /// Closes the map, flushing a persisted, writable one to disk first (as .NET's Dispose).
    ///
    /// Views made from the map stay valid until they are closed. A map that goes out
    /// of scope closes itself the same way but cannot report a flush error: call `close()`
    /// where that matters.
    /// - Parameter flush: Pass `false` to skip the flush.
    public consuming func close(flush: Bool = true) throws(MappedFileError) {
        let result: Result<Void, MappedFileError>
        do throws(MappedFileError) {
            if flush { try self.flush() }
            result = .success(())
        } catch {
            result = .failure(error)
        }
        descriptor.closeWithoutSync()
        try result.get()
    }
}

// MARK: - Writing through the descriptor

extension MemoryMappedFile {
    /// Writes `bytes` at `offset` of the file with `pwrite`, not through a view: views see the
    /// bytes at once (one page cache). For filling fresh parts of a file in bulk, this skips the
    /// page faults that first touches of a mapping take, and the zero-filling of each page that
    /// comes with them (what a migration does). Needs write access; the range must lie inside the capacity.
    public func write(_ bytes: UnsafeRawBufferPointer, atFileOffset offset: Int) throws(MappedFileError) {
        precondition(
            offset >= 0 && bytes.count <= capacity - offset,
            "MemoryMappedFile: a write of \(bytes.count) bytes at \(offset) is outside the capacity \(capacity)")
        guard access.canWrite && access != .copyOnWrite else {
            throw MappedFileError(
                .invalidAccess, operation: "write", path: state.path,
                message: "a map with .\(access) access cannot write the file")
        }
        var written = 0
        while written < bytes.count {
            // SAFETY: written < bytes.count, so the source stays inside `bytes`.
            let result = unsafe system_pwrite(
                descriptor.rawValue, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if lastErrno == EINTR { continue }
                throw .system("pwrite", errno: lastErrno, operation: "write", path: state.path)
            }
            written += result
        }
    }
}

extension MemoryMappedFile {
    /// Starts writing `range` of the file back to the disk, and returns at once
    /// (`sync_file_range` with `SYNC_FILE_RANGE_WRITE`). It promises nothing about durability:
    /// a later ``flush()`` still waits for the disk, but finds less left to write. Bulk writers
    /// call it as they go, so the disk works while they do.
    public func startWriteback(range: Range<Int>) {
        guard state.isPersisted, !range.isEmpty else { return }
        // Advisory: a failure shows at flush
        _ = system_start_writeback(descriptor.rawValue, range.lowerBound, range.count)
    }
}
