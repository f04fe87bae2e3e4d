import MemoryMappedFiles

/// An error from a table's file or its environment.
///
/// Like `MappedFileError` (MemoryMappedFiles) it names the operation, the path, and the system
/// call and errno where there was one, with the same field names. A failure of the mapping
/// layer (or of the registry, for a table opened by name) is kept as the `cause`. Mistakes in
/// code (an index out of range, appending to a read-only table) trap instead.
///
/// ```swift
/// do { let table = try RecordTable<Trade>.open(path: path) }
/// catch RecordTableError.writerActive { /* open .readOnly, or wait for the writer */ }
/// ```
public struct RecordTableError: MappedRecordsError, CustomDebugStringConvertible {
    /// What went wrong.
    public enum Code: String, MappedErrorCode {
        /// The file does not exist.
        case notFound
        /// `create` found a file at the path.
        case alreadyExists
        /// Permission denied, or a read-only file system.
        case permissionDenied
        /// The path is a directory or not a regular file.
        case isDirectory
        /// The disk is full; the table keeps its old count and capacity.
        case noSpace
        /// The file is not a record table: an empty file, or a foreign one.
        case notATable
        /// The file was written on a machine of the other byte order.
        case byteOrderMismatch
        /// The file has a format version (or features) this library does not read.
        case unsupportedVersion
        /// The header or the commit slots are damaged, or the count points past the file's end.
        case corrupt
        /// The file's schema differs from the Swift record type's.
        case schemaMismatch
        /// Another process has the table open for writing.
        case writerActive
        /// Another process truncated the file while it was open.
        case truncated
        /// An argument from outside the code (a schema, metadata) is not valid.
        case invalidArgument
        /// Another file took the table's path (a migration) while it was open: open the path again.
        case replaced
        /// A migration would lose data: a stored value does not fit its narrower new field.
        case valueDoesNotFit
        /// An I/O error or another errno; `errno` holds it.
        case ioError
        /// The table is sealed: its series went on to the next file, so it takes no more records.
        case sealed
        /// A follower of a series fell behind its retention: the file it needed was removed.
        case fellBehind

        /// The code of `error` (matching, `~=`, comes from `MappedErrorCode`).
        public static func code(of error: RecordTableError) -> Self { error.code }
    }

    /// What went wrong.
    public var code: Code
    /// The table operation, such as `open` or `append`.
    public var operation: String
    /// The table's path.
    public var path: String
    /// The failing system call, if any.
    public var systemCall: String?
    /// Its errno, if any.
    public var errno: Int32?
    /// A sentence for a person.
    public var message: String
    /// The lower layer's error this one reports (a `MappedFileError`, a `RegistryError`), if any.
    public var cause: (any Error & Sendable)?

    /// Creates an error.
    public init(
        _ code: Code, operation: String, path: String, systemCall: String? = nil, errno: Int32? = nil,
        message: String, cause: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.operation = operation
        self.path = path
        self.systemCall = systemCall
        self.errno = errno
        self.message = message
        self.cause = cause
    }

    /// One line: `operation 'path': message (systemCall: strerror, errno N)`.
    public var description: String {
        var text = "\(operation) '\(path)': \(message)"
        if let systemCall, let errno {
            text += " (\(systemCall): \(MappedFileError.describe(errno: errno)), errno \(errno))"
        }
        return text
    }

    /// The table error for a failure of the mapping layer.
    init(_ error: MappedFileError, operation: String, path: String) {
        let code: Code
        switch error.code {
        case .notFound: code = .notFound
        case .alreadyExists: code = .alreadyExists
        case .permissionDenied: code = .permissionDenied
        case .isDirectory, .notRegularFile: code = .isDirectory
        case .noSpace: code = .noSpace
        case .fileTruncated: code = .truncated
        case .invalidCapacity: code = .notATable  // an empty file
        default: code = .ioError
        }
        self.init(
            code, operation: operation, path: path, systemCall: error.systemCall, errno: error.errno,
            message: code == .notATable ? "the file is empty, not a record table" : error.message, cause: error)
    }

    init(_ problem: FormatProblem, operation: String, path: String) {
        let code: Code
        switch problem.kind {
        case .notATable: code = .notATable
        case .byteOrderMismatch: code = .byteOrderMismatch
        case .unsupportedVersion: code = .unsupportedVersion
        case .corrupt: code = .corrupt
        }
        self.init(code, operation: operation, path: path, message: problem.message)
    }
}

/// Each code as a member of the error type, for `catch` clauses: `catch RecordTableError.notFound { … }`.
extension RecordTableError {
    /// Matches ``Code/notFound`` in a `catch` clause or a `switch`.
    public static var notFound: Code { .notFound }
    /// Matches ``Code/alreadyExists`` in a `catch` clause or a `switch`.
    public static var alreadyExists: Code { .alreadyExists }
    /// Matches ``Code/permissionDenied`` in a `catch` clause or a `switch`.
    public static var permissionDenied: Code { .permissionDenied }
    /// Matches ``Code/isDirectory`` in a `catch` clause or a `switch`.
    public static var isDirectory: Code { .isDirectory }
    /// Matches ``Code/noSpace`` in a `catch` clause or a `switch`.
    public static var noSpace: Code { .noSpace }
    /// Matches ``Code/notATable`` in a `catch` clause or a `switch`.
    public static var notATable: Code { .notATable }
    /// Matches ``Code/byteOrderMismatch`` in a `catch` clause or a `switch`.
    public static var byteOrderMismatch: Code { .byteOrderMismatch }
    /// Matches ``Code/unsupportedVersion`` in a `catch` clause or a `switch`.
    public static var unsupportedVersion: Code { .unsupportedVersion }
    /// Matches ``Code/corrupt`` in a `catch` clause or a `switch`.
    public static var corrupt: Code { .corrupt }
    /// Matches ``Code/schemaMismatch`` in a `catch` clause or a `switch`.
    public static var schemaMismatch: Code { .schemaMismatch }
    /// Matches ``Code/writerActive`` in a `catch` clause or a `switch`.
    public static var writerActive: Code { .writerActive }
    /// Matches ``Code/truncated`` in a `catch` clause or a `switch`.
    public static var truncated: Code { .truncated }
    /// Matches ``Code/invalidArgument`` in a `catch` clause or a `switch`.
    public static var invalidArgument: Code { .invalidArgument }
    /// Matches ``Code/replaced`` in a `catch` clause or a `switch`.
    public static var replaced: Code { .replaced }
    /// Matches ``Code/valueDoesNotFit`` in a `catch` clause or a `switch`.
    public static var valueDoesNotFit: Code { .valueDoesNotFit }
    /// Matches ``Code/ioError`` in a `catch` clause or a `switch`.
    public static var ioError: Code { .ioError }
    /// Matches ``Code/sealed`` in a `catch` clause or a `switch`.
    public static var sealed: Code { .sealed }
    /// Matches ``Code/fellBehind`` in a `catch` clause or a `switch`.
    public static var fellBehind: Code { .fellBehind }
}
