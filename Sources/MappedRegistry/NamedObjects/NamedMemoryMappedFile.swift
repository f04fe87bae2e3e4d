import MemoryMappedFiles

/// A map found or published by name through a ``Registry``; what .NET's named
/// `MemoryMappedFile` is, and what .NET on Linux refuses.
///
/// It holds the name while open. When the last holder in any process closes (or dies), a
/// shared-memory map's memory is freed and its name removed, and a file's data is synced.
/// A name may stand for a region of a file: views then default to that region.
///
/// ```swift
/// // Process A
/// let map = try MemoryMappedFile.createNew(name: "testmap", capacity: 10_000)
/// // Process B
/// let same = try MemoryMappedFile.openExisting(name: "testmap")
/// var stream = try same.makeViewStream(offset: 1, length: 0)
/// ```
public struct NamedMemoryMappedFile: ~Copyable, Sendable {
    /// The name.
    public let name: String
    /// The map behind the name.
    public let map: MemoryMappedFile
    /// Where the named region starts in the map (0 unless the name stands for a region).
    public let regionOffset: Int
    /// The named region's length.
    public let regionLength: Int
    let membership: Membership

    /// The named region's length; .NET's view capacity when no size is given.
    public var capacity: Int { regionLength }

    /// Makes a random-access view of the named region: `offset` is relative to the region,
    /// and a `length` of 0 runs to the region's end. See `MemoryMappedFile.makeViewAccessor(offset:length:access:)`.
    public func makeViewAccessor(
        offset: Int = 0, length: Int = 0, access: MemoryMappedFileAccess? = nil
    ) throws(RegistryError) -> MappedViewAccessor {
        let (start, size) = regionRange(offset: offset, length: length)
        do {
            return try map.makeViewAccessor(offset: start, length: size, access: access)
        } catch {
            throw RegistryError(error, operation: "makeViewAccessor", path: name)
        }
    }

    /// Makes a stream view of the named region, as ``makeViewAccessor(offset:length:access:)`` does.
    public func makeViewStream(
        offset: Int = 0, length: Int = 0, access: MemoryMappedFileAccess? = nil
    ) throws(RegistryError) -> MappedViewStream {
        let (start, size) = regionRange(offset: offset, length: length)
        do {
            return try map.makeViewStream(offset: start, length: size, access: access)
        } catch {
            throw RegistryError(error, operation: "makeViewStream", path: name)
        }
    }

    private func regionRange(offset: Int, length: Int) -> (Int, Int) {
        precondition(
            offset >= 0 && offset <= regionLength && length >= 0 && length <= regionLength - offset,
            "NamedMemoryMappedFile: a view of \(length) bytes at offset \(offset) does not fit in the region of \(regionLength) bytes"
        )
        return (regionOffset + offset, length == 0 ? regionLength - offset : length)
    }

    /// Releases the name (doing the last-close duty if this is the last holder) and closes
    /// the map. Views stay valid until they close. Going out of scope does the same, but
    /// cannot report errors.
    public consuming func close() throws(RegistryError) {
        // The map first: its fsync (a writable file) must be reported, not lost in a deinit.
        var failure: RegistryError?
        do { try map.close() } catch { failure = RegistryError(error, operation: "close", path: name) }
        do { try membership.release() } catch { failure = failure ?? error }
        if let failure { throw failure }
    }
}

extension MemoryMappedFile {
    /// Creates shared memory under a new name; .NET's `MemoryMappedFile.CreateNew(mapName, capacity)`.
    /// - Throws: `nameExists` if a live map or mutex has the name; `invalidName`.
    public static func createNew(
        name: String, capacity: Int, access: MemoryMappedFileAccess = .readWrite, options: MemoryMappedFileOptions = [],
        permissions: MemoryMappedFile.FilePermissions = .ownerReadWrite, registry: Registry? = nil
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        try namedSharedMemory(
            name: name, capacity: capacity, access: access, options: options, permissions: permissions,
            registry: registry, mustCreate: true, operation: "createNew")
    }

    /// Opens the shared memory with this name, or creates it if there is none;
    /// .NET's `CreateOrOpen`. Atomic: processes racing on it all end up with the same memory.
    public static func createOrOpen(
        name: String, capacity: Int, access: MemoryMappedFileAccess = .readWrite, options: MemoryMappedFileOptions = [],
        permissions: MemoryMappedFile.FilePermissions = .ownerReadWrite, registry: Registry? = nil
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        try namedSharedMemory(
            name: name, capacity: capacity, access: access, options: options, permissions: permissions,
            registry: registry, mustCreate: false, operation: "createOrOpen")
    }

