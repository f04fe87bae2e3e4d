// Non-persisted maps: anonymous memory (memfd), POSIX shared memory found by its system name,
// and descriptors adopted from elsewhere.

import Glibc

// MARK: - Non-persisted maps

extension MemoryMappedFile {
    /// Creates memory that belongs to this process and to the children it forks
    /// (they share it, they do not copy it); .NET's `CreateNew(null, capacity)`.
    ///
    /// The memory is a `memfd` object: views of it see each other's writes, and it
    /// is freed when the map and its last view are closed.
    /// - Parameters:
    ///   - capacity: The size in bytes; above zero.
    ///   - access: The most access a view may have.
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
    ///   - access: The most access a view may have.
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
    ///   - rawDescriptor: The open descriptor of the file or shared-memory object.
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
