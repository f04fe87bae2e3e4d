import CLMDB
import MemoryMappedFiles

/// An error from the registry, or from the map, mutex or event behind a name.
///
/// It uses the vocabulary of `MappedFileError` (MemoryMappedFiles): `code`, `operation`,
/// `path`, `systemCall`, `errno`, `message` and `cause`. An LMDB failure is kept apart from
/// an errno: `lmdbCode` holds LMDB's own return codes (`MDB_MAP_FULL`, `MDB_CORRUPTED`, …),
/// and `errno` only ever holds an errno, whichever layer reported it. A failure of the mapping
/// layer is kept whole as the `cause`.
///
/// ```swift
/// do { let map = try MemoryMappedFile.openExisting(name: "frames") }
/// catch RegistryError.notFound { /* not published yet */ }
/// ```
public struct RegistryError: MappedRecordsError, CustomDebugStringConvertible {
    /// What went wrong.
    public enum Code: String, MappedErrorCode {
        /// No live map, region, mutex or event has this name (.NET's `FileNotFoundException`).
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
        /// Permission denied: the registry directory, a backing file or shared-memory object,
        /// or more access than the name's creator gave (.NET's `UnauthorizedAccessException`).
        case permissionDenied
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

        /// The former name of ``permissionDenied``.
        @available(*, deprecated, renamed: "permissionDenied")
        public static var accessDenied: Code { .permissionDenied }

        /// The code of `error` (matching, `~=`, comes from `MappedErrorCode`).
        public static func code(of error: RegistryError) -> Self { error.code }
    }

    /// What went wrong.
    public var code: Code
    /// The registry operation, such as `openExisting`.
    public var operation: String
    /// The name, path or registry directory concerned.
    public var path: String
    /// The failing system call or LMDB function, such as `open` or `mdb_txn_commit`, if any.
    public var systemCall: String?
    /// The errno the failing call reported, if it reported one; never an LMDB code.
    public var errno: Int32?
    /// LMDB's own return code (negative, `MDB_KEYEXIST` through `MDB_BAD_DBI`), if LMDB reported one.
    public var lmdbCode: Int32?
    /// A sentence for a person.
    public var message: String
    /// The lower layer's error this one reports (a `MappedFileError`), if any.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(
        _ code: Code, operation: String, path: String, systemCall: String? = nil, errno: Int32? = nil,
        lmdbCode: Int32? = nil, message: String, cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.operation = operation
        self.path = path
        self.systemCall = systemCall
        self.errno = errno
        self.lmdbCode = lmdbCode
        self.message = message
        self.cause = cause
    }

    /// The former name of ``path``.
    @available(*, deprecated, renamed: "path")
    public var subject: String { path }

    /// The former name of ``systemCall``.
    @available(*, deprecated, renamed: "systemCall")
    public var call: String? { systemCall }

    /// One line: `operation 'path': message (systemCall: strerror, errno N)`, or
    /// `(mdb_function: LMDB's text, LMDB code N)` for an LMDB failure.
    public var description: String {
        var text = "\(operation) '\(path)': \(message)"
        if let systemCall, let errno {
            text += " (\(systemCall): \(MappedFileError.describe(errno: errno)), errno \(errno))"
        } else if let systemCall, let lmdbCode {
            text +=
                unsafe " (\(systemCall): \(mdb_strerror(lmdbCode).map { unsafe String(cString: $0) } ?? "unknown LMDB error"), LMDB code \(lmdbCode))"
        }
        return text
    }

    /// The registry error for a failure of the mapping layer, which it keeps as its cause.
    init(_ error: MappedFileError, operation: String, path: String) {
        let code: Code
        switch error.code {
        case .notFound: code = .backingObjectMissing
        case .permissionDenied: code = .permissionDenied
        case .noSpace: code = .noSpace
        case .invalidName: code = .invalidName
        case .invalidCapacity: code = .invalidCapacity
        case .invalidAccess: code = .invalidAccess
        default: code = .ioError
        }
        self.init(
            code, operation: operation, path: path, systemCall: error.systemCall, errno: error.errno,
            message: error.message, cause: error)
    }
}

/// Each code as a member of the error type, for `catch` clauses: `catch RegistryError.notFound { … }`.
extension RegistryError {
    /// Matches ``Code/notFound`` in a `catch` clause or a `switch`.
    public static var notFound: Code { .notFound }
    /// Matches ``Code/nameExists`` in a `catch` clause or a `switch`.
    public static var nameExists: Code { .nameExists }
    /// Matches ``Code/invalidName`` in a `catch` clause or a `switch`.
    public static var invalidName: Code { .invalidName }
    /// Matches ``Code/invalidCapacity`` in a `catch` clause or a `switch`.
    public static var invalidCapacity: Code { .invalidCapacity }
    /// Matches ``Code/invalidAccess`` in a `catch` clause or a `switch`.
    public static var invalidAccess: Code { .invalidAccess }
    /// Matches ``Code/wrongKind`` in a `catch` clause or a `switch`.
    public static var wrongKind: Code { .wrongKind }
    /// Matches ``Code/permissionDenied`` in a `catch` clause or a `switch`.
    public static var permissionDenied: Code { .permissionDenied }
    /// Matches ``Code/corrupt`` in a `catch` clause or a `switch`.
    public static var corrupt: Code { .corrupt }
    /// Matches ``Code/backingObjectMissing`` in a `catch` clause or a `switch`.
    public static var backingObjectMissing: Code { .backingObjectMissing }
    /// Matches ``Code/noSpace`` in a `catch` clause or a `switch`.
    public static var noSpace: Code { .noSpace }
    /// Matches ``Code/notShareable`` in a `catch` clause or a `switch`.
    public static var notShareable: Code { .notShareable }
    /// Matches ``Code/ioError`` in a `catch` clause or a `switch`.
    public static var ioError: Code { .ioError }
}
