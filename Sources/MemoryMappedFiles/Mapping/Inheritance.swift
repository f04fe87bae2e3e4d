import Glibc

// Handing a map to a child process: .NET's `HandleInheritability.Inheritable`, with the child's
// side included. Descriptors are close-on-exec by default, so nothing leaks into children by
// accident; these calls pass one on purpose.

extension MemoryMappedFile {
    /// The environment variable through which ``spawnChild(executable:arguments:environment:)``
    /// tells the child where its map is: `"DESCRIPTOR ACCESS"`, such as `"3 readWrite"`.
    public static let inheritedMapVariable = "MAPPED_RECORDS_INHERITED_MAP"
    /// The descriptor number at which a child started by ``spawnChild(executable:arguments:environment:)`` finds the map.
    public static let inheritedDescriptor: Int32 = 3

    /// Whether child processes started from now on, by any means (`posix_spawn`, `fork` + `exec`,
    /// Foundation's `Process`), inherit this map's descriptor; .NET's `HandleInheritability`.
    /// By default they do not (close-on-exec). A child maps it with ``adoptDescriptor(_:access:capacity:leaveOpen:)``,
    /// given the number (``fileDescriptor``) by an argument or the environment.
    public func setInheritable(_ inheritable: Bool) throws(MappedFileError) {
        let flags = system_fcntl_getfd(descriptor.rawValue)
        let updated = inheritable ? flags & ~FD_CLOEXEC : flags | FD_CLOEXEC
        guard flags >= 0, system_fcntl_setfd(descriptor.rawValue, updated) == 0 else {
            throw MappedFileError.system("fcntl(F_SETFD)", errno: lastErrno, operation: "setInheritable", path: path)
        }
    }

    /// Whether child processes inherit this map's descriptor.
    public var isInheritable: Bool { system_fcntl_getfd(descriptor.rawValue) & FD_CLOEXEC == 0 }

    /// Starts `executable` with this map's descriptor at ``inheritedDescriptor`` and
    /// ``inheritedMapVariable`` set, so that the child's ``adoptInherited()`` maps the same memory
    /// or file with the same access; returns the child's process id (wait for it with `waitpid`).
    /// The child shares the map's pages: anonymous memory and shared memory included. No other
    /// descriptor of this process is passed on.
    /// - Parameters:
    ///   - executable: The path of the program to start.
    ///   - arguments: Its arguments, after its name.
    ///   - environment: The child's environment (`NAME=value` strings); this process's by default.
    public func spawnChild(
        executable: String, arguments: [String] = [], environment: [String]? = nil
    ) throws(MappedFileError) -> pid_t {
        var actions = unsafe posix_spawn_file_actions_t()
        unsafe posix_spawn_file_actions_init(&actions)
        defer { unsafe posix_spawn_file_actions_destroy(&actions) }
        // dup2 to another number clears close-on-exec on the copy; the original stays private.
        unsafe posix_spawn_file_actions_adddup2(&actions, descriptor.rawValue, Self.inheritedDescriptor)
        let variable = "\(Self.inheritedMapVariable)=\(Self.inheritedDescriptor) \(access)"
        let inheritedEnvironment = (environment ?? Self.currentEnvironment()).filter {
            !$0.hasPrefix(Self.inheritedMapVariable + "=")
        }
        let argv = [executable] + arguments
        var pid: pid_t = 0
        let status = unsafe withCStrings(argv) { argvPointers in
            unsafe withCStrings(inheritedEnvironment + [variable]) { environmentPointers in
                unsafe system_posix_spawn(&pid, executable, &actions, argvPointers, environmentPointers)
            }
        }
        guard status == 0 else {
            throw MappedFileError.system("posix_spawn", errno: status, operation: "spawnChild", path: executable)
        }
        return pid
    }

    /// In a child started by ``spawnChild(executable:arguments:environment:)``: the map its parent
    /// handed over, with the parent's access; nil if there is none. It clears the variable, so the
    /// child's own children do not take the descriptor for theirs.
    /// - Throws: `invalidAccess` for a damaged variable; the errors of ``adoptDescriptor(_:access:capacity:leaveOpen:)``.
    public static func adoptInherited() throws(MappedFileError) -> MemoryMappedFile? {
        guard let value = system_getenv(inheritedMapVariable) else { return nil }
        _ = system_unsetenv(inheritedMapVariable)
        let parts = value.split(separator: " ")
        // 0, 1 and 2 are standard input, output and error: never a map to take over (and close).
        guard parts.count == 2, let number = Int32(parts[0]), number > 2,
            let access = MemoryMappedFileAccess.allCases.first(where: { "\($0)" == parts[1] })
        else {
            throw MappedFileError(
                .invalidAccess, operation: "adoptInherited", path: nil,
                message: "\(inheritedMapVariable) is '\(value)', not 'DESCRIPTOR ACCESS' with a descriptor above 2")
        }
        return try adoptDescriptor(number, access: access)
    }

    static func currentEnvironment() -> [String] {
        var entries: [String] = []
        var cursor = unsafe environ
        while let entry = unsafe cursor.pointee {
            unsafe entries.append(String(cString: entry))
            unsafe cursor += 1
        }
        return entries
    }
}

/// Calls `body` with a NULL-terminated array of C strings.
private func withCStrings<Result>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> Result) -> Result {
    var pointers = unsafe strings.map { unsafe strdup($0) }
    unsafe pointers.append(nil)
    defer { for index in unsafe pointers.indices { unsafe free(pointers[index]) } }
    return unsafe body(pointers)
}
