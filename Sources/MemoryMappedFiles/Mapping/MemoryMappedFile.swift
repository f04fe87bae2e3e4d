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
    public internal(set) var capacity: Int
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
