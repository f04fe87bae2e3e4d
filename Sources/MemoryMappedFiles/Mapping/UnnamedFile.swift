import CMappedShims
import Glibc

// Atomic creation: a file is written while it has no name, then linked into place, so any
// file another process finds at the path is already whole.

extension MemoryMappedFile {
    /// Creates a file of `capacity` bytes in the directory of `path` that no other process can
    /// see yet, mapped read-write. Fill it, then ``linkIntoPlace(syncingDirectory:)`` gives it
    /// its name atomically.
    ///
    /// The file is an `O_TMPFILE` inode: if the process dies first, the kernel frees it and
    /// nothing is left behind. On a file system without `O_TMPFILE` it is a hidden file named
    /// `.NAME.PID.N.creating` beside the path, removed on failure.
    /// - Throws: ``MappedFileError`` naming `path`: a missing directory, no permission, no space.
    public static func createUnnamedFile(
        destinedFor path: String, capacity: Int, permissions: FilePermissions = .ownerReadWriteOthersRead
    ) throws(MappedFileError) -> MemoryMappedFile {
        let operation = "createUnnamedFile"
        guard capacity > 0 else {
            throw MappedFileError(
                .invalidCapacity, operation: operation, path: path,
                message: "the capacity \(capacity) must be above zero")
        }
        let directory = directoryOf(path)
        let flags = O_RDWR | O_CLOEXEC
        var raw = retryingOnInterrupt {
            unsafe system_open(directory, cmapped_O_TMPFILE | flags, mode_t(permissions.rawValue))
        }
        var hiddenPath: String?
        if raw < 0 {
            let value = lastErrno
            // No O_TMPFILE on this file system (EOPNOTSUPP; EISDIR from kernels that predate it).
            guard value == EOPNOTSUPP || value == EISDIR || value == EINVAL else {
                throw .system(
                    "open", errno: value, operation: operation, path: path,
                    message: directoryProblem(value, directory: directory))
            }
            let hidden = hiddenName(for: path, suffix: String(UInt64.random(in: 0...UInt64.max), radix: 16))
            raw = retryingOnInterrupt {
                unsafe system_open(hidden, flags | O_CREAT | O_EXCL, mode_t(permissions.rawValue))
            }
            guard raw >= 0 else {
                let value = lastErrno
                throw .system(
                    "open", errno: value, operation: operation, path: path,
                    message: directoryProblem(value, directory: directory))
            }
            // Renamed after its descriptor, so that linkIntoPlace can find it again.
            let final = hiddenName(for: path, suffix: String(raw))
            guard unsafe system_rename(hidden, final) == 0 else {
                let value = lastErrno
                _ = unsafe system_unlink(hidden)
                _ = system_close(raw)
                throw .system("rename", errno: value, operation: operation, path: hidden)
            }
            hiddenPath = final
        }
        let descriptor = OwnedDescriptor(raw, fsyncsOnClose: false)
        do throws(MappedFileError) {
            try grow(descriptor, from: 0, to: capacity, path: path, operation: operation)
        } catch {
            if let hiddenPath { _ = unsafe system_unlink(hiddenPath) }
            throw error
        }
        return MemoryMappedFile(descriptor: descriptor, capacity: capacity, access: .readWrite, kind: .file(path: path))
    }

    /// Gives a file made by ``createUnnamedFile(destinedFor:capacity:permissions:)`` its path,
    /// atomically: either the whole file appears there, or nothing changes.
    /// - Parameter syncingDirectory: Also `fsync` the directory, so the name survives a power loss.
    /// - Throws: `alreadyExists` if anything is at the path already (it is never replaced).
    public func linkIntoPlace(syncingDirectory: Bool) throws(MappedFileError) {
        let operation = "linkIntoPlace"
        guard case .file(let path) = kind else {
            preconditionFailure("MemoryMappedFile: linkIntoPlace on a map that is not an unnamed file")
        }
        let status = try descriptor.status(operation: operation, path: path)
        if status.st_nlink == 0 {
            // An O_TMPFILE inode. Through /proc needs no privilege; AT_EMPTY_PATH needs
            // CAP_DAC_READ_SEARCH and serves where /proc is not mounted.
            var result = unsafe system_linkat(
                AT_FDCWD, "/proc/self/fd/\(descriptor.rawValue)", AT_FDCWD, path, AT_SYMLINK_FOLLOW)
            if result != 0 && lastErrno == ENOENT {
                result = unsafe system_linkat(descriptor.rawValue, "", AT_FDCWD, path, cmapped_AT_EMPTY_PATH)
            }
            guard result == 0 else { throw linkFailure(path: path, operation: operation) }
        } else {
            let hidden = Self.hiddenName(for: path, suffix: String(descriptor.rawValue))
            guard unsafe system_linkat(AT_FDCWD, hidden, AT_FDCWD, path, 0) == 0 else {
                throw linkFailure(path: path, operation: operation)
            }
            _ = unsafe system_unlink(hidden)
        }
        if syncingDirectory { try Self.synchronizeDirectory(Self.directoryOf(path), operation: operation) }
    }