    /// Opens the map, file or region with this name; .NET's `OpenExisting`.
    /// - Parameter access: The access wanted; nil (the default) takes the access its creator
    ///   gave the name. More than that is refused, as .NET refuses it with
    ///   `UnauthorizedAccessException`: a name published `.read` opens `.read` (or
    ///   `.copyOnWrite`, whose writes stay private) and never `.readWrite`.
    /// - Throws: `notFound` (.NET's `FileNotFoundException`) if no live holder has it;
    ///   `backingObjectMissing` if its file was deleted; `permissionDenied` for more access than
    ///   the creator gave, or no permission on the object; `wrongKind` for a mutex or an event.
    /// - Complexity: Two LMDB lookups (O(log *n*) in the registered names, no write) and three
    ///   `fcntl` calls on the name's slot, besides the `open` and `mmap` of the object; closing
    ///   a name that others hold is one more `fcntl` pair (docs/PERFORMANCE.md, "The registry").
    public static func openExisting(
        name: String, access: MemoryMappedFileAccess? = nil, registry: Registry? = nil
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        let operation = "openExisting"
        // Linux cannot map memory write-only; refused before the name is joined, as createOrOpen refuses it.
        guard access != .write else {
            throw RegistryError(
                .invalidAccess, operation: operation, path: name,
                message: "a map cannot be opened write-only (a mapping can always be read); use .readWrite")
        }
        let (entry, membership) = try Registry.join(
            name, accepting: [.file, .sharedMemory], wanted: "a map", registry: registry, operation: operation)
        return try opening(entry, membership: membership, access: access, operation: operation)
    }

    /// Maps what `entry` names (a file region or a shared-memory object) for a holder that
    /// joined it.
    private static func opening(
        _ entry: RegistryEntry, membership: Membership, access: MemoryMappedFileAccess?, operation: String
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        let name = entry.name
        let access = try entry.checkedAccess(access, operation: operation)
        let map = try mapping(operation: operation, path: "\(name) (\(entry.object))") {
            () throws(MappedFileError) in
            entry.kind == .file
                ? try MemoryMappedFile.createFromFile(path: entry.object, mode: .open, access: access)
                : try MemoryMappedFile.openSharedMemory(systemName: entry.object, access: access)
        }
        let size = map.capacity
        let length = entry.length == 0 ? size - entry.offset : entry.length
        guard entry.offset + length <= size else {
            throw RegistryError(
                .backingObjectMissing, operation: operation, path: name,
                message: "the file '\(entry.object)' is shorter than the named region")
        }
        return NamedMemoryMappedFile(
            name: name, map: map, regionOffset: entry.offset, regionLength: length, membership: membership)
    }

    /// Maps a file and publishes it (or a region of it) under `name`, so other processes can
    /// `openExisting(name:)` it; .NET's `CreateFromFile(path, mode, mapName, capacity, access)`.
    /// - Parameters:
    ///   - regionOffset, regionLength: The part of the file the name stands for; a length of 0
    ///     runs to the end. Others' views default to this region.
    public static func createFromFile(
        path: String, mode: MemoryMappedFile.FileMode = .open, capacity: Int = 0,
        access: MemoryMappedFileAccess = .readWrite,
        name: String, regionOffset: Int = 0, regionLength: Int = 0, registry: Registry? = nil
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        let operation = "createFromFile"
        try Registry.validate(name, operation: operation)
        let registry = try Registry.resolve(registry)
        let map = try mapping(operation: operation, path: path) { () throws(MappedFileError) in
            try MemoryMappedFile.createFromFile(path: path, mode: mode, capacity: capacity, access: access)
        }
        let fileSize = map.capacity
        precondition(
            regionOffset >= 0 && regionLength >= 0,
            "createFromFile: the region's offset and length must not be negative")
        // The file's size is another process's to change: a region past its end is an error to
        // report, not a bug to trap on.
        guard regionOffset <= fileSize && regionLength <= fileSize - regionOffset else {
            throw RegistryError(
                .invalidCapacity, operation: operation, path: path,
                message:
                    "the region \(regionOffset)..<\(regionOffset + regionLength) lies outside the file's \(fileSize) bytes"
            )
        }
        let absolutePath = path.hasPrefix("/") ? path : currentDirectory() + "/" + path
        let candidate = RegistryEntry(
            name: name, kind: .file, object: absolutePath, offset: regionOffset, length: regionLength,
            access: access, createdNanoseconds: realtimeNanoseconds(), slot: 0)
        let claim = try registry.claim(
            name, candidate: candidate, mustCreate: true, accepting: [], wanted: "a map", operation: operation)
        guard case .created(let entry) = claim else { preconditionFailure("claim with mustCreate always creates") }
        let length = regionLength == 0 ? fileSize - regionOffset : regionLength
        return NamedMemoryMappedFile(
            name: name, map: map, regionOffset: regionOffset, regionLength: length,
            membership: Membership(registry: registry, name: name, slot: entry.slot))
    }

