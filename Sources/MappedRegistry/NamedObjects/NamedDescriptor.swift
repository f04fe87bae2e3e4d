import Glibc
import MemoryMappedFiles

extension MemoryMappedFile {
    /// Publishes the file open on `rawDescriptor` under `name`; .NET's
    /// `CreateFromFile(FileStream, mapName, capacity, access, inheritability, leaveOpen)`.
    ///
    /// Other processes open it by name (``openExisting(name:access:registry:)``), so the file must
    /// have a path they can open: the descriptor's path (from `/proc/self/fd`) must still name the
    /// same file. A memfd, or a file deleted since it was opened, is refused with `notShareable`.
    /// A `capacity` above the file's size grows it, as the unnamed call does.
    /// - Parameter leaveOpen: Leave `rawDescriptor` open; by default this call takes it over and
    ///   closes it (the named map holds its own descriptor of the same file).
    public static func adoptDescriptor(
        _ rawDescriptor: Int32, access: MemoryMappedFileAccess = .readWrite, capacity: Int = 0, leaveOpen: Bool = false,
        name: String, registry: Registry? = nil
    ) throws(RegistryError) -> NamedMemoryMappedFile {
        let operation = "adoptDescriptor"
        defer { if !leaveOpen { _ = system_close(rawDescriptor) } }
        var status = stat()
        guard system_fstat(rawDescriptor, &status) == 0 else {
            throw RegistryError(
                .ioError, operation: operation, path: name, systemCall: "fstat", errno: lastErrno,
                message: "descriptor \(rawDescriptor) is not open")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw RegistryError(
                .notShareable, operation: operation, path: name,
                message:
                    "descriptor \(rawDescriptor) is not a regular file, so it has no path another process could open")
        }
        let path = system_readlink("/proc/self/fd/\(rawDescriptor)")
        var named = stat()
        guard let path, path.hasPrefix("/"), system_stat(path, &named) == 0,
            named.st_dev == status.st_dev, named.st_ino == status.st_ino
        else {
            throw RegistryError(
                .notShareable, operation: operation, path: name,
                message: "the file of descriptor \(rawDescriptor) (\(path ?? "?")) has no path that names it now "
                    + "(a memfd, or a file deleted or renamed since it was opened), so another process could not open it"
            )
        }
        return try createFromFile(
            path: path, mode: .open, capacity: capacity, access: access, name: name, registry: registry)
    }
}
