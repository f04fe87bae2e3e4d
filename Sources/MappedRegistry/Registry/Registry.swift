import Glibc
import MemoryMappedFiles
import Synchronization

/// The name registry: an LMDB environment in a per-user directory that maps names to
/// shared-memory objects, files and regions, and tracks who holds each of them open.
///
/// A process that opens a name holds a shared OFD lock on the name's own byte (its slot) of the
/// registry's `holders.lock`. The kernel releases the lock when the process closes its last
/// handle of the name or dies, even by `kill -9`, so a dead holder is recognised for certain
/// (no PID reuse can fool it), and opening or closing a name that others hold writes nothing to
/// the database. When the last holder goes, by closing or by dying, the last-close duty runs: a
/// shared-memory object is unlinked; a file is synced; the name is removed. docs/REGISTRY.md
/// describes the format and the rules.
public final class Registry: Sendable {
    /// The registry's directory.
    public let directory: String
    /// The subdirectory for this boot, which holds the LMDB environment and `holders.lock`.
    public let bootDirectory: String
    /// The boot directory, opened once and verified; files inside are reached through it.
    let bootDirectoryDescriptor: Int32
    let environment: LMDBEnvironment
    /// An open file description of `holders.lock` that holds no locks: it sees every holder's.
    let checker: MemoryMappedFile
    /// This process's holds on names: another open file description of `holders.lock`.
    let holds: SlotHolds
    /// `holders.lock` as `/proc/locks` names it: `MAJOR:MINOR:INODE` (hexadecimal device numbers).
    let holdersFileIdentity: String

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
    package static func resolve(_ registry: Registry?) throws(RegistryError) -> Registry {
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
        let bootName = Self.bootDirectoryName
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
        var holdsFile = try Self.openHoldersFile(
            in: boot, shownAs: bootDirectory + "/holders.lock", operation: operation)
        holdsFile.markAsProcessLifetime()
        var status = stat()
        guard system_fstat(holdsFile.fileDescriptor, &status) == 0 else {
            let value = lastErrno
            throw RegistryError(
                .ioError, operation: operation, path: bootDirectory + "/holders.lock", systemCall: "fstat",
                errno: value, message: "cannot read the holders file's identity")
        }
        holds = SlotHolds(file: holdsFile)
        holdersFileIdentity = Self.lockTableIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// The boot directory's name: this boot's identifier and the entry format (3). Each boot
    /// gets a fresh environment; each format its own, so library versions with different
    /// holder rules never share one.
    static var bootDirectoryName: String {
        "boot-" + systemBootIdentifier.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + "-v3"
    }

    /// A file as `/proc/locks` names it: `MAJOR:MINOR:INODE`, the device numbers in two-digit
    /// hexadecimal (the kernel's `%02x:%02x:%lu`).
    static func lockTableIdentity(device: UInt64, inode: UInt64) -> String {
        // glibc's dev_t encoding (gnu_dev_major, gnu_dev_minor).
        let major = ((device >> 8) & 0xFFF) | ((device >> 32) & ~0xFFF)
        let minor = (device & 0xFF) | ((device >> 12) & ~0xFF)
        func hex(_ value: UInt64) -> String {
            let text = String(value, radix: 16)
            return text.count < 2 ? "0" + text : text
        }
        return "\(hex(major)):\(hex(minor)):\(inode)"
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

}
