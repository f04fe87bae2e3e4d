import Glibc

/// A file, or a piece of shared memory, that views map into the address space.
///
/// A map owns an open descriptor. Views made from it (``makeViewAccessor(offset:length:access:)``,
/// ``makeViewStream(offset:length:access:)``) each own their own mapping, so a view stays
/// valid after its map is closed: the kernel keeps the memory alive for as long as
/// any view maps it. Both are `~Copyable` and close themselves at the end of their
/// scope, so nothing can be used after it is unmapped.
///
/// ```swift
/// let map = try MemoryMappedFile.createFromFile(path: "image.data", mode: .open)
/// var view = try map.makeViewAccessor(offset: 256 << 20, length: 512 << 20)
/// var color = view.read(MyColor.self, at: 0)
/// color.brighten(by: 10)
/// view.write(color, at: 0)
/// try view.close()   // flushes to the file
/// ```
///
/// ## Kinds
/// - Persisted: ``createFromFile(path:mode:capacity:access:permissions:)``. Writes reach the file.
/// - Anonymous: ``createAnonymous(capacity:access:options:)``. Memory of this process and of the
///   children it forks.
/// - Shared memory: ``createSharedMemory(systemName:mode:capacity:access:options:permissions:)``. A POSIX
///   shared-memory object, found by other processes through its name. The `MappedRegistry`
///   module builds .NET's named maps (`createNew(name:)`, `openExisting(name:)`) on top of this.
///
/// ## Safety
/// Another process may change the mapped file: its writes show up in views at
/// once, and if it truncates the file, touching a page past the new end raises
/// `SIGBUS` and ends this process. docs/CAVEATS.md states exactly what is promised.
public struct MemoryMappedFile: ~Copyable, Sendable {
    /// What backs a map.
    public enum Kind: Sendable, Hashable {
        /// A file on disk, at this path.
        case file(path: String)
        /// Anonymous memory of this process (and of children it forks).
        case anonymous
        /// A POSIX shared-memory object with this system name (without the leading "/").
        case sharedMemory(systemName: String)
        /// A descriptor handed to this process, for example inherited from its parent.
        case descriptor
    }

    var descriptor: OwnedDescriptor
    let state: MappingState
    /// The number of bytes the map covers; views may not go past it.
    /// ``grow(toCapacity:)`` and ``refreshCapacity()`` change it.
    public private(set) var capacity: Int
    /// The most access any view of this map may have.
    public let access: MemoryMappedFileAccess
    /// What backs this map.
    public let kind: Kind

    init(
        descriptor: consuming OwnedDescriptor, capacity: Int, access: MemoryMappedFileAccess, kind: Kind,
        options: MemoryMappedFileOptions = []
    ) {
        self.descriptor = descriptor
        self.capacity = capacity
        self.access = access
        self.kind = kind
        let path: String?
        switch kind {
        case .file(let filePath): path = filePath
        case .sharedMemory(let name): path = "/dev/shm/" + name
        case .anonymous, .descriptor: path = nil
        }
        self.state = MappingState(
            path: path, isPersisted: kind.isPersisted, populatesViews: options.contains(.populate))
    }

    /// The open file descriptor, for calls this library does not wrap; .NET's `SafeMemoryMappedFileHandle`.
    /// It stays owned by the map: do not close it.
    public var fileDescriptor: Int32 { descriptor.rawValue }

    /// The path or shared-memory name, as errors name it.
    public var path: String? { state.path }

    /// Declares that this map is meant to stay open until the process exits (a cache, a
    /// registry's lock file), so debug builds leave it out of the leak report at exit.
    public mutating func markAsProcessLifetime() {
        descriptor.stopCounting()
    }
}

extension MemoryMappedFile.Kind {
    var isPersisted: Bool {
        if case .file = self { return true }
        return false
    }
}

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

// MARK: - Non-persisted maps

