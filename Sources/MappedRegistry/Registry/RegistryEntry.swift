// What the registry stores under a name, who holds it, and what garbage collection found.

import Glibc
import MemoryMappedFiles
import Synchronization

/// What a name stands for, as the registry stores it.
public struct RegistryEntry: Sendable, Hashable {
    /// The kind of object behind a name.
    public enum Kind: UInt8, Sendable, Hashable {
        /// A POSIX shared-memory object (a non-persisted map).
        case sharedMemory = 1
        /// A file on disk, or a region of one (a persisted map).
        case file = 2
        /// A named mutex, in a small shared-memory object.
        case mutex = 3
        /// A named event (``NamedEvent``), in a small shared-memory object.
        case event = 4
    }

    /// The name: 1 to ``Registry/maximumNameLength`` bytes of UTF-8 without NUL.
    public var name: String
    /// What the name stands for.
    public var kind: Kind
    /// The shared-memory object's system name, or the file's path.
    public var object: String
    /// Where the named region starts in the object.
    public var offset: Int
    /// The region's length in bytes.
    public var length: Int
    /// The access the creator gave it.
    public var access: MemoryMappedFileAccess
    /// When it was created, in nanoseconds since 1970.
    public var createdNanoseconds: UInt64
    /// The name's slot: the byte of the registry's `holders.lock` whose shared locks are its
    /// holders (``Registry/holders(of:)`` asks the kernel about them). No other entry of this
    /// boot's registry has had it.
    public var slot: UInt64
}

/// What ``Registry/collectGarbage()`` cleaned up.
public struct GarbageCollection: Sendable, Hashable {
    /// Names whose holders had all died without closing (each had at least one).
    public var deadHolders: Int
    /// Names whose last holder had died; their last-close duty was done.
    public var removedNames: [String]
}
