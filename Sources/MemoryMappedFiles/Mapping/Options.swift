import Glibc

/// The access a map or view has to its memory; .NET's `MemoryMappedFileAccess`.
public enum MemoryMappedFileAccess: Sendable, Hashable, CaseIterable {
    /// Read-only. Writing through a read-only view traps.
    case read
    /// Write-only. Reading through a write-only view traps. Valid for views and
    /// non-persisted maps, not for maps of a file (as in .NET).
    case write
    /// Read and write; writes are visible to every view and process that maps the same memory.
    case readWrite
    /// Read and write, but writes stay private to the view: they never reach
    /// the file, other views, or other processes (`MAP_PRIVATE`).
    case copyOnWrite
    /// Read and execute.
    case readExecute
    /// Read, write and execute.
    case readWriteExecute

    /// Whether memory with this access can be read through the API.
    public var canRead: Bool { self != .write }
    /// Whether memory with this access can be written through the API.
    public var canWrite: Bool { self != .read && self != .readExecute }

    /// Whether a view with access `view` may be made from a map with this access.
    ///
    /// A view may ask for less than its map, never more: a read-only map gives
    /// read-only or copy-on-write views (whose writes stay private, as .NET allows), a
    /// copy-on-write map gives read or copy-on-write views.
    public func allowsView(_ view: MemoryMappedFileAccess) -> Bool {
        switch self {
        case .read: return view == .read || view == .copyOnWrite
        case .write: return view == .write
        case .readWrite: return view != .readExecute && view != .readWriteExecute
        case .copyOnWrite: return view == .read || view == .copyOnWrite
        case .readExecute: return view == .read || view == .readExecute || view == .copyOnWrite
        case .readWriteExecute: return true
        }
    }

    /// The open(2) access flag a file needs for a map with this access.
    var openFlags: Int32 {
        switch self {
        case .read, .copyOnWrite, .readExecute: return O_RDONLY
        case .write, .readWrite, .readWriteExecute: return O_RDWR
        }
    }

    /// The mmap(2) protection of a view with this access.
    var protection: Int32 {
        switch self {
        case .read: return PROT_READ
        case .write, .readWrite, .copyOnWrite: return PROT_READ | PROT_WRITE
        case .readExecute: return PROT_READ | PROT_EXEC
        case .readWriteExecute: return PROT_READ | PROT_WRITE | PROT_EXEC
        }
    }

    /// The mmap(2) sharing flag of a view with this access.
    var sharing: Int32 { self == .copyOnWrite ? MAP_PRIVATE : MAP_SHARED }
}

extension MemoryMappedFile {
    /// How a file or shared-memory object is opened; the part of .NET's `FileMode` that applies to maps.
    /// (Nested, so that it never meets swift-system's own `FileMode`.)
    public enum FileMode: Sendable, Hashable, CaseIterable {
        /// Open an existing file; fail with `notFound` if there is none.
        case open
        /// Create a file, replacing (emptying) any existing one.
        case create
        /// Create a file; fail with `alreadyExists` if there is one.
        case createNew
        /// Open the file if it exists, otherwise create it.
        case openOrCreate
        /// Open an existing file and empty it. (.NET refuses this mode for maps; here it works,
        /// and needs a capacity above zero.)
        case truncate

        var openFlags: Int32 {
            switch self {
            case .open: return 0
            case .create: return O_CREAT | O_TRUNC
            case .createNew: return O_CREAT | O_EXCL
            case .openOrCreate: return O_CREAT
            case .truncate: return O_TRUNC
            }
        }

        /// Whether the mode may create or empty a file, which needs write access.
        var modifiesFile: Bool { self != .open && self != .openOrCreate }

        /// Whether the mode leaves the file empty before it is sized, so a capacity of 0 cannot work.
        var emptiesFile: Bool { self == .createNew || self == .create || self == .truncate }
    }
}

/// Options for non-persisted maps; .NET's `MemoryMappedFileOptions`.
public struct MemoryMappedFileOptions: OptionSet, Sendable, Hashable {
    /// The option bits.
    public let rawValue: Int
    /// Creates options from their raw bits.
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// Reserve the capacity without committing memory for it.
    ///
    /// Without this option a new non-persisted map commits all of its memory at
    /// creation (`posix_fallocate` on its tmpfs object), so a shortage is a
    /// `noSpace` error then. With it, memory is allocated page by page as views
    /// first touch it, and a shortage at that moment is a `SIGBUS`. See docs/CAVEATS.md.
    public static let delayAllocatePages = MemoryMappedFileOptions(rawValue: 1 << 0)

    /// Map every view's pages at once (`MAP_POPULATE`): the view costs its page faults when it
    /// is made, in one system call, instead of one fault per page on first touch. Beyond .NET.
    /// For files, and for a range of any view, see ``MappingAdvice/populateRead`` and ``MappingAdvice/populateWrite``.
    public static let populate = MemoryMappedFileOptions(rawValue: 1 << 1)

    /// Every option this library knows; other bits are refused, as .NET refuses them.
    public static let known: MemoryMappedFileOptions = [.delayAllocatePages, .populate]
}

extension MemoryMappedFile {
    /// Permission bits for files and shared-memory objects a map creates; the
    /// counterpart of .NET's `MemoryMappedFileSecurity`. The process umask applies. (Nested, so that
    /// it never meets swift-system's own `FilePermissions`.)
    public struct FilePermissions: OptionSet, Sendable, Hashable, CustomStringConvertible {
        /// The mode bits, `0o7777` at most.
        public let rawValue: UInt32
        /// Creates permissions from mode bits, such as `0o640`.
        public init(rawValue: UInt32) { self.rawValue = rawValue & 0o7777 }

        /// The owner may read.
        public static let ownerRead = FilePermissions(rawValue: 0o400)
        /// The owner may write.
        public static let ownerWrite = FilePermissions(rawValue: 0o200)
        /// Members of the file's group may read.
        public static let groupRead = FilePermissions(rawValue: 0o040)
        /// Members of the file's group may write.
        public static let groupWrite = FilePermissions(rawValue: 0o020)
        /// Everyone else may read.
        public static let otherRead = FilePermissions(rawValue: 0o004)
        /// Everyone else may write.
        public static let otherWrite = FilePermissions(rawValue: 0o002)

        /// `0o600`: only the owner may read and write. The default for shared memory.
        public static let ownerReadWrite: FilePermissions = [.ownerRead, .ownerWrite]
        /// `0o644`: the owner may write, everyone may read. The default for files.
        public static let ownerReadWriteOthersRead: FilePermissions = [.ownerRead, .ownerWrite, .groupRead, .otherRead]

        /// The octal form, such as `0o644`.
        public var description: String { "0o" + String(rawValue, radix: 8) }
    }
}
