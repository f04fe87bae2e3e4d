// Persisted maps: a file on disk, opened, created or emptied as FileMode says, and grown with
// posix_fallocate so that a full disk is an error now, never a SIGBUS later.

import Glibc

// MARK: - Persisted maps

extension MemoryMappedFile {
    /// Maps a file on disk; .NET's `MemoryMappedFile.CreateFromFile`.
    ///
    /// - Parameters:
    ///   - path: The file to map.
    ///   - mode: Whether to open, create or empty the file.
    ///   - capacity: The map's size in bytes. 0 means the file's size (an error for an
    ///     empty file). A capacity larger than the file grows it with `posix_fallocate`,
    ///     so a full disk is a `noSpace` error now rather than a `SIGBUS` later. A capacity
    ///     smaller than the file is an error, as in .NET.
    ///   - access: The most access a view may have. `.write` is not allowed for files.
    ///     `.copyOnWrite` opens the file read-only: nothing ever reaches it.
    ///   - permissions: The mode of a newly created file (the umask applies).
    /// - Throws: ``MappedFileError`` naming the path, for a missing file, a permission problem,
    ///   a directory, a full disk, an invalid capacity or an access that does not fit the mode.
    ///   If creating a new file fails, the file is removed again.
    public static func createFromFile(
        path: String,
        mode: FileMode = .open,
        capacity: Int = 0,
        access: MemoryMappedFileAccess = .readWrite,
        permissions: FilePermissions = .ownerReadWriteOthersRead
    ) throws(MappedFileError) -> MemoryMappedFile {
        let operation = "createFromFile"
        func fail(_ code: MappedFileError.Code, _ message: String) -> MappedFileError {
            MappedFileError(code, operation: operation, path: path, message: message)
        }
        // Every argument is checked before the file is touched: nothing is created, emptied or
        // grown for a call that is going to fail anyway.
        guard capacity >= 0 else { throw fail(.invalidCapacity, "the capacity \(capacity) is negative") }
        guard access != .write else {
            throw fail(.invalidAccess, "a file cannot be mapped write-only; use .readWrite")
        }
        if mode.modifiesFile && !access.canWrite || mode.modifiesFile && access == .copyOnWrite {
            throw fail(.invalidAccess, "mode .\(mode) changes the file, which needs .readWrite access, not .\(access)")
        }
        if mode.emptiesFile && capacity == 0 {
            throw fail(.invalidCapacity, "mode .\(mode) leaves the file empty; give a capacity above zero")
        }

        let (raw, created) = try openForMapping(
            path: path, mode: mode, access: access, permissions: permissions, operation: operation)
        let descriptor = OwnedDescriptor(raw, fsyncsOnClose: access == .readWrite || access == .readWriteExecute)
        do throws(MappedFileError) {
            try honourExclusiveSharing(descriptor, path: path, operation: operation)
            // .create and .truncate empty an existing file only once it is known to be a regular file.
            let truncates = !created && (mode == .create || mode == .truncate)
            let size = try prepareFile(
                descriptor, path: path, capacity: capacity, access: access, truncating: truncates, operation: operation)
            return MemoryMappedFile(descriptor: descriptor, capacity: size, access: access, kind: .file(path: path))
        } catch {
            if created { _ = unsafe system_unlink(path) }
            throw error
        }
    }

    /// .NET on Unix emulates `FileShare` with `flock(2)`: every `FileStream` takes a shared
    /// lock, and `FileShare.None` an exclusive one. A file another process holds that way is not
    /// mapped (`permissionDenied`, .NET's sharing violation), and a map holds a shared lock as
    /// long as it is open, so a later `FileShare.None` open fails as it would beside a .NET map.
    /// The lock is advisory: processes that do not ask are not stopped. A file system without
    /// `flock` (ENOLCK) maps the file as before.
    private static func honourExclusiveSharing(
        _ descriptor: borrowing OwnedDescriptor, path: String, operation: String
    ) throws(MappedFileError) {
        guard system_flock(descriptor.rawValue, LOCK_SH | LOCK_NB) != 0 else { return }
        let value = lastErrno
        guard value == EWOULDBLOCK else { return }
        throw MappedFileError(
            .permissionDenied, operation: operation, path: path, systemCall: "flock", errno: value,
            message: "another process holds the file exclusively (flock LOCK_EX, as .NET's FileShare.None does)")
    }