    private static func namedSharedMemory(
        name: String, capacity: Int, access: MemoryMappedFileAccess, options: MemoryMappedFileOptions,
        permissions: MemoryMappedFile.FilePermissions, registry: Registry?, mustCreate: Bool, operation: String
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        try Registry.validate(name, operation: operation)
        try mapping(operation: operation, path: name) { () throws(MappedFileError) in
            try MemoryMappedFile.checkArguments(access: access, options: options, operation: operation, path: name)
        }
        guard capacity > 0 else {
            throw RegistryError(
                .invalidCapacity, operation: operation, path: name,
                message: "the capacity \(capacity) must be above zero")
        }
        let registry = try Registry.resolve(registry)
        // Create a candidate object outside the registry's transaction; the transaction decides.
        // It is made read-write (it must be sized), then mapped with the access asked for, so a
        // name can be created .read, .readExecute or .copyOnWrite, as .NET allows.
        let systemName = registry.freshSystemName()
        let writable = access.canWrite && access != .copyOnWrite
        let candidateMap = try mapping(operation: operation, path: name) { () throws(MappedFileError) in
            let created = try MemoryMappedFile.createSharedMemory(
                systemName: systemName, mode: .createNew, capacity: capacity, access: writable ? access : .readWrite,
                options: options, permissions: permissions)
            guard !writable else { return created }
            let reopened: MemoryMappedFile
            do throws(MappedFileError) {
                reopened = try MemoryMappedFile.openSharedMemory(systemName: systemName, access: access)
            } catch {
                try? created.close(flush: false)
                try? MemoryMappedFile.removeSharedMemory(systemName: systemName)
                throw error
            }
            try? created.close(flush: false)
            return reopened
        }
        let candidate = RegistryEntry(
            name: name, kind: .sharedMemory, object: systemName, offset: 0, length: capacity,
            access: access, createdNanoseconds: realtimeNanoseconds(), slot: 0)
        // A name that a file map holds is joined as openExisting joins it, as .NET's
        // CreateOrOpen opens an existing named map of either kind.
        let claim = try registry.claimSharedMemory(
            name, candidate: candidate, mustCreate: mustCreate, accepting: [.sharedMemory, .file],
            wanted: "a map", operation: operation)
        let membership = Membership(registry: registry, name: name, slot: claim.entry.slot)
        switch claim {
        case .created:
            return NamedMemoryMappedFile(
                name: name, map: candidateMap, regionOffset: 0, regionLength: capacity, membership: membership)
        case .joined(let entry) where entry.kind == .file:
            try? candidateMap.close(flush: false)
            return try opening(entry, membership: membership, access: access, operation: operation)
        case .joined(let entry):
            _ = try entry.checkedAccess(access, operation: operation)
            let map = try mapping(operation: operation, path: "\(name) (\(entry.object))") {
                () throws(MappedFileError) in
                try MemoryMappedFile.openSharedMemory(systemName: entry.object, access: access)
            }
            let size = map.capacity
            return NamedMemoryMappedFile(
                name: name, map: map, regionOffset: 0, regionLength: size, membership: membership)
        }
    }
}

/// Runs a call of the mapping layer, turning its error into a registry error.
func mapping<Value: ~Copyable>(
    operation: String, path: String, _ body: () throws(MappedFileError) -> Value
) throws(RegistryError) -> Value {
    do {
        return try body()
    } catch {
        throw RegistryError(error, operation: operation, path: path)
    }
}

extension RegistryEntry {
    /// The access an opener gets: `requested`, or the creator's when nil. Refuses more than
    /// the creator gave with `permissionDenied`.
    func checkedAccess(
        _ requested: MemoryMappedFileAccess?, operation: String
    ) throws(RegistryError) -> MemoryMappedFileAccess {
        guard let requested else { return access }
        guard access.permitsOpening(requested) else {
            throw RegistryError(
                .permissionDenied, operation: operation, path: name,
                message: "its creator gave it .\(access) access; .\(requested) is more than that")
        }
        return requested
    }
}

extension MemoryMappedFileAccess {
    /// Whether a name created with this access may be opened with `requested`: never more
    /// rights than the creator gave. Copy-on-write needs only read: its writes stay private.
    func permitsOpening(_ requested: MemoryMappedFileAccess) -> Bool {
        switch requested {
        case .read, .copyOnWrite: return canRead
        case .write: return canWrite
        case .readWrite: return self == .readWrite || self == .readWriteExecute
        case .readExecute: return self == .readExecute || self == .readWriteExecute
        case .readWriteExecute: return self == .readWriteExecute
        }
    }
}
