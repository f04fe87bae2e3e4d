import MemoryMappedFiles

/// An error from the registry, or from the map or mutex behind a name.
public struct RegistryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Hashable, Sendable {
        /// No live map, region or mutex has this name (.NET's `FileNotFoundException`).
        case notFound
        /// `createNew` found a live entry with this name.
        case nameExists
        /// A name is empty, longer than `Registry.maximumNameLength` bytes, or contains NUL.
        case invalidName
        /// The capacity is not above zero, or does not fit the object.
        case invalidCapacity
        /// The access or options do not go together (write-only memory, unknown option bits).
        case invalidAccess
        /// The name belongs to another kind of object (a mutex, not a map).
        case wrongKind
        /// Permission denied: the registry directory, a backing file or shared-memory object.
        case accessDenied
        /// The registry's files are damaged or not an LMDB environment.
        case corrupt
        /// The backing file or shared-memory object of a name is gone.
        case backingObjectMissing
        /// No space left for the registry or a new object.
        case noSpace
        /// A descriptor's file has no path another process could open (a memfd, a deleted file).
        case notShareable
        /// Any other failure of LMDB or a system call.
        case ioError
    }

    /// What went wrong.
    public var code: Code
    /// The registry operation, such as `openExisting`.
    public var operation: String
    /// The name, path or directory concerned.
    public var subject: String
    /// The failing call (a system call or an LMDB function), if any.
    public var call: String?
    /// Its errno or LMDB error code, if any.
    public var errno: Int32?
    /// A sentence for a person.
    public var message: String

    /// Creates an error.
    public init(
        _ code: Code, operation: String, subject: String, call: String? = nil, errno: Int32? = nil, message: String
    ) {
        self.code = code
        self.operation = operation
        self.subject = subject
        self.call = call
        self.errno = errno
        self.message = message
    }

    /// One line: `operation 'subject': message (call, code N)`.
    public var description: String {
        var text = "\(operation) '\(subject)': \(message)"
        if let call, let errno { text += " (\(call), error \(errno))" }
        return text
    }

    /// The registry error for a failure of the mapping layer.
    init(_ error: MappedFileError, operation: String, subject: String) {
        let code: Code
        switch error.code {
        case .notFound: code = .backingObjectMissing
        case .permissionDenied: code = .accessDenied
        case .noSpace: code = .noSpace
        case .invalidName: code = .invalidName
        case .invalidCapacity: code = .invalidCapacity
        case .invalidAccess: code = .invalidAccess
        default: code = .ioError
        }
        self.init(
            code, operation: operation, subject: subject, call: error.systemCall, errno: error.errno,
            message: error.message)
    }
}
