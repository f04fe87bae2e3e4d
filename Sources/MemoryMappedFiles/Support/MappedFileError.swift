import Glibc

/// An error from the environment: the file system, the kernel or a file's contents.
///
/// Every error names the operation that failed, the path (or shared-memory name)
/// it concerned, the failing system call and its errno where there was one, and a
/// sentence a person can act on. Mistakes in the calling code (an offset past a
/// view's end, say) are not errors: they trap, as an out-of-range Array index does.
///
/// The three error types of this package (this one, `RecordTableError` and `RegistryError`)
/// share one vocabulary: `code`, `operation`, `path`, `systemCall`, `errno`, `message` and
/// `cause`. A higher layer that wraps this error keeps it as its `cause`. Match codes in a
/// `catch` clause directly:
///
/// ```swift
/// do { _ = try MemoryMappedFile.createFromFile(path: path, mode: .open) }
/// catch MappedFileError.notFound { /* create it */ }
/// ```
public struct MappedFileError: MappedRecordsError, CustomDebugStringConvertible {
    /// What went wrong, in a form code can switch on.
    public enum Code: String, MappedErrorCode {
        /// The file or shared-memory object does not exist (ENOENT).
        case notFound
        /// The file or object exists already and the mode asked for a new one (EEXIST).
        case alreadyExists
        /// The caller lacks permission, or the file system is read-only (EACCES, EPERM, EROFS).
        case permissionDenied
        /// The path names a directory where a file was expected.
        case isDirectory
        /// The path names something that cannot be mapped: a FIFO, a socket, a device.
        case notRegularFile
        /// The file system or memory is full (ENOSPC, EDQUOT).
        case noSpace
        /// The capacity is negative, smaller than the file, or zero for an empty file.
        case invalidCapacity
        /// The access, mode or options do not go together, or a view asked for more access than its map allows.
        case invalidAccess
        /// A name for a shared object is empty, too long, or contains "/" or NUL.
        case invalidName
        /// The file or mapping is larger than the file system or the address space allows (EFBIG, EOVERFLOW, ENOMEM).
        case fileTooLarge
        /// The file is shorter than the part of it a view needs; another process truncated it.
        case fileTruncated
        /// A write to a stream view would go past its end.
        case endOfStream
        /// The kernel reported an I/O error (EIO); the data may not have reached the disk.
        case ioError
        /// An earlier flush of this map failed, so later flushes cannot promise anything.
        case mapFailed
        /// The process or system has too many open files (EMFILE, ENFILE).
        case tooManyOpenFiles
        /// The task was cancelled before the operation finished (an asynchronous copy).
        case cancelled
        /// Any other errno; `errno` holds it.
        case other

        /// The code of `error` (matching, `~=`, comes from ``MappedErrorCode``).
        public static func code(of error: MappedFileError) -> Self { error.code }
    }

    /// What went wrong.
    public var code: Code
    /// The library operation that failed, such as `createFromFile` or `flush`.
    public var operation: String
    /// The path or shared-memory name the operation concerned, if any.
    public var path: String?
    /// The system call that failed, such as `open` or `msync`, if one did.
    public var systemCall: String?
    /// The errno the system call reported, if one did.
    public var errno: Int32?
    /// A sentence for a person: what happened and, where it helps, what to do.
    public var message: String
    /// The error this one wraps, if it reports a failure of another error's operation.
    public var cause: (any Error & Sendable)?

    /// Creates an error; the library does this, tests and higher layers may too.
    public init(
        _ code: Code, operation: String, path: String?, systemCall: String? = nil,
        errno: Int32? = nil, message: String, cause: (any Error & Sendable)? = nil
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
        var text = operation
        if let path { text += " '\(path)'" }
        text += ": \(message)"
        if let systemCall, let errno {
            text += " (\(systemCall): \(MappedFileError.describe(errno: errno)), errno \(errno))"
        }
        return text
    }

    /// The C library's text for an errno value.
    public static func describe(errno value: Int32) -> String {
        guard let text = unsafe strerror(value) else { return "unknown error" }
        return unsafe String(cString: text)
    }
}

