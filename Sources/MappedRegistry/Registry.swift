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
    /// The holders: one per open map or mutex, in any process.
    public var holders: [UInt64]
}

/// A holder of a name, and whether its process still holds it.
public struct RegistryHolder: Sendable, Hashable {
    /// The holder's identifier: the byte of `holders.lock` its OFD lock covers.
    public var id: UInt64
    /// Whether the lock is held: its process is alive and has not closed the name.
    public var isAlive: Bool
}

/// What ``Registry/collectGarbage()`` cleaned up.
public struct GarbageCollection: Sendable, Hashable {
    /// Holders whose processes died without closing.
    public var deadHolders: Int
    /// Names whose last holder had died; their last-close duty was done.
    public var removedNames: [String]
}

/// The name registry: an LMDB environment in a per-user directory that maps names to
/// shared-memory objects, files and regions, and tracks who holds each of them open.
///
/// Every open of a name adds a holder, which owns an OFD lock on its own byte of the
/// registry's `holders.lock`. The kernel releases the lock when the holder closes or its
/// process dies, even by `kill -9`, so a dead holder is recognised for certain (no PID reuse can
/// fool it). When the last holder goes, by closing or by dying, the last-close duty runs: a
/// shared-memory object is unlinked; a file is synced; the name is removed. docs/REGISTRY.md
/// describes the format and the rules.
public final class Registry: Sendable {
    /// The registry's directory.
    public let directory: String
    /// The subdirectory for this boot, which holds the LMDB environment and `holders.lock`.
    public let bootDirectory: String
    /// The boot directory, opened once and verified; files inside are reached through it.
    private let bootDirectoryDescriptor: Int32
    let environment: LMDBEnvironment
    /// An open file description of `holders.lock` that holds no locks: it sees every holder's.
    private let checker: MemoryMappedFile
    /// This process's holder lock, shared by every name it holds: the kernel keeps one lock
    /// per process on `holders.lock`, so joins and liveness checks stay fast with many names.
    private let processHolder = Mutex<HolderLock?>(nil)
    /// Releases whose transaction failed, retried before the next registry operation.
    private let pendingReleases = Mutex<[(name: String, holder: UInt64)]>([])

    private static let opened = Mutex<[String: Registry]>([:])

    /// The directory used when none is given: `$MAPPED_REGISTRY`, else
    /// `$XDG_RUNTIME_DIR/mapped-records`, else `/run/mapped-records` for root (only root can
    /// write in `/run`) and `/tmp/mapped-records-UID` for everyone else.
    public static var defaultDirectory: String {
        if let explicit = system_getenv("MAPPED_REGISTRY"), !explicit.isEmpty { return explicit }
        if let runtime = system_getenv("XDG_RUNTIME_DIR"), !runtime.isEmpty { return runtime + "/mapped-records" }
        let user = system_geteuid()
        return user == 0 ? "/run/mapped-records" : "/tmp/mapped-records-\(user)"
    }

    /// Opens (creating if needed, mode 0700) the registry in `directory`, or in
    /// ``defaultDirectory``. Each directory is opened once per process.
    ///
    /// The directory must be a real directory (not a symbolic link) that this process's
    /// effective user owns and that neither group nor others can write; root is held to the
    /// same rule. Everything inside is created relative to the opened directory.
    /// - Throws: `permissionDenied` for a directory that fails those checks; `noSpace` when the
    ///   file system has no room for the registry's files.
    public static func open(directory: String? = nil) throws(RegistryError) -> Registry {
        try open(directory: directory, initialMapSize: 16 << 20)
    }

