import Glibc

// Which file a map has open, and who owns it: what a process that waited for a lock checks
// before it trusts the file (another may have renamed a new file over the path meanwhile), and
// what a rewrite carries over to the file that replaces the old one.

/// The owner, group and permission bits of a file: what a rewrite keeps.
public struct FileOwnership: Sendable, Hashable, CustomStringConvertible {
    /// The owning user id.
    public var owner: uid_t
    /// The owning group id.
    public var group: gid_t
    /// The permission bits, set-id and sticky bits included.
    public var permissions: MemoryMappedFile.FilePermissions

    /// An ownership from its parts.
    public init(owner: uid_t, group: gid_t, permissions: MemoryMappedFile.FilePermissions) {
        self.owner = owner
        self.group = group
        self.permissions = permissions
    }

    /// `uid 1000, gid 1000, mode 0o640`.
    public var description: String { "uid \(owner), gid \(group), mode \(permissions)" }
}

extension MemoryMappedFile {
    /// Whether `path` names the very file this map has open now (the same device and inode).
    ///
    /// False when the path is gone, or names another file: one that a migration renamed over
    /// it, say. A process that waited for a file's lock calls it once it holds the lock: the
    /// lock is on the file it opened, which may no longer be the file at the path. One `stat`
    /// and one `fstat`.
    /// - Throws: ``MappedFileError`` for a failed `fstat`, or a `stat` that fails for another
    ///   reason than a missing path (a directory the caller may no longer search, say).
    public func isNamed(by path: String) throws(MappedFileError) -> Bool {
        let open = try descriptor.status(operation: "isNamed", path: path)
        var named = stat()
        guard unsafe system_stat(path, &named) == 0 else {
            let value = lastErrno
            if value == ENOENT || value == ENOTDIR { return false }
            throw .system("stat", errno: value, operation: "isNamed", path: path)
        }
        return named.st_dev == open.st_dev && named.st_ino == open.st_ino
    }

    /// How many names (hard links) the file has; 0 once every name is gone.
    public func linkCount() throws(MappedFileError) -> Int {
        Int(try descriptor.status(operation: "linkCount", path: state.path).st_nlink)
    }

    /// The file's owner, group and permission bits.
    public func ownership() throws(MappedFileError) -> FileOwnership {
        let status = try descriptor.status(operation: "ownership", path: state.path)
        return FileOwnership(
            owner: status.st_uid, group: status.st_gid, permissions: FilePermissions(rawValue: status.st_mode & 0o7777))
    }

    /// Gives the file `ownership`: its owner and group first (`fchown`, which clears set-id
    /// bits), then its permission bits (`fchmod`). Changing the owner needs root; changing the
    /// group needs the owner to belong to it.
    /// - Throws: ``MappedFileError`` with `permissionDenied` when the caller may not.
    public func setOwnership(_ ownership: FileOwnership) throws(MappedFileError) {
        let current = try self.ownership()
        if current.owner != ownership.owner || current.group != ownership.group {
            guard system_fchown(descriptor.rawValue, ownership.owner, ownership.group) == 0 else {
                throw .system(
                    "fchown", errno: lastErrno, operation: "setOwnership", path: state.path,
                    message: "cannot give the file to \(ownership.description); only root may change a file's owner")
            }
        }
        try setPermissions(ownership.permissions)
    }

    /// Copies every extended attribute of `other`'s file to this map's file: POSIX ACLs
    /// (`system.posix_acl_access`), `user.*` attributes, and the rest where the caller may set them.
    /// - Throws: ``MappedFileError`` naming the attribute that could not be copied.
    public func copyExtendedAttributes(from other: borrowing MemoryMappedFile) throws(MappedFileError) {
        let operation = "copyExtendedAttributes"
        let source = other.descriptor.rawValue
        let size = system_flistxattr(source, nil, 0)
        if size < 0 {
            let value = lastErrno
            if value == ENOTSUP { return }  // a file system without extended attributes
            throw .system("flistxattr", errno: value, operation: operation, path: other.state.path)
        }
        guard size > 0 else { return }
        var names = [CChar](repeating: 0, count: size)
        let listed = unsafe names.withUnsafeMutableBufferPointer {
            unsafe system_flistxattr(source, $0.baseAddress, size)
        }
        guard listed >= 0 else {
            throw .system("flistxattr", errno: lastErrno, operation: operation, path: other.state.path)
        }
        var start = 0
        while start < listed {
            let end = names[start..<listed].firstIndex(of: 0) ?? listed
            let name = String(decoding: names[start..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            start = end + 1
            guard !name.isEmpty else { continue }
            let length = unsafe system_fgetxattr(source, name, nil, 0)
            guard length >= 0 else {
                throw .system(
                    "fgetxattr", errno: lastErrno, operation: operation, path: other.state.path,
                    message: "cannot read the attribute \(name)")
            }
            var value = [UInt8](repeating: 0, count: max(length, 1))
            let read = unsafe value.withUnsafeMutableBytes {
                unsafe system_fgetxattr(source, name, $0.baseAddress, length)
            }
            guard read >= 0 else {
                throw .system(
                    "fgetxattr", errno: lastErrno, operation: operation, path: other.state.path,
                    message: "cannot read the attribute \(name)")
            }
            let written = unsafe value.withUnsafeBytes {
                unsafe system_fsetxattr(descriptor.rawValue, name, $0.baseAddress, read)
            }
            guard written == 0 else {
                throw .system(
                    "fsetxattr", errno: lastErrno, operation: operation, path: state.path,
                    message: "cannot copy the extended attribute \(name)")
            }
        }
    }
}