    /// Opens `path` as `mode` asks, without truncating; returns the descriptor and whether
    /// this call created the file (only then may a failure remove it again).
    private static func openForMapping(
        path: String, mode: FileMode, access: MemoryMappedFileAccess, permissions: FilePermissions, operation: String
    ) throws(MappedFileError) -> (Int32, created: Bool) {
        // O_NONBLOCK: a FIFO at the path must fail the type check, not block open(2).
        let base = access.openFlags | O_CLOEXEC | O_NONBLOCK
        func attempt(_ flags: Int32) -> Int32 {
            // withCString lends a native string's own bytes: no copy, as the implicit conversion makes.
            unsafe path.withCString { path in
                retryingOnInterrupt { unsafe system_open(path, base | flags, mode_t(permissions.rawValue)) }
            }
        }
        func failure(creating: Bool) -> MappedFileError {
            let value = lastErrno
            let message = value != ENOENT ? nil : creating ? "its directory does not exist" : "the file does not exist"
            return .system("open", errno: value, operation: operation, path: path, message: message)
        }
        switch mode {
        case .open, .truncate:
            let raw = attempt(0)
            guard raw >= 0 else { throw failure(creating: false) }
            return (raw, false)
        case .createNew:
            let raw = attempt(O_CREAT | O_EXCL)
            guard raw >= 0 else { throw failure(creating: true) }
            return (raw, true)
        case .create, .openOrCreate:
            // Exclusive creation first, so that "created" is a fact, not a guess that races.
            while true {
                let fresh = attempt(O_CREAT | O_EXCL)
                if fresh >= 0 { return (fresh, true) }
                guard lastErrno == EEXIST else { throw failure(creating: true) }
                let existing = attempt(0)
                if existing >= 0 { return (existing, false) }
                guard lastErrno == ENOENT else { throw failure(creating: false) }  // removed meanwhile: try again
            }
        }
    }

    /// Checks the opened file against the capacity and grows it; returns the map's capacity.
    private static func prepareFile(
        _ descriptor: borrowing OwnedDescriptor, path: String, capacity: Int,
        access: MemoryMappedFileAccess, truncating: Bool, operation: String
    ) throws(MappedFileError) -> Int {
        func fail(_ code: MappedFileError.Code, _ message: String) -> MappedFileError {
            MappedFileError(code, operation: operation, path: path, message: message)
        }
        let status = try descriptor.status(operation: operation, path: path)
        let type = status.st_mode & S_IFMT
        guard type != S_IFDIR else { throw fail(.isDirectory, "it is a directory, not a file") }
        guard type == S_IFREG else { throw fail(.notRegularFile, "it is not a regular file and cannot be mapped") }
        var size = Int(status.st_size)
        if truncating && size > 0 {
            guard system_ftruncate(descriptor.rawValue, 0) == 0 else {
                throw .system("ftruncate", errno: lastErrno, operation: operation, path: path)
            }
            size = 0
        }
        if capacity == 0 {
            guard size > 0 else {
                throw fail(.invalidCapacity, "the file is empty; give a capacity above zero to grow it")
            }
            return size
        }
        guard capacity >= size else {
            throw fail(.invalidCapacity, "the capacity \(capacity) is smaller than the file's size \(size)")
        }
        if capacity > size {
            guard access.canWrite && access != .copyOnWrite else {
                throw fail(
                    .invalidCapacity,
                    "the capacity \(capacity) is larger than the file's size \(size), and .\(access) access cannot grow it"
                )
            }
            try grow(descriptor, from: size, to: capacity, path: path, operation: operation)
        }
        return capacity
    }

