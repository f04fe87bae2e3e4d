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
    }

    /// The name, 1 to 255 bytes of UTF-8 without "/" or NUL.
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
    /// `$XDG_RUNTIME_DIR/mapped-records`, else `/tmp/mapped-records-UID`.
    public static var defaultDirectory: String {
        if let explicit = system_getenv("MAPPED_REGISTRY"), !explicit.isEmpty { return explicit }
        if let runtime = system_getenv("XDG_RUNTIME_DIR"), !runtime.isEmpty { return runtime + "/mapped-records" }
        return "/tmp/mapped-records-\(system_getuid())"
    }

    /// Opens (creating if needed, mode 0700) the registry in `directory`, or in
    /// ``defaultDirectory``. Each directory is opened once per process.
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
        if system_mkdir(directory, 0o700) != 0 && lastErrno != EEXIST {
            let value = lastErrno
            throw RegistryError(value == EACCES ? .accessDenied : .ioError, operation: operation, subject: directory,
                                call: "mkdir", errno: value, message: "cannot create the registry directory")
        }
        var status = stat()
        guard system_stat(directory, &status) == 0 else {
            let value = lastErrno
            throw RegistryError(value == EACCES ? .accessDenied : .ioError, operation: operation, subject: directory,
                                call: "stat", errno: value, message: "cannot reach the registry directory")
        }
        guard status.st_mode & S_IFMT == S_IFDIR else {
            throw RegistryError(.accessDenied, operation: operation, subject: directory, message: "the registry path is not a directory")
        }
        guard status.st_uid == system_getuid() || system_getuid() == 0, status.st_mode & 0o022 == 0 else {
            throw RegistryError(.accessDenied, operation: operation, subject: directory,
                                message: "the registry directory belongs to another user or is writable by others")
        }
        // Entries describe running processes, so they belong to one boot: each boot gets a fresh
        // environment, and LMDB need not sync (see docs/REGISTRY.md).
        bootDirectory = directory + "/boot-" + systemBootIdentifier.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
        if system_mkdir(bootDirectory, 0o700) != 0 && lastErrno != EEXIST {
            throw RegistryError(.ioError, operation: operation, subject: bootDirectory, call: "mkdir", errno: lastErrno,
                                message: "cannot create the registry's directory for this boot")
        }
        environment = try LMDBEnvironment.shared(directory: bootDirectory, initialMapSize: initialMapSize)
        let lockPath = bootDirectory + "/holders.lock"
        var checker = try mapping(operation: operation, subject: lockPath) { () throws(MappedFileError) in
            try MemoryMappedFile.createFromFile(path: lockPath, mode: .openOrCreate, capacity: 4096, permissions: .ownerReadWrite)
        }
        checker.markAsProcessLifetime()  // registries are opened once per process and kept
        self.checker = checker
    }

    // MARK: Holders

    /// This process's holder lock, taken on first use: its own open file description of
    /// `holders.lock`, locking one byte until the process ends.
    func acquireHolder() throws(RegistryError) -> HolderLock {
        let result: Result<HolderLock, RegistryError> = processHolder.withLock { holder in
            if let holder { return .success(holder) }
            do throws(MappedFileError) {
                var file = try MemoryMappedFile.createFromFile(path: bootDirectory + "/holders.lock", mode: .open)
                file.markAsProcessLifetime()  // kept until the process ends: not a leak
                while true {
                    let id = UInt64.random(in: 4096..<(1 << 40))
                    if try file.tryLock(bytes: Int(id)..<Int(id) + 1) {
                        let taken = HolderLock(id: id, file: file)
                        holder = taken
                        return .success(taken)
                    }
                }
            } catch {
                return .failure(RegistryError(error, operation: "acquireHolder", subject: bootDirectory + "/holders.lock"))
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
                entries.append(try RegistryEntry.decode(pair.value, name: String(decoding: pair.key, as: UTF8.self), subject: directory))
            }
            return entries
        }
    }

    /// The entry for `name`, or nil.
    public func entry(named name: String) throws(RegistryError) -> RegistryEntry? {
        try environment.read { transaction throws(RegistryError) in
            guard let bytes = try transaction.get(name) else { return nil }
            return try RegistryEntry.decode(bytes, name: name, subject: name)
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
                let name = String(decoding: pair.key, as: UTF8.self)
                var entry = try RegistryEntry.decode(pair.value, name: name, subject: name)
                let before = entry.holders.count
                entry.holders.removeAll { !isAlive($0) }
                report.deadHolders += before - entry.holders.count
                if entry.holders.isEmpty {
                    try? lastCloseDuty(entry)
                    try transaction.delete(name)
                    report.removedNames.append(name)
                } else if entry.holders.count != before {
                    try transaction.put(name, entry.encoded())
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
        case .sharedMemory, .mutex:
            try? MemoryMappedFile.removeSharedMemory(systemName: entry.object)
        case .file:
            guard entry.access.canWrite, entry.access != .copyOnWrite else { return }
            do throws(MappedFileError) {
                let map = try MemoryMappedFile.createFromFile(path: entry.object, mode: .open)
                try map.close(flush: true)  // fsync: what every holder wrote reaches the disk
            } catch where error.code == .notFound {
                return  // the file was deleted: nothing to sync
            } catch {
                throw RegistryError(error, operation: "close", subject: entry.name)
            }
        }
    }

    // MARK: Names

    /// Checks a name: 1 to 255 bytes of UTF-8, no "/" and no NUL.
    static func validate(_ name: String, operation: String) throws(RegistryError) {
        let bytes = name.utf8
        guard (1...255).contains(bytes.count), !bytes.contains(UInt8(ascii: "/")), !bytes.contains(0) else {
            throw RegistryError(.invalidName, operation: operation, subject: name,
                                message: "a name must be 1 to 255 bytes of UTF-8 without '/' or NUL")
        }
    }

    /// A fresh system name for a shared-memory object.
    static func freshSystemName() -> String {
        "mapped-records.\(system_getpid()).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }

    /// How `claim` found the name.
    enum Claim {
        case created(RegistryEntry)
        case joined(RegistryEntry)
    }

    /// Atomically adds `holder` to the live entry named `name`, or, if there is none and
    /// `candidate` is given, stores `candidate` as the new entry. A stale entry (no live
    /// holder) gets its last-close duty first.
    func claim(
        _ name: String, holder: UInt64, candidate: RegistryEntry?, mustCreate: Bool, operation: String
    ) throws(RegistryError) -> Claim {
        retryPendingReleases()
        return try environment.write { transaction throws(RegistryError) in
            if let bytes = try transaction.get(name) {
                var entry = try RegistryEntry.decode(bytes, name: name, subject: name)
                entry.holders.removeAll { !isAlive($0) }
                if !entry.holders.isEmpty {
                    if mustCreate {
                        throw RegistryError(.nameExists, operation: operation, subject: name, message: "a live map or mutex already has this name")
                    }
                    entry.holders.append(holder)
                    try transaction.put(name, entry.encoded())
                    return .joined(entry)
                }
                try? lastCloseDuty(entry)  // its holders all died: clean up after them
                try transaction.delete(name)
            }
            guard var entry = candidate else {
                throw RegistryError(.notFound, operation: operation, subject: name, message: "no live map, region or mutex has this name")
            }
            entry.holders = [holder]
            try transaction.put(name, entry.encoded())
            return .created(entry)
        }
    }

    /// Joins the live entry named `name` as a new holder: what every `openExisting` does.
    /// Throws `notFound` if no live holder has the name.
    static func join(
        _ name: String, registry: Registry?, operation: String
    ) throws(RegistryError) -> (entry: RegistryEntry, membership: Membership) {
        try validate(name, operation: operation)
        let registry = try resolve(registry)
        let holder = try registry.acquireHolder()
        guard case .joined(let entry) = try registry.claim(name, holder: holder.id, candidate: nil, mustCreate: false, operation: operation) else {
            preconditionFailure("claim without a candidate always joins")
        }
        return (entry, Membership(registry: registry, name: name, holder: holder))
    }

    /// `claim` with a new shared-memory object as the candidate. If the claim fails, or joins an
    /// existing entry instead, the candidate object is removed; joining an entry of another
    /// kind is `wrongKind`.
    func claimSharedMemory(
        _ name: String, holder: UInt64, candidate: RegistryEntry, mustCreate: Bool, operation: String
    ) throws(RegistryError) -> Claim {
        let claim: Claim
        do {
            claim = try self.claim(name, holder: holder, candidate: candidate, mustCreate: mustCreate, operation: operation)
        } catch {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
            throw error
        }
        if case .joined(let existing) = claim {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
            guard existing.kind == candidate.kind else {
                throw RegistryError(.wrongKind, operation: operation, subject: name,
                                    message: "the name belongs to a \(existing.kind), not a \(candidate.kind)")
            }
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
        try environment.write { transaction throws(RegistryError) -> RegistryEntry? in
            guard let bytes = try transaction.get(name) else { return nil }
            var entry = try RegistryEntry.decode(bytes, name: name, subject: name)
            // One membership goes: a process that joined a name twice is listed twice.
            if let mine = entry.holders.firstIndex(of: holder) { entry.holders.remove(at: mine) }
            entry.holders.removeAll { !isAlive($0) }
            if entry.holders.isEmpty {
                try transaction.delete(name)
                return entry
            }
            try transaction.put(name, entry.encoded())
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

// MARK: - Encoding (validated on decode)

extension RegistryEntry {
    static let formatVersion: UInt8 = 1

    /// The entry as LMDB stores it (SPI for the fuzz tests).
    @_spi(Testing) public func encoded() -> [UInt8] {
        var bytes: [UInt8] = [Self.formatVersion, kind.rawValue, UInt8(MemoryMappedFileAccess.allCases.firstIndex(of: access)!), 0]
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(UInt64(offset))
        append(UInt64(length))
        append(createdNanoseconds)
        let objectBytes = Array(object.utf8)
        append(UInt16(objectBytes.count))
        bytes += objectBytes
        append(UInt32(holders.count))
        for holder in holders { append(holder) }
        return bytes
    }

    /// Decodes an entry, refusing anything malformed with `corrupt`.
    /// Decodes an entry as LMDB stores it, validating every field (SPI for the fuzz tests).
    @_spi(Testing) public static func decode(_ bytes: [UInt8], name: String, subject: String) throws(RegistryError) -> RegistryEntry {
        func corrupt(_ message: String) -> RegistryError {
            RegistryError(.corrupt, operation: "readEntry", subject: subject, message: "the registry entry for '\(name)' is damaged: \(message)")
        }
        var position = 0
        func read<T: FixedWidthInteger>(_: T.Type) throws(RegistryError) -> T {
            guard position + MemoryLayout<T>.size <= bytes.count else { throw corrupt("it ends early") }
            var value = T.zero
            withUnsafeMutableBytes(of: &value) { $0.copyBytes(from: bytes[position..<position + MemoryLayout<T>.size]) }
            position += MemoryLayout<T>.size
            return T(littleEndian: value)
        }
        guard try read(UInt8.self) == formatVersion else { throw corrupt("unknown entry version") }
        guard let kind = Kind(rawValue: try read(UInt8.self)) else { throw corrupt("unknown kind") }
        let accessIndex = Int(try read(UInt8.self))
        guard accessIndex < MemoryMappedFileAccess.allCases.count else { throw corrupt("unknown access") }
        _ = try read(UInt8.self)
        let offset = try read(UInt64.self), length = try read(UInt64.self), created = try read(UInt64.self)
        guard offset <= UInt64(Int.max), length <= UInt64(Int.max) - offset else { throw corrupt("offset or length out of range") }
        let objectLength = Int(try read(UInt16.self))
        guard position + objectLength <= bytes.count,
              let object = String(validating: bytes[position..<position + objectLength], as: UTF8.self), !object.isEmpty
        else { throw corrupt("the object name is not valid UTF-8") }
        position += objectLength
        let holderCount = Int(try read(UInt32.self))
        guard holderCount <= (bytes.count - position) / 8 else { throw corrupt("the holder list ends early") }
        var holders: [UInt64] = []
        for _ in 0..<holderCount { holders.append(try read(UInt64.self)) }
        guard position == bytes.count else { throw corrupt("it has trailing bytes") }
        return RegistryEntry(name: name, kind: kind, object: object, offset: Int(offset), length: Int(length),
                             access: MemoryMappedFileAccess.allCases[accessIndex], createdNanoseconds: created, holders: holders)
    }
}