    /// Puts a file made by ``createUnnamedFile(destinedFor:capacity:permissions:)`` at its path
    /// *in place of* the file there, atomically: a process that opens the path gets the old
    /// file or this one, whole, never neither. Processes that had the old file open keep it
    /// (its link count drops to 0; `status()` shows that).
    ///
    /// The file is first linked to `.NAME.PID.replacing` beside the path, then renamed over it.
    /// A crash between the two leaves that name behind; ``removeLeftoverReplacements(for:)``
    /// removes it.
    /// - Parameter syncingDirectory: Also `fsync` the directory, so the change survives a power loss.
    public func replaceFile(syncingDirectory: Bool) throws(MappedFileError) {
        let operation = "replaceFile"
        guard case .file(let path) = kind else {
            preconditionFailure("MemoryMappedFile: replaceFile on a map that is not an unnamed file")
        }
        let status = try descriptor.status(operation: operation, path: path)
        let staged: String
        if status.st_nlink == 0 {
            staged = Self.hiddenName(for: path, suffix: "replacing")
            _ = unsafe system_unlink(staged)  // an earlier crash of this very process id
            var result = unsafe system_linkat(
                AT_FDCWD, "/proc/self/fd/\(descriptor.rawValue)", AT_FDCWD, staged, AT_SYMLINK_FOLLOW)
            if result != 0 && lastErrno == ENOENT {
                result = unsafe system_linkat(descriptor.rawValue, "", AT_FDCWD, staged, cmapped_AT_EMPTY_PATH)
            }
            guard result == 0 else { throw linkFailure(path: staged, operation: operation) }
        } else {
            staged = Self.hiddenName(for: path, suffix: String(descriptor.rawValue))
        }
        guard unsafe system_rename(staged, path) == 0 else {
            let value = lastErrno
            _ = unsafe system_unlink(staged)
            throw .system("rename", errno: value, operation: operation, path: path)
        }
        if syncingDirectory { try Self.synchronizeDirectory(Self.directoryOf(path), operation: operation) }
    }

    /// Removes what crashed ``replaceFile(syncingDirectory:)`` and ``createUnnamedFile(destinedFor:capacity:permissions:)``
    /// calls left beside `path` (`.NAME.PID.replacing`, `.NAME.PID.N.creating`) by processes that
    /// no longer run; returns the names removed. Call it while holding the file's writer lock.
    @discardableResult
    public static func removeLeftoverReplacements(for path: String) -> [String] {
        let directory = directoryOf(path)
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let prefix = "." + base + "."
        var removed: [String] = []
        for name in directoryNames(directory)
        where name.hasPrefix(prefix)
            && (name.hasSuffix(".replacing") || name.hasSuffix(".creating"))
        {
            let pidText = name.dropFirst(prefix.count).prefix { $0 != "." }
            guard let pid = Int32(pidText), pid != system_getpid(), !processIsAlive(pid) else { continue }
            let full = directory + "/" + name
            if unsafe system_unlink(full) == 0 { removed.append(full) }
        }
        return removed
    }

    private func linkFailure(path: String, operation: String) -> MappedFileError {
        let value = lastErrno
        return .system(
            "linkat", errno: value, operation: operation, path: path,
            message: value == EEXIST ? "a file appeared at the path meanwhile; it was left as it is" : nil)
    }

    /// Syncs a directory, so that names made or removed in it survive a power loss.
    public static func synchronizeDirectory(
        _ directory: String, operation: String = "synchronizeDirectory"
    ) throws(MappedFileError) {
        let raw = retryingOnInterrupt { unsafe system_open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0) }
        guard raw >= 0 else { throw .system("open", errno: lastErrno, operation: operation, path: directory) }
        defer { _ = system_close(raw) }
        guard system_fsync(raw) == 0 else {
            throw .system("fsync", errno: lastErrno, operation: operation, path: directory)
        }
    }

    /// What a failure to create a file in `directory` means, for errnos that are about the
    /// directory rather than the file; nil for the others.
    private static func directoryProblem(_ value: Int32, directory: String) -> String? {
        switch value {
        case ENOENT: return "its directory '\(directory)' does not exist"
        case EACCES, EPERM:
            return "no permission to create a file in the directory '\(directory)'; its owner and mode decide who may"
        case EROFS: return "the directory '\(directory)' is on a read-only file system"
        default: return nil
        }
    }

    /// The directory part of `path`: "." for a bare name.
    static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// A hidden name beside `path`: `.NAME.PID.SUFFIX`.
    private static func hiddenName(for path: String, suffix: String) -> String {
        let base = path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
        let kind = suffix == "replacing" ? "" : ".creating"
        return directoryOf(path) + "/." + base + ".\(system_getpid()).\(suffix)" + kind
    }
}