    /// Allocates the file's blocks up to `newSize`; on failure, restores the old size.
    static func grow(
        _ descriptor: borrowing OwnedDescriptor, from oldSize: Int, to newSize: Int, path: String?, operation: String
    ) throws(MappedFileError) {
        try checkRoom(descriptor, growingFrom: oldSize, to: newSize, path: path, operation: operation)
        let result = system_posix_fallocate(descriptor.rawValue, off_t(oldSize), off_t(newSize - oldSize))
        guard result == 0 else {
            _ = system_ftruncate(descriptor.rawValue, off_t(oldSize))
            throw .system(
                "posix_fallocate", errno: result, operation: operation, path: path,
                message: result == ENOSPC || result == EDQUOT
                    ? "no space left to grow it from \(oldSize) to \(newSize) bytes" : nil)
        }
    }

    /// Refuses, before anything is allocated, a growth that cannot succeed: past the process's
    /// file-size or address-space limit, past the free space of the file system, or, for memory
    /// (tmpfs, memfd, shared memory), past the memory the machine has available. Without this a
    /// huge in-memory map is filled page by page until the OOM killer ends other processes.
    static func checkRoom(
        _ descriptor: borrowing OwnedDescriptor, growingFrom oldSize: Int, to newSize: Int, path: String?,
        operation: String
    ) throws(MappedFileError) {
        func refuse(_ code: MappedFileError.Code, _ message: String) -> MappedFileError {
            MappedFileError(code, operation: operation, path: path, message: message)
        }
        let needed = UInt64(newSize - oldSize)
        var limit = rlimit()
        if system_getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0,
            limit.rlim_cur != rlim_t.max, UInt64(newSize) > UInt64(limit.rlim_cur)
        {
            throw refuse(
                .fileTooLarge,
                "\(newSize) bytes is past this process's file-size limit of \(limit.rlim_cur) bytes (ulimit -f)")
        }
        if system_getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0,
            limit.rlim_cur != rlim_t.max, UInt64(newSize) > UInt64(limit.rlim_cur)
        {
            throw refuse(
                .noSpace,
                "\(newSize) bytes is past this process's address-space limit of \(limit.rlim_cur) bytes (ulimit -v)")
        }
        var volume = statvfs()
        if system_fstatvfs(descriptor.rawValue, &volume) == 0, volume.f_blocks > 0 {
            // Root may use the blocks reserved for it; others only the available ones.
            let blocks = system_geteuid() == 0 ? volume.f_bfree : volume.f_bavail
            let free = UInt64(blocks).multipliedReportingOverflow(by: UInt64(volume.f_frsize))
            if !free.overflow && needed > free.partialValue {
                throw refuse(
                    .noSpace,
                    "growing it to \(newSize) bytes needs \(needed) more, and its file system has \(free.partialValue) free"
                )
            }
        }
        if system_filesystem_type(descriptor.rawValue) == temporaryFileSystemMagic,
            let available = availableMemoryBytes(), needed > available
        {
            throw refuse(
                .noSpace,
                "it lives in memory, and \(needed) more bytes is more than the \(available) bytes of memory available")
        }
    }
}

/// `TMPFS_MAGIC`: tmpfs, which also backs memfd and POSIX shared memory.
private let temporaryFileSystemMagic = 0x0102_1994

/// MemAvailable plus SwapFree from /proc/meminfo, in bytes; nil if it cannot be read.
func availableMemoryBytes() -> UInt64? {
    let raw = retryingOnInterrupt { unsafe system_open("/proc/meminfo", O_RDONLY | O_CLOEXEC, 0) }
    guard raw >= 0 else { return nil }
    defer { _ = system_close(raw) }
    var buffer = [UInt8](repeating: 0, count: 8192)
    let count = unsafe buffer.withUnsafeMutableBytes { unsafe system_read(raw, $0.baseAddress!, $0.count) }
    guard count > 0 else { return nil }
    var total: UInt64 = 0, found = 0
    for line in buffer[..<count].split(separator: UInt8(ascii: "\n")) {
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("MemAvailable:") || text.hasPrefix("SwapFree:") else { continue }
        let kibibytes = text.split(separator: " ").dropFirst().first.flatMap { UInt64($0) } ?? 0
        total += kibibytes * 1024
        found += 1
    }
    return found == 0 ? nil : total
}