extension MappedFileError {
    /// An error from a failed system call; the code and the default message follow from errno.
    ///
    /// Traps for EBADF and EFAULT: they can only come from a bug in this library.
    internal static func system(
        _ systemCall: String, errno value: Int32, operation: String, path: String?, message: String? = nil
    ) -> MappedFileError {
        precondition(
            value != EBADF && value != EFAULT,
            "MemoryMappedFiles internal error: \(systemCall) failed with \(describe(errno: value)) during \(operation)")
        let code = Code(errno: value)
        return MappedFileError(
            code, operation: operation, path: path, systemCall: systemCall, errno: value,
            message: message ?? code.defaultMessage(systemCall: systemCall))
    }
}

extension MappedFileError.Code {
    /// The code for an errno value.
    init(errno value: Int32) {
        switch value {
        case ENOENT: self = .notFound
        case EEXIST: self = .alreadyExists
        case EACCES, EPERM, EROFS, ETXTBSY: self = .permissionDenied
        case EISDIR: self = .isDirectory
        case ENOSPC, EDQUOT: self = .noSpace
        case EFBIG, EOVERFLOW, ENOMEM: self = .fileTooLarge
        case EIO: self = .ioError
        case EMFILE, ENFILE: self = .tooManyOpenFiles
        case ENXIO, ENODEV: self = .notRegularFile
        case ENAMETOOLONG: self = .invalidName
        default: self = .other
        }
    }

    func defaultMessage(systemCall: String) -> String {
        switch self {
        case .notFound: return "no such file or shared-memory object"
        case .alreadyExists: return "it exists already, and the mode asked for a new one"
        case .permissionDenied:
            return "permission denied; check the file's owner and mode, and whether the file system is read-only"
        case .isDirectory: return "it is a directory, not a file"
        case .notRegularFile: return "it is not a regular file and cannot be mapped"
        case .noSpace: return "no space left on the device (or in memory, for shared memory)"
        case .fileTooLarge:
            return systemCall == "mmap"
                ? "the view does not fit in the process's free address space"
                : "the size is larger than the file system allows"
        case .ioError: return "the kernel reported an I/O error; the data may not have reached the disk"
        case .tooManyOpenFiles: return "too many open files"
        case .invalidName: return "the name is too long"
        default: return "\(systemCall) failed"
        }
    }
}

/// What every error of this package tells, whatever its layer.
///
/// `MappedFileError`, `RecordTableError` and `RegistryError` conform. Each also has a `code`
/// of its own type and a `path` (optional only in the core, where anonymous memory has none).
/// Catch `any MappedRecordsError` to handle them all the same way:
///
/// ```swift
/// catch let error as any MappedRecordsError { log(error.operation, error.errno, error.message) }
/// ```
public protocol MappedRecordsError: Error, Sendable, CustomStringConvertible {
    /// The operation that failed, such as `createFromFile`, `append` or `openExisting`.
    var operation: String { get }
    /// The system call (or LMDB function) that failed, if one did.
    var systemCall: String? { get }
    /// The errno the system call reported, if one did; never an LMDB code.
    var errno: Int32? { get }
    /// A sentence for a person.
    var message: String { get }
    /// The lower layer's error this one reports, if any, with its own code and operation.
    var cause: (any Error & Sendable)? { get }
}

/// The codes of one error type (`MappedFileError.Code`, `RecordTableError.Code`,
/// `RegistryError.Code`): the matching of a code against an error is defined here once, so that
/// `catch MappedFileError.notFound`, `catch RecordTableError.Code.corrupt` and
/// `case .notFound = error.code` work alike for every error type of the package.
///
/// A code is a case of its type's `Code` enum, plus a static member of the error type that names
/// it (`public static var notFound: Code { .notFound }`), so that `catch MappedFileError.notFound`
/// reads as it does for Foundation's errors: two lines per code, since Swift cannot derive static
/// members from an enum's cases. The codes stay enums, so a `switch` over them is checked for
/// exhaustiveness by the compiler; a client that switches exhaustively must add a case when a
/// release adds a code (the price of that check; swift-system's `Errno` is a struct to avoid it,
/// at the cost of the check). Each enum has an `other`-like code for what the package cannot
/// name, and new codes are added only in releases that say so.
public protocol MappedErrorCode: RawRepresentable, Hashable, Sendable where RawValue == String {
    /// The error type whose codes these are.
    associatedtype Failure: Error

