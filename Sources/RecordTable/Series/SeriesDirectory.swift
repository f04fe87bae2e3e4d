// A series on disk (docs/FORMAT.md, "Series"): a directory of ordinary tables named by number,
// `00000001.mrec`, `00000002.mrec`, …, each sealed, when it is full, with the number of the next.

import Glibc
import MemoryMappedFiles

/// The names and metadata keys of a series, declared once.
enum SeriesFormat {
    /// File numbers are written with at least this many digits.
    static let digits = 8
    static let fileExtension = ".mrec"
    /// Metadata of every file of a series: when it was created, in whole seconds since 1970 (UTC).
    static let createdKey = "mappedrecords.series.created"
    /// Metadata of a file of a time-rolled series: the start of its cycle (hour or day), in
    /// whole seconds since 1970.
    static let cycleKey = "mappedrecords.series.cycle"

    /// `00000042.mrec` for 42.
    static func fileName(_ number: Int) -> String {
        let digits = String(number)
        return String(repeating: "0", count: max(0, Self.digits - digits.count)) + digits + fileExtension
    }

    /// The number a series file's name gives (at least 8 digits, then `.mrec`), or nil for any
    /// other name: temporary files, hidden files, files of other tools.
    static func number(ofFileNamed name: String) -> Int? {
        guard name.hasSuffix(fileExtension) else { return nil }
        let digits = name.dropLast(fileExtension.count)
        guard digits.count >= Self.digits, digits.count <= 15, digits.allSatisfy({ $0 >= "0" && $0 <= "9" }),
            let number = Int(digits), number >= 1
        else { return nil }
        return number
    }

    /// Seconds since 1970, UTC.
    static func now() -> Int64 {
        #if MAPPED_RECORDS_FAULT_INJECTION
        if let text = system_getenv("MAPPED_RECORDS_TEST_CLOCK"), let seconds = Int64(text) { return seconds }
        #endif
        var time = timespec()
        unsafe clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec)
    }

}

/// A series' directory.
struct SeriesDirectory {
    let path: String

    func filePath(_ number: Int) -> String { path + "/" + SeriesFormat.fileName(number) }

    /// The numbers of the series' files, in order.
    func numbers(operation: String) throws(RecordTableError) -> [Int] {
        guard let stream = unsafe opendir(path) else {
            throw Self.error(errno, operation: operation, path: path, call: "opendir")
        }
        defer { unsafe closedir(stream) }
        var numbers: [Int] = []
        while let entry = unsafe readdir(stream) {
            let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) {
                unsafe String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let number = SeriesFormat.number(ofFileNamed: name) { numbers.append(number) }
        }
        return numbers.sorted()
    }

    /// Creates the directory if there is none (mode 0755, less the umask).
    func makeIfMissing() throws(RecordTableError) {
        if unsafe mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw Self.error(errno, operation: "open", path: path, call: "mkdir")
        }
    }

    /// Removes file `number`; a file already gone is no error (another appender removed it).
    func remove(_ number: Int) throws(RecordTableError) {
        let file = filePath(number)
        if unsafe unlink(file) != 0 && errno != ENOENT {
            throw Self.error(errno, operation: "retention", path: file, call: "unlink")
        }
    }

    static func error(_ code: Int32, operation: String, path: String, call: String) -> RecordTableError {
        let kind: RecordTableError.Code
        switch code {
        case ENOENT: kind = .notFound
        case EACCES, EPERM, EROFS: kind = .permissionDenied
        case ENOSPC, EDQUOT: kind = .noSpace
        case ENOTDIR: kind = .invalidArgument
        default: kind = .ioError
        }
        let message =
            switch kind {
            case .notFound: "the series' directory does not exist"
            case .permissionDenied: "permission denied"
            case .invalidArgument: "the path is not a directory"
            default: "the series' directory could not be used"
            }
        return RecordTableError(kind, operation: operation, path: path, systemCall: call, errno: code, message: message)
    }
}

/// The files of a series, for tools that read them without a record type (`mrec`): their
/// numbers and paths. Each file opens as a ``DynamicRecordTable``; its
/// ``DynamicRecordTable/sealedSuccessor`` names the file that follows it.
public enum SeriesFiles {
    /// The numbers of the series' files in `directory`, oldest first.
    /// - Throws: `notFound`, `permissionDenied`, or `invalidArgument` for a path that is not a directory.
    public static func numbers(inDirectory directory: String) throws(RecordTableError) -> [Int] {
        try SeriesDirectory(path: directory).numbers(operation: "open")
    }

    /// The name of file `number` in a series' directory, such as `00000042.mrec`.
    public static func name(ofFile number: Int) -> String { SeriesFormat.fileName(number) }

    /// The path of file `number` of the series in `directory`.
    public static func path(ofFile number: Int, inDirectory directory: String) -> String {
        SeriesDirectory(path: directory).filePath(number)
    }
}