extension MemoryMappedFile {
    /// Creates memory that belongs to this process and to the children it forks
    /// (they share it, they do not copy it); .NET's `CreateNew(null, capacity)`.
    ///
    /// The memory is a `memfd` object: views of it see each other's writes, and it
    /// is freed when the map and its last view are closed.
    /// - Parameters:
    ///   - capacity: The size in bytes; above zero.
    ///   - options: `.delayAllocatePages` to allocate memory as pages are first touched.
    public static func createAnonymous(
        capacity: Int,
        access: MemoryMappedFileAccess = .readWrite,
        options: MemoryMappedFileOptions = []
    ) throws(MappedFileError) -> MemoryMappedFile {
        let operation = "createAnonymous"
        guard capacity > 0 else {
            throw MappedFileError(
                .invalidCapacity, operation: operation, path: nil,
                message: "the capacity \(capacity) must be above zero")
        }
        try checkArguments(access: access, options: options, operation: operation, path: nil)
        let raw = unsafe system_memfd_create("mapped-records", closeOnExec: true)
        guard raw >= 0 else { throw .system("memfd_create", errno: lastErrno, operation: operation, path: nil) }
        let descriptor = OwnedDescriptor(raw)
        try size(descriptor, capacity: capacity, options: options, path: nil, operation: operation)
        return MemoryMappedFile(
            descriptor: descriptor, capacity: capacity, access: access, kind: .anonymous, options: options)
    }

    /// Creates or opens a POSIX shared-memory object that other processes can open by
    /// the same system name.
    ///
    /// This is the building block; most code wants the named API of the `MappedRegistry`
    /// module, which also removes the object after its last user, even after a crash.
    /// - Parameters:
    ///   - systemName: 1 to 255 bytes, without "/" or NUL. It lives under `/dev/shm`.
    ///   - mode: `.createNew`, `.openOrCreate`, `.open`, `.create` or `.truncate`.
    ///   - capacity: The size for a new object. An existing object smaller than this grows;
    ///     0 opens an existing object at its own size.
    ///   - options: `.delayAllocatePages` to allocate memory as pages are first touched.
    ///   - permissions: The mode of a new object; only the owner by default.
    public static func createSharedMemory(
        systemName: String,
        mode: FileMode = .createNew,
        capacity: Int,
        access: MemoryMappedFileAccess = .readWrite,
        options: MemoryMappedFileOptions = [],
        permissions: FilePermissions = .ownerReadWrite
    ) throws(MappedFileError) -> MemoryMappedFile {
        let operation = "createSharedMemory"
        let objectName = try sharedMemoryObjectName(systemName, operation: operation)
        let path = "/dev/shm/" + systemName
        func fail(_ code: MappedFileError.Code, _ message: String) -> MappedFileError {
            MappedFileError(code, operation: operation, path: path, message: message)
        }
        guard capacity >= 0 else { throw fail(.invalidCapacity, "the capacity \(capacity) is negative") }
        try checkArguments(access: access, options: options, operation: operation, path: path)
        if mode.modifiesFile && (!access.canWrite || access == .copyOnWrite) {
            throw fail(
                .invalidAccess, "mode .\(mode) changes the object, which needs .readWrite access, not .\(access)")
        }
        let raw = unsafe system_shm_open(
            objectName, access.openFlags | mode.openFlags | O_CLOEXEC, mode_t(permissions.rawValue))
        guard raw >= 0 else {
            let value = lastErrno
            throw .system(
                "shm_open", errno: value, operation: operation, path: path,
                message: value == ENOENT ? "no shared-memory object has this name" : nil)
        }
        let descriptor = OwnedDescriptor(raw)
        do throws(MappedFileError) {
            let size = Int(try descriptor.status(operation: operation, path: path).st_size)
            if capacity > size {
                guard access.canWrite && access != .copyOnWrite else {
                    throw fail(
                        .invalidCapacity,
                        "the object has \(size) bytes, and .\(access) access cannot grow it to \(capacity)")
                }
                try self.size(descriptor, capacity: capacity, options: options, path: path, operation: operation)
            }
            let finalCapacity = max(size, capacity)
            guard finalCapacity > 0 else {
                throw fail(.invalidCapacity, "the object is empty; give a capacity above zero")
            }
            return MemoryMappedFile(
                descriptor: descriptor, capacity: finalCapacity, access: access,
                kind: .sharedMemory(systemName: systemName), options: options)
        } catch {
            if mode == .createNew || mode == .create { _ = unsafe system_shm_unlink(objectName) }
            throw error
        }
    }

    /// Opens an existing shared-memory object at its current size.
    public static func openSharedMemory(
        systemName: String, access: MemoryMappedFileAccess = .readWrite
    ) throws(MappedFileError) -> MemoryMappedFile {
        try createSharedMemory(systemName: systemName, mode: .open, capacity: 0, access: access)
    }