    /// `open(directory:)` with the LMDB map's first size; tests make it small to exercise growth.
    static func open(directory: String?, initialMapSize: Int) throws(RegistryError) -> Registry {
        let path = directory ?? defaultDirectory
        let result: Result<Registry, RegistryError> = opened.withLock { registries in
            if let existing = registries[path] { return .success(existing) }
            do throws(RegistryError) {
                let registry = try Registry(directory: path, initialMapSize: initialMapSize)
                registries[path] = registry
                return .success(registry)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// `registry`, or the default one.
    static func resolve(_ registry: Registry?) throws(RegistryError) -> Registry {
        if let registry { return registry }
        return try open()
    }

    private init(directory: String, initialMapSize: Int) throws(RegistryError) {
        self.directory = directory
        let operation = "openRegistry"
        // Validate before trusting: the directory is opened without following a symbolic link,
        // and checked through that descriptor, so nobody can swap it between check and use.
        let top = try Self.openOwnedDirectory(AT_FDCWD, directory, shownAs: directory, operation: operation)
        defer { _ = system_close(top) }
        // Entries describe running processes, so they belong to one boot: each boot gets a fresh
        // environment, and LMDB need not sync (see docs/REGISTRY.md).
        let bootName = "boot-" + systemBootIdentifier.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        bootDirectory = directory + "/" + bootName
        let boot = try Self.openOwnedDirectory(top, bootName, shownAs: bootDirectory, operation: operation)
        // Kept open for the process's life: LMDB and the holders reach their files through it.
        bootDirectoryDescriptor = boot
        try Self.reserveLockFile(in: boot, shownAs: bootDirectory + "/lock.mdb", operation: operation)
        // LMDB takes a path; /proc/self/fd names exactly the directory verified above.
        let throughDescriptor = "/proc/self/fd/\(boot)"
        let environmentPath = system_access(throughDescriptor, F_OK) == 0 ? throughDescriptor : bootDirectory
        environment = try LMDBEnvironment.shared(
            directory: environmentPath, shownAs: bootDirectory, initialMapSize: initialMapSize)
        var checker = try Self.openHoldersFile(in: boot, shownAs: bootDirectory + "/holders.lock", operation: operation)
        checker.markAsProcessLifetime()  // registries are opened once per process and kept
        self.checker = checker
    }

    /// Creates (mode 0700) or opens the directory `name` relative to `parent`, without following
    /// a symbolic link, and checks that this user owns it and nobody else can write it.
    private static func openOwnedDirectory(
        _ parent: Int32, _ name: String, shownAs path: String, operation: String
    ) throws(RegistryError) -> Int32 {
        if system_mkdirat(parent, name, 0o700) != 0 && lastErrno != EEXIST {
            let value = lastErrno
            throw RegistryError(
                errnoCode(value), operation: operation, path: path, systemCall: "mkdir", errno: value,
                message: "cannot create the registry directory")
        }
        let descriptor = system_openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0)
        guard descriptor >= 0 else {
            let value = lastErrno
            let message =
                value == ELOOP || value == ENOTDIR
                ? "the registry path is a symbolic link or not a directory; it is refused"
                : "cannot open the registry directory"
            throw RegistryError(
                value == ELOOP || value == ENOTDIR ? .permissionDenied : errnoCode(value), operation: operation,
                path: path, systemCall: "open", errno: value, message: message)
        }
        var status = stat()
        guard system_fstat(descriptor, &status) == 0 else {
            let value = lastErrno
            _ = system_close(descriptor)
            throw RegistryError(
                .ioError, operation: operation, path: path, systemCall: "fstat", errno: value,
                message: "cannot read the registry directory's owner")
        }
        let user = system_geteuid()
        guard status.st_uid == user, status.st_mode & 0o022 == 0 else {
            _ = system_close(descriptor)
            let problem =
                status.st_uid != user
                ? "it belongs to user \(status.st_uid), not to this process's user \(user)"
                : "group or others can write it (mode 0\(String(status.st_mode & 0o777, radix: 8)))"
            throw RegistryError(
                .permissionDenied, operation: operation, path: path,
                message: "the registry directory is refused: \(problem); another user could plant names in it")
        }
        return descriptor
    }

    /// Allocates LMDB's lock file before LMDB maps it. LMDB sizes the file with ftruncate and
    /// writes its reader table through a shared mapping, which on a full file system is a
    /// SIGBUS, not an error. Allocated here, a full disk is `noSpace` instead. 64 KiB is above
    /// LMDB's own size for its 126 default readers (8 KiB), and LMDB adopts the larger size.
    private static func reserveLockFile(
        in directory: Int32, shownAs path: String, operation: String
    ) throws(RegistryError) {
        let descriptor = system_openat(directory, "lock.mdb", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let value = lastErrno
            throw RegistryError(
                errnoCode(value), operation: operation, path: path, systemCall: "open", errno: value,
                message: "cannot create the registry's lock file")
        }
        defer { _ = system_close(descriptor) }
        var status = stat()
        guard system_fstat(descriptor, &status) == 0 else {
            let value = lastErrno
            throw RegistryError(
                .ioError, operation: operation, path: path, systemCall: "fstat", errno: value,
                message: "cannot read the lock file")
        }
        // Only a new, empty file: a live environment's lock file must keep the size its users mapped.
        guard status.st_size == 0 else { return }
        let result = system_posix_fallocate(descriptor, 0, off_t(lockFileSize))
        guard result == 0 else {
            throw RegistryError(
                errnoCode(result), operation: operation, path: path, systemCall: "posix_fallocate", errno: result,
                message: result == ENOSPC
                    ? "no space left for the registry's lock file" : "cannot allocate the registry's lock file")
        }
    }

    /// The size reserved for LMDB's lock file.
    static let lockFileSize = 64 << 10

    /// Opens (creating, mode 0600) `holders.lock` in the boot directory, as an open file
    /// description of its own.
    static func openHoldersFile(
        in directory: Int32, shownAs path: String, operation: String
    ) throws(RegistryError) -> MemoryMappedFile {
        let descriptor = system_openat(directory, "holders.lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let value = lastErrno
            throw RegistryError(
                errnoCode(value), operation: operation, path: path, systemCall: "open", errno: value,
                message: "cannot open the registry's holders file")
        }
        return try mapping(operation: operation, path: path) { () throws(MappedFileError) in
            try MemoryMappedFile.adoptDescriptor(descriptor, access: .readWrite, capacity: 4096)
        }
    }

    /// The registry code for a failed system call's errno.
    static func errnoCode(_ value: Int32) -> RegistryError.Code {
        switch value {
        case EACCES, EPERM, EROFS: return .permissionDenied
        case ENOSPC, EDQUOT: return .noSpace
        default: return .ioError
        }
    }

    // MARK: Holders

    /// This process's holder lock, taken on first use: its own open file description of
    /// `holders.lock`, locking one byte until the process ends.
    func acquireHolder() throws(RegistryError) -> HolderLock {
        let result: Result<HolderLock, RegistryError> = processHolder.withLock { holder in
            if let holder { return .success(holder) }
            do throws(RegistryError) {
                var file = try Self.openHoldersFile(
                    in: bootDirectoryDescriptor, shownAs: bootDirectory + "/holders.lock", operation: "acquireHolder")
                file.markAsProcessLifetime()  // kept until the process ends: not a leak
                while true {
                    let id = UInt64.random(in: 4096..<(1 << 40))
                    let locked = try mapping(operation: "acquireHolder", path: bootDirectory + "/holders.lock") {
                        () throws(MappedFileError) in
                        try file.tryLock(bytes: Int(id)..<Int(id) + 1)
                    }
                    if locked {
                        let taken = HolderLock(id: id, file: file)
                        holder = taken
                        return .success(taken)
                    }
                }
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Whether a holder's lock is still held (by any process, this one included).
    func isAlive(_ holder: UInt64) -> Bool {
        (try? checker.isLockedElsewhere(bytes: Int(holder)..<Int(holder) + 1)) ?? true
    }

    /// The entry's holders, with their liveness.
    public func holders(of entry: RegistryEntry) -> [RegistryHolder] {
        entry.holders.map { RegistryHolder(id: $0, isAlive: isAlive($0)) }
    }

    // MARK: Listing and garbage collection

    /// Every name in the registry, in name order.
    public func entries() throws(RegistryError) -> [RegistryEntry] {
        try environment.read { transaction throws(RegistryError) in
            var entries: [RegistryEntry] = []
            for pair in try transaction.all() {
                entries.append(try RegistryEntry.decode(pair.value, key: pair.key, path: directory))
            }
            return entries
        }
    }

    /// The entry for `name`, or nil.
    /// - Throws: `invalidName` for a name that no entry can have (empty, too long, NUL).
    public func entry(named name: String) throws(RegistryError) -> RegistryEntry? {
        try Self.validate(name, operation: "entry(named:)")
        return try environment.read { transaction throws(RegistryError) in
            guard let bytes = try transaction.get(Self.key(for: name)) else { return nil }
            return try RegistryEntry.decode(bytes, named: name)
        }
    }

    /// Removes the holders of dead processes from every name, and does the last-close duty
    /// for names that have no live holder left.
    @discardableResult
    public func collectGarbage() throws(RegistryError) -> GarbageCollection {
        retryPendingReleases()
        return try environment.write { transaction throws(RegistryError) in
            var report = GarbageCollection(deadHolders: 0, removedNames: [])
            for pair in try transaction.all() {
                var entry = try RegistryEntry.decode(pair.value, key: pair.key, path: directory)
                let name = entry.name
                let before = entry.holders.count
                entry.holders.removeAll { !isAlive($0) }
                report.deadHolders += before - entry.holders.count
                if entry.holders.isEmpty {
                    try? lastCloseDuty(entry)
                    try transaction.delete(pair.key)
                    report.removedNames.append(name)
                } else if entry.holders.count != before {
                    try transaction.put(pair.key, entry.encoded())
                }
            }
            return report
        }
    }

    /// What the last holder's close does: unlink shared memory, sync a file.
    /// - Throws: a file's failed `fsync`, which means its data may not be on disk. Clean-up
    ///   after crashed holders has no one to report to and ignores it.
    func lastCloseDuty(_ entry: RegistryEntry) throws(RegistryError) {
        switch entry.kind {
        case .sharedMemory, .mutex, .event:
            try? MemoryMappedFile.removeSharedMemory(systemName: entry.object)
        case .file:
            guard entry.access.canWrite, entry.access != .copyOnWrite else { return }
            do throws(MappedFileError) {
                let map = try MemoryMappedFile.createFromFile(path: entry.object, mode: .open)
                try map.close(flush: true)  // fsync: what every holder wrote reaches the disk
            } catch  where error.code == .notFound {
                return  // the file was deleted: nothing to sync
            } catch {
                throw RegistryError(error, operation: "close", path: entry.name)
            }
        }
    }

    // MARK: Names

    /// The longest name, in bytes of UTF-8. (.NET's own tests use names of 1,032 characters.)
    public static let maximumNameLength = 4096
    /// Names longer than this are stored under a hash of themselves: LMDB keys are at most 511 bytes.
    static let longestPlainKey = 400

    /// Checks a name: 1 to ``maximumNameLength`` bytes of UTF-8, no NUL. A "/" is allowed, so
    /// .NET's `local/` and `global/` prefixes work (names never become paths).
    static func validate(_ name: String, operation: String) throws(RegistryError) {
        let bytes = name.utf8
        guard (1...maximumNameLength).contains(bytes.count), !bytes.contains(0) else {
            throw RegistryError(
                .invalidName, operation: operation, path: String(name.prefix(64)),
                message: "a name must be 1 to \(maximumNameLength) bytes of UTF-8 without NUL")
        }
    }

    /// The LMDB key of a name: the name itself, or for names over 400 bytes, a NUL (which no
    /// name contains) and 16 bytes of hash. The entry holds the full name, which every lookup
    /// compares, so two names with one hash can never be confused.
    static func key(for name: String) -> [UInt8] {
        let bytes = Array(name.utf8)
        guard bytes.count > longestPlainKey else { return bytes }
        var key: [UInt8] = [0]
        unsafe withUnsafeBytes(of: fnv1a(bytes, basis: 0xCBF2_9CE4_8422_2325).littleEndian) { unsafe key += $0 }
        unsafe withUnsafeBytes(of: fnv1a(bytes, basis: 0x6C62_272E_07BB_0142).littleEndian) { unsafe key += $0 }
        return key
    }

    /// A tag of this registry's boot directory (8 hex digits) that the names of its
    /// shared-memory objects carry, so each object in `/dev/shm` is traceable to its registry.
    public var objectTag: String {
        let hash = Self.fnv1a(bootDirectory.utf8, basis: 0xCBF2_9CE4_8422_2325)
        let text = String(hash & 0xFFFF_FFFF, radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }

    /// FNV-1a 64 of `bytes` from `basis`: for the keys of long names and the object tag.
    static func fnv1a(_ bytes: some Sequence<UInt8>, basis: UInt64) -> UInt64 {
        bytes.reduce(basis) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }

    /// A fresh system name for a shared-memory object: `mapped-records.PID.TAG.RANDOM`.
    func freshSystemName() -> String {
        "mapped-records.\(system_getpid()).\(objectTag).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }

    /// How `claim` found the name.
    enum Claim {
        case created(RegistryEntry)
        case joined(RegistryEntry)
    }

    /// Atomically adds `holder` to the live entry named `name`, or, if there is none and
    /// `candidate` is given, stores `candidate` as the new entry. A stale entry (no live
    /// holder) gets its last-close duty first.
    /// - Parameter kinds: The kinds the caller can use; a live entry of another kind is
    ///   `wrongKind`, refused before `holder` is added, so a failed open registers nothing.
    func claim(
        _ name: String, holder: UInt64, candidate: RegistryEntry?, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind],
        wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        retryPendingReleases()
        let key = Self.key(for: name)
        return try environment.write { transaction throws(RegistryError) in
            if let bytes = try transaction.get(key) {
                var entry = try RegistryEntry.decode(bytes, named: name)
                entry.holders.removeAll { !isAlive($0) }
                if !entry.holders.isEmpty {
                    if mustCreate {
                        throw RegistryError(
                            .nameExists, operation: operation, path: name,
                            message: "a live map or mutex already has this name")
                    }
                    guard kinds.contains(entry.kind) else {
                        throw RegistryError(
                            .wrongKind, operation: operation, path: name,
                            message: "the name belongs to \(entry.kind.withArticle), not \(wanted)")
                    }
                    entry.holders.append(holder)
                    try transaction.put(key, entry.encoded())
                    return .joined(entry)
                }
                try? lastCloseDuty(entry)  // its holders all died: clean up after them
                try transaction.delete(key)
            }
            guard var entry = candidate else {
                throw RegistryError(
                    .notFound, operation: operation, path: name,
                    message: "no live map, region or mutex has this name")
            }
            entry.holders = [holder]
            try transaction.put(key, entry.encoded())
            return .created(entry)
        }
    }

    /// Joins the live entry named `name` as a new holder: what every `openExisting` does.
    /// Throws `notFound` if no live holder has the name.
    static func join(
        _ name: String, accepting kinds: [RegistryEntry.Kind], wanted: String, registry: Registry?, operation: String
    ) throws(RegistryError) -> (entry: RegistryEntry, membership: Membership) {
        try validate(name, operation: operation)
        let registry = try resolve(registry)
        let holder = try registry.acquireHolder()
        guard
            case .joined(let entry) = try registry.claim(
                name, holder: holder.id, candidate: nil, mustCreate: false, accepting: kinds, wanted: wanted,
                operation: operation)
        else {
            preconditionFailure("claim without a candidate always joins")
        }
        return (entry, Membership(registry: registry, name: name, holder: holder))
    }

    /// `claim` with a new shared-memory object as the candidate. If the claim fails, or joins an
    /// existing entry instead, the candidate object is removed; an entry of a kind not in
    /// `kinds` is `wrongKind`, and the holder is not added.
    func claimSharedMemory(
        _ name: String, holder: UInt64, candidate: RegistryEntry, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind], wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        let claim: Claim
        do {
            claim = try self.claim(
                name, holder: holder, candidate: candidate, mustCreate: mustCreate, accepting: kinds, wanted: wanted,
                operation: operation)
        } catch {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
            throw error
        }
        if case .joined = claim {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
        }
        return claim
    }

    /// Removes `holder` from `name`; if no live holder is left, does the last-close duty
    /// (after the commit, so that a failing fsync is reported to this closer).
    ///
    /// If the transaction fails, the release is kept and retried before this process's next
    /// registry operation: the process's holder lock lives on, so the name would otherwise stay.
    func release(_ name: String, holder: UInt64) throws(RegistryError) {
        retryPendingReleases()
        let finished: RegistryEntry?
        do {
            finished = try removeHolder(name, holder: holder)
        } catch {
            pendingReleases.withLock { $0.append((name, holder)) }
            throw error
        }
        if let finished { try lastCloseDuty(finished) }
    }

    /// The release transaction; returns the entry if this was its last live holder.
    private func removeHolder(_ name: String, holder: UInt64) throws(RegistryError) -> RegistryEntry? {
        let key = Self.key(for: name)
        return try environment.write { transaction throws(RegistryError) -> RegistryEntry? in
            guard let bytes = try transaction.get(key) else { return nil }
            var entry = try RegistryEntry.decode(bytes, named: name)
            // One membership goes: a process that joined a name twice is listed twice.
            if let mine = entry.holders.firstIndex(of: holder) { entry.holders.remove(at: mine) }
            entry.holders.removeAll { !isAlive($0) }
            if entry.holders.isEmpty {
                try transaction.delete(key)
                return entry
            }
            try transaction.put(key, entry.encoded())
            return nil
        }
    }

    /// Retries releases whose transaction failed earlier (see ``release(_:holder:)``).
    func retryPendingReleases() {
        let pending = pendingReleases.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        for (name, holder) in pending {
            do {
                if let finished = try removeHolder(name, holder: holder) { try? lastCloseDuty(finished) }
            } catch {
                pendingReleases.withLock { $0.append((name, holder)) }
            }
        }
    }
}

/// A process's holder lock: an open file description of `holders.lock` with one byte locked.
/// The process dying releases the lock, and with it every name the process held.
final class HolderLock: Sendable {
    let id: UInt64
    let file: MemoryMappedFile

    init(id: UInt64, file: consuming MemoryMappedFile) {
        self.id = id
        self.file = file
    }
}

/// A holder's membership of a name: released (with the last-close duty if it is the last)
/// when closed or deinitialized.
final class Membership: @unchecked Sendable {
    // SAFETY (Sendable): `isReleased` is guarded by the owner being ~Copyable or a class used
    // from one thread; release is idempotent.
    let registry: Registry
    let name: String
    let holder: HolderLock
    private var isReleased = false

    init(registry: Registry, name: String, holder: HolderLock) {
        self.registry = registry
        self.name = name
        self.holder = holder
    }

    func release() throws(RegistryError) {
        guard !isReleased else { return }
        isReleased = true
        try registry.release(name, holder: holder.id)
    }

    deinit { try? release() }
}

extension RegistryEntry.Kind {
    /// The kind in words, with its article, for messages: "a shared-memory map", "an event".
    var withArticle: String {
        switch self {
        case .sharedMemory: return "a shared-memory map"
        case .file: return "a file map"
        case .mutex: return "a mutex"
        case .event: return "an event"
        }
    }
}

// MARK: - Encoding (validated on decode)

extension RegistryEntry {
    /// Version 2 adds the full name after the holders; version 1 entries (keyed by their name) still decode.
    static let formatVersion: UInt8 = 2

    /// The entry as LMDB stores it (SPI for the fuzz tests).
    package func encoded() -> [UInt8] {
        var bytes: [UInt8] = [
            Self.formatVersion, kind.rawValue, UInt8(MemoryMappedFileAccess.allCases.firstIndex(of: access)!), 0,
        ]
        func append<T: FixedWidthInteger>(_ value: T) {
            unsafe withUnsafeBytes(of: value.littleEndian) { unsafe bytes += $0 }
        }
        append(UInt64(offset))
        append(UInt64(length))
        append(createdNanoseconds)
        let objectBytes = Array(object.utf8)
        append(UInt16(objectBytes.count))
        bytes += objectBytes
        append(UInt32(holders.count))
        for holder in holders { append(holder) }
        let nameBytes = Array(name.utf8)
        append(UInt16(nameBytes.count))
        bytes += nameBytes
        return bytes
    }

    /// The entry stored for `name`: decoded, and checked to be this name's (a long name's key is
    /// a hash, so another name could share it; that is refused rather than confused).
    static func decode(_ bytes: [UInt8], named name: String) throws(RegistryError) -> RegistryEntry {
        let entry = try decode(bytes, name: name, path: String(name.prefix(64)))
        guard entry.name == name else {
            throw RegistryError(
                .nameExists, operation: "readEntry", path: String(name.prefix(64)),
                message: "another name shares this long name's key (a 128-bit hash collision); choose another name")
        }
        return entry
    }

    /// The entry stored under an LMDB key, when listing: version 1 entries are named by their key.
    static func decode(_ bytes: [UInt8], key: [UInt8], path: String) throws(RegistryError) -> RegistryEntry {
        try decode(bytes, name: String(decoding: key, as: UTF8.self), path: path)
    }

    /// Decodes an entry as LMDB stores it, validating every field, refusing anything malformed
    /// with `corrupt` (SPI for the fuzz tests). `name` names a version 1 entry, which has no name of its own.
    package static func decode(
        _ bytes: [UInt8], name: String, path: String
    ) throws(RegistryError) -> RegistryEntry {
        func corrupt(_ message: String) -> RegistryError {
            RegistryError(
                .corrupt, operation: "readEntry", path: path,
                message: "the registry entry for '\(name)' is damaged: \(message)")
        }
        var position = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws(RegistryError) -> T {
            guard position + MemoryLayout<T>.size <= bytes.count else { throw corrupt("it ends early") }
            var value = T.zero
            unsafe withUnsafeMutableBytes(of: &value) {
                unsafe $0.copyBytes(from: bytes[position..<position + MemoryLayout<T>.size])
            }
            position += MemoryLayout<T>.size
            return T(littleEndian: value)
        }
        let version = try read(UInt8.self)
        guard version == 1 || version == formatVersion else { throw corrupt("unknown entry version") }
        guard let kind = Kind(rawValue: try read(UInt8.self)) else { throw corrupt("unknown kind") }
        let accessIndex = Int(try read(UInt8.self))
        guard accessIndex < MemoryMappedFileAccess.allCases.count else { throw corrupt("unknown access") }
        _ = try read(UInt8.self)
        let offset = try read(UInt64.self), length = try read(UInt64.self), created = try read(UInt64.self)
        guard offset <= UInt64(Int.max), length <= UInt64(Int.max) - offset else {
            throw corrupt("offset or length out of range")
        }
        let objectLength = Int(try read(UInt16.self))
        guard position + objectLength <= bytes.count,
            let object = String(validating: bytes[position..<position + objectLength], as: UTF8.self), !object.isEmpty
        else { throw corrupt("the object name is not valid UTF-8") }
        position += objectLength
        let holderCount = Int(try read(UInt32.self))
        guard holderCount <= (bytes.count - position) / 8 else { throw corrupt("the holder list ends early") }
        var holders: [UInt64] = []
        for _ in 0..<holderCount { holders.append(try read(UInt64.self)) }
        var name = name
        if version >= 2 {
            let nameLength = Int(try read(UInt16.self))
            guard nameLength >= 1, position + nameLength <= bytes.count,
                let stored = String(validating: bytes[position..<position + nameLength], as: UTF8.self),
                !stored.utf8.contains(0)
            else { throw corrupt("the stored name is not 1 or more bytes of UTF-8 without NUL") }
            position += nameLength
            name = stored
        }
        guard position == bytes.count else { throw corrupt("it has trailing bytes") }
        return RegistryEntry(
            name: name, kind: kind, object: object, offset: Int(offset), length: Int(length),
            access: MemoryMappedFileAccess.allCases[accessIndex], createdNanoseconds: created, holders: holders)
    }
}