    /// The code of `error`.
    static func code(of error: Failure) -> Self
}

extension MappedErrorCode {
    /// Matches an error of this code's type with this code: `catch MappedFileError.notFound { … }`.
    public static func ~= (code: Self, error: any Error) -> Bool {
        guard let failure = error as? Failure else { return false }
        return Self.code(of: failure) == code
    }

    /// Matches an error of a typed `throws(Failure)` with this code.
    public static func ~= (code: Self, error: Failure) -> Bool { Self.code(of: error) == code }
}

extension MappedRecordsError {
    /// The description followed by each error of the chain of causes, one per line.
    public var debugDescription: String {
        var text = description
        var next = cause
        while let error = next {
            text += "\n  caused by: \(error)"
            next = (error as? any MappedRecordsError)?.cause
        }
        return text
    }

    /// The innermost error of the chain of causes: the first failure, or `self` when there is no cause.
    public var rootCause: any Error & Sendable {
        var error: any Error & Sendable = self
        while let next = (error as? any MappedRecordsError)?.cause { error = next }
        return error
    }
}

/// Each code as a member of the error type, for `catch` clauses: `catch MappedFileError.notFound { … }`.
extension MappedFileError {
    /// Matches ``Code/notFound`` in a `catch` clause or a `switch`.
    public static var notFound: Code { .notFound }
    /// Matches ``Code/alreadyExists`` in a `catch` clause or a `switch`.
    public static var alreadyExists: Code { .alreadyExists }
    /// Matches ``Code/permissionDenied`` in a `catch` clause or a `switch`.
    public static var permissionDenied: Code { .permissionDenied }
    /// Matches ``Code/isDirectory`` in a `catch` clause or a `switch`.
    public static var isDirectory: Code { .isDirectory }
    /// Matches ``Code/notRegularFile`` in a `catch` clause or a `switch`.
    public static var notRegularFile: Code { .notRegularFile }
    /// Matches ``Code/noSpace`` in a `catch` clause or a `switch`.
    public static var noSpace: Code { .noSpace }
    /// Matches ``Code/invalidCapacity`` in a `catch` clause or a `switch`.
    public static var invalidCapacity: Code { .invalidCapacity }
    /// Matches ``Code/invalidAccess`` in a `catch` clause or a `switch`.
    public static var invalidAccess: Code { .invalidAccess }
    /// Matches ``Code/invalidName`` in a `catch` clause or a `switch`.
    public static var invalidName: Code { .invalidName }
    /// Matches ``Code/fileTooLarge`` in a `catch` clause or a `switch`.
    public static var fileTooLarge: Code { .fileTooLarge }
    /// Matches ``Code/fileTruncated`` in a `catch` clause or a `switch`.
    public static var fileTruncated: Code { .fileTruncated }
    /// Matches ``Code/endOfStream`` in a `catch` clause or a `switch`.
    public static var endOfStream: Code { .endOfStream }
    /// Matches ``Code/ioError`` in a `catch` clause or a `switch`.
    public static var ioError: Code { .ioError }
    /// Matches ``Code/mapFailed`` in a `catch` clause or a `switch`.
    public static var mapFailed: Code { .mapFailed }
    /// Matches ``Code/tooManyOpenFiles`` in a `catch` clause or a `switch`.
    public static var tooManyOpenFiles: Code { .tooManyOpenFiles }
    /// Matches ``Code/cancelled`` in a `catch` clause or a `switch`.
    public static var cancelled: Code { .cancelled }
    /// Matches ``Code/other`` in a `catch` clause or a `switch`.
    public static var other: Code { .other }
}