    /// Removes a shared-memory object's name. Maps and views that are open keep working;
    /// the memory is freed after the last of them closes.
    public static func removeSharedMemory(systemName: String) throws(MappedFileError) {
        let operation = "removeSharedMemory"
        let objectName = try sharedMemoryObjectName(systemName, operation: operation)
        guard unsafe system_shm_unlink(objectName) == 0 else {
            throw .system("shm_unlink", errno: lastErrno, operation: operation, path: "/dev/shm/" + systemName)
        }
    }

    /// Adopts a descriptor of a file or memory object, for example one inherited from a
    /// parent process; .NET's `CreateFromFile(FileStream, …, leaveOpen)`.
    ///
    /// Everything is checked before the map takes the descriptor: a refused call leaves it open
    /// and as it was, whatever `leaveOpen` says.
    /// - Parameters:
    ///   - access: The most access a view may have; `.write` is refused, as for files. It must
    ///     be one the descriptor was opened for: a descriptor opened read-only cannot be adopted
    ///     for writing, and one opened write-only cannot be adopted at all (a mapping is always
    ///     readable), as .NET refuses a `FileStream` whose access is less than the map's.
    ///   - capacity: 0 maps the object at its size (an error if it is empty); a larger
    ///     capacity grows it first, as .NET's `CreateFromFile(FileStream, …, capacity, …)` does;
    ///     a smaller one is `invalidCapacity`, as for a path.
    ///   - leaveOpen: Whether closing the map leaves the descriptor open for its owner; by
    ///     default the map owns it and closes it.
    /// - Throws: `notFound` for a descriptor number that is not open; `permissionDenied` for an
    ///   access the descriptor was not opened for; `notRegularFile` for a descriptor of anything
    ///   but a regular file (which memfd and shared-memory objects are) or a block device;
    ///   `invalidAccess`; `invalidCapacity`.
    public static func adoptDescriptor(
        _ rawDescriptor: Int32, access: MemoryMappedFileAccess = .readWrite, capacity: Int = 0, leaveOpen: Bool = false
    ) throws(MappedFileError) -> MemoryMappedFile {
        let operation = "adoptDescriptor"
        // A descriptor number from the environment (inherited, passed in an argument) may name
        // nothing: that is an error to report, not a bug to trap on.
        let openFlags = system_fcntl_getfl(rawDescriptor)
        guard openFlags >= 0 else {
            throw MappedFileError(
                .notFound, operation: operation, path: nil, systemCall: "fcntl(F_GETFL)", errno: lastErrno,
                message: "descriptor \(rawDescriptor) is not open in this process")
        }
        guard capacity >= 0 else {
            throw MappedFileError(
                .invalidCapacity, operation: operation, path: nil, message: "the capacity \(capacity) is negative")
        }
        guard access != .write else {
            throw MappedFileError(
                .invalidAccess, operation: operation, path: nil,
                message: "a descriptor cannot be mapped write-only; use .readWrite")
        }
        var status = stat()
        guard system_fstat(rawDescriptor, &status) == 0 else {
            throw .system("fstat", errno: lastErrno, operation: operation, path: nil)
        }
        let type = status.st_mode & S_IFMT
        guard type == S_IFREG || type == S_IFBLK else {
            throw MappedFileError(
                .notRegularFile, operation: operation, path: nil,
                message: "the descriptor is not a regular file or a block device, and cannot be mapped")
        }
        let mode = openFlags & O_ACCMODE
        let needsWrite = access.canWrite && access != .copyOnWrite
        guard mode != O_WRONLY && (mode == O_RDWR || !needsWrite) else {
            throw MappedFileError(
                .permissionDenied, operation: operation, path: nil,
                message: mode == O_WRONLY
                    ? "descriptor \(rawDescriptor) was opened write-only, and a mapping must be readable"
                    : "descriptor \(rawDescriptor) was opened read-only, and cannot be adopted with .\(access) access")
        }
        let size = Int(status.st_size)
        if capacity > size {
            guard needsWrite else {
                throw MappedFileError(
                    .invalidCapacity, operation: operation, path: nil,
                    message: "the object has \(size) bytes, and .\(access) access cannot grow it to \(capacity)")
            }
        } else if capacity > 0 && capacity < size {
            throw MappedFileError(
                .invalidCapacity, operation: operation, path: nil,
                message: "the capacity \(capacity) is below the object's size of \(size) bytes; give 0 to map it all")
        }
        let finalCapacity = max(size, capacity)
        guard finalCapacity > 0 else {
            throw MappedFileError(
                .invalidCapacity, operation: operation, path: nil,
                message: "the object is empty; give a capacity above zero")
        }
        let descriptor = OwnedDescriptor(rawDescriptor, leavesOpen: leaveOpen)
        if capacity > size { try grow(descriptor, from: size, to: capacity, path: nil, operation: operation) }
        return MemoryMappedFile(descriptor: descriptor, capacity: finalCapacity, access: access, kind: .descriptor)
    }

