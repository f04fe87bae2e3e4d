import ArgumentParser
import Glibc
import MemoryMappedFiles
import RecordTable

/// What `dump` reads records from: a record table, or a raw struct file read through a layout.
protocol RecordSource: AnyObject {
    /// The fields, stride and alignment.
    var schema: RecordSchema { get }
    /// The number of whole records.
    var count: Int { get }
    /// Whether numbers are stored big-endian.
    var bigEndian: Bool { get }
    /// Where record `index` starts in the file.
    func fileOffset(ofRecord index: Int) -> Int
    /// Calls `body` with the bytes of record `index`, without copying.
    func withRecordBytes<Result>(at index: Int, _ body: (RawSpan) -> Result) -> Result
    /// Paging advice for records in `range`.
    func advise(_ advice: MappingAdvice, records range: Range<Int>)
}

extension DynamicRecordTable: RecordSource {
    var bigEndian: Bool { false }
    func fileOffset(ofRecord index: Int) -> Int { dataOffset + index * schema.stride }
}

/// A file of records without a header, such as the seed's `ExtremelyLargeImage.data`
/// (4 × Int16 per pixel), mapped read-only.
final class RawStructFile: RecordSource {
    let schema: RecordSchema
    let count: Int
    let bigEndian: Bool
    let offset: Int
    /// The mapping of the records, from `offset` to the last whole record; nil when there are none.
    private let view: MappedViewAccessor?
    private let start: UnsafeRawPointer?

    private init(schema: RecordSchema, count: Int, bigEndian: Bool, offset: Int, view: consuming MappedViewAccessor?) {
        self.schema = schema
        self.count = count
        self.bigEndian = bigEndian
        self.offset = offset
        // SAFETY: the view stays mapped as long as this object holds it; `start` is its first byte.
        start = view?.withUnsafeMutableBytes { UnsafeRawPointer($0.baseAddress!) }
        self.view = view
    }

    /// Maps `path` read-only. Reports a missing or unreadable file and exits with status 3.
    static func open(_ path: String, schema: RecordSchema, offset: Int, bigEndian: Bool) throws -> RawStructFile {
        do throws(MappedFileError) {
            let map = try MemoryMappedFile.createFromFile(path: path, mode: .open, access: .read)
            let size = map.capacity
            if offset > size { complain("note: the offset \(offset) is past the end of \(path) (\(size) bytes)") }
            let count = max(0, size - offset) / schema.stride
            let extra = max(0, size - offset - count * schema.stride)
            if extra > 0 {
                complain(
                    "note: \(path) has \(extra) bytes after the last whole record of \(schema.stride) bytes; they are not shown"
                )
            }
            let view = count == 0 ? nil : try map.makeViewAccessor(offset: offset, length: count * schema.stride)
            try map.close(flush: false)
            return RawStructFile(schema: schema, count: count, bigEndian: bigEndian, offset: offset, view: view)
        } catch  where error.code == .invalidCapacity {
            // With capacity 0, the only invalid capacity is an empty file: no records.
            return RawStructFile(schema: schema, count: 0, bigEndian: bigEndian, offset: offset, view: nil)
        } catch {
            complain(error.description)
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
    }

    func fileOffset(ofRecord index: Int) -> Int { offset + index * schema.stride }

    func advise(_ advice: MappingAdvice, records range: Range<Int>) {
        let records = range.clamped(to: 0..<count)
        guard !records.isEmpty else { return }
        view?.advise(advice, range: records.lowerBound * schema.stride..<records.upperBound * schema.stride)
    }

    func withRecordBytes<Result>(at index: Int, _ body: (RawSpan) -> Result) -> Result {
        precondition(index >= 0 && index < count, "RawStructFile: record \(index) is out of range for \(count) records")
        // SAFETY: index < count, and the view covers count whole records from `start`.
        return body(RawSpan(_unsafeStart: start! + index * schema.stride, byteCount: schema.stride))
    }
}