    /// Refuses write-only access (a mapping can always be read) and option bits this library
    /// does not know, as .NET does: what every call that creates memory checks first. Layers
    /// that create memory through other paths (named maps) call it too.
    public static func checkArguments(
        access: MemoryMappedFileAccess, options: MemoryMappedFileOptions, operation: String, path: String?
    ) throws(MappedFileError) {
        guard access != .write else {
            throw MappedFileError(
                .invalidAccess, operation: operation, path: path,
                message: "memory cannot be mapped write-only; use .readWrite")
        }
        guard options.isSubset(of: .known) else {
            throw MappedFileError(
                .invalidAccess, operation: operation, path: path,
                message: "unknown option bits 0x\(String(options.subtracting(.known).rawValue, radix: 16))")
        }
    }

    /// Sets the size of a memory object, committing the memory unless delayed.
    private static func size(
        _ descriptor: borrowing OwnedDescriptor, capacity: Int, options: MemoryMappedFileOptions,
        path: String?, operation: String
    ) throws(MappedFileError) {
        if options.contains(.delayAllocatePages) {
            guard system_ftruncate(descriptor.rawValue, off_t(capacity)) == 0 else {
                throw .system("ftruncate", errno: lastErrno, operation: operation, path: path)
            }
        } else {
            let oldSize = Int(try descriptor.status(operation: operation, path: path).st_size)
            try grow(descriptor, from: oldSize, to: capacity, path: path, operation: operation)
        }
    }

    /// Validates a system name and returns the name shm_open wants ("/" + name).
    static func sharedMemoryObjectName(_ name: String, operation: String) throws(MappedFileError) -> String {
        let bytes = name.utf8.count
        guard bytes >= 1 && bytes <= 255 && !name.utf8.contains(UInt8(ascii: "/")) && !name.utf8.contains(0) else {
            throw MappedFileError(
                .invalidName, operation: operation, path: name,
                message: "a shared-memory name must be 1 to 255 bytes of UTF-8 without '/' or NUL")
        }
        return "/" + name
    }
}

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

// MARK: - Locks

extension MemoryMappedFile {
    /// Takes an exclusive advisory lock on `bytes` of the file, if no other open file
    /// holds one there; returns whether it did.
    ///
    /// The lock belongs to this map's open file (an OFD lock): the kernel releases it when
    /// the map closes, or when the process dies, even by `kill -9`. So a crashed holder
    /// never blocks the next one. Locks are advisory: they stop only others who ask.
    /// The byte range may lie past the end of the file.
    public func tryLock(bytes: Range<Int>) throws(MappedFileError) -> Bool {
        var lock = Self.lockRecord(F_WRLCK, bytes)
        guard system_fcntl_lock(descriptor.rawValue, getting: false, &lock) == 0 else {
            let value = lastErrno
            if value == EAGAIN || value == EACCES { return false }
            throw .system("fcntl", errno: value, operation: "tryLock", path: state.path)
        }
        return true
    }

    private static func lockRecord(_ type: Int32, _ bytes: Range<Int>) -> flock {
        var lock = flock()
        lock.l_type = Int16(type)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(bytes.lowerBound)
        lock.l_len = off_t(bytes.count)
        return lock
    }

    /// Releases a lock this map took with ``tryLock(bytes:)``.
    public func unlock(bytes: Range<Int>) {
        var lock = Self.lockRecord(F_UNLCK, bytes)
        // Unlocking cannot fail on a valid descriptor
        _ = system_fcntl_lock(descriptor.rawValue, getting: false, &lock)
    }

    /// Whether another open file holds a lock on `bytes` (one this map holds does not count).
    public func isLockedElsewhere(bytes: Range<Int>) throws(MappedFileError) -> Bool {
        var lock = Self.lockRecord(F_WRLCK, bytes)
        guard system_fcntl_lock(descriptor.rawValue, getting: true, &lock) == 0 else {
            throw .system("fcntl", errno: lastErrno, operation: "isLockedElsewhere", path: state.path)
        }
        return lock.l_type != Int16(F_UNLCK)
    }
}
