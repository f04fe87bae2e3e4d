import ArgumentParser
import Glibc
import MemoryMappedFiles
import RecordTable

struct Import: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Append the rows of a CSV file (with a header row) to a table, all or nothing.",
        discussion: """
            Columns are matched to fields by the header's names; fields without a column are zero.
            Every row is checked first: on any bad row, the tool lists the bad lines and the table keeps
            its old records and count. `dump --format csv` writes what `import` reads.
            Examples:
              mrec create points.mrec --schema 'id:i64,x:f64,y:f64,flags:i32,tag:i32'
              mrec import points.mrec --csv points.csv
              mrec dump --format csv old.mrec | mrec import new.mrec --csv /dev/stdin
            """)

    @Argument(help: "The table to append to (see 'mrec create').") var file: String
    @Option(help: "The CSV file; its first row names the fields.") var csv: String
    @Flag(help: "Skip columns whose header names no field, instead of refusing the file.") var ignoreExtraColumns =
        false

    /// The most bad rows listed before giving up.
    static let reportedProblems = 20

    func run() throws {
        let table = try openTable(file, access: .readWrite)
        let schema = table.schema
        let oldCount = table.count
        let input = try CSVFile.open(csv)
        var reader = CSVReader(input.bytes)
        var problems: [String] = []
        func problem(_ line: Int, _ text: String) { problems.append("\(csv):\(line): \(text)") }

        // The header names the columns; a column that is no field is skipped when asked, and
        // otherwise refused before any row is read (one clear error, not one per row).
        var columns: [RecordField?] = []
        switch reader.nextRow() {
        case .none:
            complain("\(csv): the file is empty; it needs a header row naming the fields")
            throw ExitCode(ExitStatus.fileProblem.rawValue)
        case .failure(let failure):
            problem(failure.line, failure.message)
        case .success(let header):
            for name in header.cells {
                guard let field = schema.field(named: name) else {
                    if !ignoreExtraColumns {
                        problem(
                            header.line,
                            "the column '\(name)' is not a field; the fields are \(schema.fields.map(\.name).joined(separator: ", ")) (--ignore-extra-columns skips such columns)"
                        )
                    }
                    columns.append(nil)
                    continue
                }
                if columns.contains(field) { problem(header.line, "the column '\(name)' appears twice") }
                columns.append(field)
            }
        }
        guard problems.isEmpty else {
            for line in problems { complain(line) }
            complain("nothing was imported; \(file) keeps its \(oldCount) records")
            throw ExitCode(ExitStatus.fileProblem.rawValue)
        }

        // Every row is staged past the end; the count moves only if all of them are good.
        var record = [UInt8](repeating: 0, count: schema.stride)
        var staged = 0
        while problems.count < Self.reportedProblems, let next = reader.nextRow() {
            let row: CSVRow
            switch next {
            case .failure(let failure): problem(failure.line, failure.message); continue
            case .success(let value): row = value
            }
            guard row.cells.count == columns.count else {
                problem(row.line, "\(row.cells.count) values, but the header has \(columns.count) columns")
                continue
            }
            var rowIsGood = true
            record.withUnsafeMutableBytes { bytes in
                bytes.initializeMemory(as: UInt8.self, repeating: 0)
                for (column, cell) in zip(columns, row.cells) {
                    guard let field = column else { continue }
                    if let trouble = field.store(cell, into: bytes) {
                        problem(
                            row.line,
                            "field '\(field.name)' (\(field.type.name)\(field.count == 1 ? "" : "[\(field.count)]")): \(trouble)"
                        )
                        rowIsGood = false
                    }
                }
            }
            guard rowIsGood, problems.isEmpty else { continue }
            do { try table.stage(bytes: record.span.bytes, position: staged) } catch {
                complain(error.description)
                complain("nothing was imported; \(file) keeps its \(oldCount) records")
                throw ExitCode(error.exitStatus.rawValue)
            }
            staged += 1
        }
        guard problems.isEmpty else {
            for line in problems { complain(line) }
            if problems.count >= Self.reportedProblems { complain("(stopped after \(Self.reportedProblems) problems)") }
            complain("nothing was imported; \(file) keeps its \(oldCount) records")
            throw ExitCode(ExitStatus.fileProblem.rawValue)
        }
        do {
            try table.publishStaged(staged)
            try table.commit()
            try table.close()
        } catch {
            complain(error.description)
            throw ExitCode(error.exitStatus.rawValue)
        }
        let missing = schema.fields.filter { !columns.contains($0) }.map(\.name)
        let skipped = columns.filter { $0 == nil }.count
        var out = Output()
        out.line(
            "\(file): imported \(staged) records from \(csv); the table has \(oldCount + staged) records"
                + (missing.isEmpty ? "" : " (not in the CSV, so zero: \(missing.joined(separator: ", ")))")
                + (skipped == 0 ? "" : "; \(skipped) column\(skipped == 1 ? "" : "s") skipped"))
        out.flush()
    }
}

// MARK: - Reading CSV

/// A CSV file mapped read-only, or read into memory when it is a pipe.
final class CSVFile {
    private let view: MappedViewAccessor?
    private let contents: UnsafeMutableRawBufferPointer?
    /// The file's bytes, valid while this object lives.
    let bytes: UnsafeRawBufferPointer

    private init(view: consuming MappedViewAccessor?, contents: UnsafeMutableRawBufferPointer? = nil) {
        // SAFETY: the view (or the buffer) stays alive while this object holds it.
        bytes =
            contents.map { UnsafeRawBufferPointer($0) }
            ?? view?.withUnsafeMutableBytes { UnsafeRawBufferPointer($0) }
            ?? UnsafeRawBufferPointer(start: nil, count: 0)
        self.contents = contents
        self.view = view
    }

    deinit { contents?.deallocate() }

    /// Maps `path`; an empty file has no bytes; a pipe (`--csv /dev/stdin`) is read whole.
    /// Reports an unreadable file and exits with status 3.
    static func open(_ path: String) throws -> CSVFile {
        do throws(MappedFileError) {
            let map = try MemoryMappedFile.createFromFile(path: path, mode: .open, access: .read)
            let view = try map.makeViewAccessor()
            try map.close(flush: false)
            return CSVFile(view: view)
        } catch  where error.code == .invalidCapacity {
            return CSVFile(view: nil)  // with capacity 0 this means an empty file
        } catch  where error.code == .notRegularFile {
            return try CSVFile(view: nil, contents: readWhole(path))
        } catch {
            complain(error.description)
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
    }

    /// Reads a pipe or another stream to its end.
    private static func readWhole(_ path: String) throws -> UnsafeMutableRawBufferPointer {
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            complain("\(path): cannot open it: \(String(cString: strerror(errno)))")
            throw ExitCode(ExitStatus.cannotRead.rawValue)
        }
        defer { close(descriptor) }
        var buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 1)
        var used = 0
        while true {
            if used == buffer.count {
                let larger = UnsafeMutableRawBufferPointer.allocate(byteCount: buffer.count * 2, alignment: 1)
                larger.copyMemory(from: UnsafeRawBufferPointer(buffer))
                buffer.deallocate()
                buffer = larger
            }
            // SAFETY: used < buffer.count, so the read stays inside the buffer.
            let got = read(descriptor, buffer.baseAddress! + used, buffer.count - used)
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else {
                complain("\(path): cannot read it: \(String(cString: strerror(errno)))")
                buffer.deallocate()
                throw ExitCode(ExitStatus.cannotRead.rawValue)
            }
            if got == 0 { break }
            used += got
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[..<used])
    }
}

/// One row: the line it starts on, and its cells with quotes removed.
struct CSVRow {
    var line: Int
    var cells: [String]
}

/// A CSV syntax problem on a line.
struct CSVProblem: Error {
    var line: Int
    var message: String
}

/// Reads RFC 4180 rows: cells separated by commas, rows by LF or CRLF; a quoted cell may hold
/// commas, line breaks and doubled quotes. Blank lines are skipped.
struct CSVReader {
    let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var line = 1

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// The next row, nil at the end.
    mutating func nextRow() -> Result<CSVRow, CSVProblem>? {
        while position < bytes.count && (bytes[position] == 0x0A || bytes[position] == 0x0D) {
            if bytes[position] == 0x0A { line += 1 }
            position += 1
        }
        guard position < bytes.count else { return nil }
        let start = line
        var cells: [String] = []
        var cell: [UInt8] = []
        while true {
            if position < bytes.count && bytes[position] == 0x22 {  // a quoted cell
                position += 1
                while true {
                    guard position < bytes.count else {
                        return .failure(
                            CSVProblem(line: start, message: "a quoted value is not closed before the end of the file"))
                    }
                    let byte = bytes[position]
                    position += 1
                    if byte == 0x22 {
                        guard position < bytes.count && bytes[position] == 0x22 else { break }
                        position += 1
                    }
                    if byte == 0x0A { line += 1 }
                    cell.append(byte)
                }
                if position < bytes.count && ![0x2C, 0x0A, 0x0D].contains(bytes[position]) {
                    skipRestOfRow()
                    return .failure(
                        CSVProblem(
                            line: start, message: "text after a closing quote; write a quote inside a value as \"\""))
                }
            } else {
                while position < bytes.count && ![0x2C, 0x0A, 0x0D].contains(bytes[position]) {
                    cell.append(bytes[position])
                    position += 1
                }
            }
            cells.append(String(decoding: cell, as: UTF8.self))
            cell.removeAll(keepingCapacity: true)
            if position < bytes.count && bytes[position] == 0x2C {
                position += 1
                continue
            }
            if position < bytes.count && bytes[position] == 0x0D { position += 1 }
            if position < bytes.count && bytes[position] == 0x0A { position += 1; line += 1 }
            return .success(CSVRow(line: start, cells: cells))
        }
    }

    private mutating func skipRestOfRow() {
        while position < bytes.count && bytes[position] != 0x0A { position += 1 }
    }
}

// MARK: - Text to field bytes

extension RecordField {
    /// Stores `text` as this field's little-endian bytes in `record`; returns what is wrong, or nil.
    /// Arrays are written `[1,2,3]`, `bytes` in hex, `char` as text, as `dump` prints them.
    func store(_ text: String, into record: UnsafeMutableRawBufferPointer) -> String? {
        switch type {
        case .char:
            let utf8 = Array(text.utf8)
            guard utf8.count <= count else {
                return "'\(text)' is \(utf8.count) bytes of UTF-8; the field holds \(count)"
            }
            guard !utf8.contains(0) else { return "the text holds a NUL byte" }
            for (index, byte) in utf8.enumerated() { record[offset + index] = byte }
            return nil
        case .bytes:
            let digits = Array(text.utf8)
            guard digits.count == 2 * count, let values = hexBytes(digits) else {
                return "'\(text)' is not \(count) bytes in hex (\(2 * count) digits)"
            }
            for (index, byte) in values.enumerated() { record[offset + index] = byte }
            return nil
        default:
            guard count > 1 else { return storeElement(Substring(text), at: offset, into: record) }
            guard text.first == "[", text.last == "]" else { return "'\(text)' is not an array like [1,2,3]" }
            let elements = text.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            guard elements.count == count else { return "'\(text)' has \(elements.count) elements, not \(count)" }
            for (index, element) in elements.enumerated() {
                if let trouble = storeElement(element, at: offset + index * type.size, into: record) { return trouble }
            }
            return nil
        }
    }

    private func storeElement(
        _ text: Substring, at position: Int, into record: UnsafeMutableRawBufferPointer
    ) -> String? {
        func put<T: FixedWidthInteger>(_ value: T) {
            // SAFETY: the schema keeps every field inside the stride, which is the record's size.
            record.storeBytes(of: value.littleEndian, toByteOffset: position, as: T.self)
        }
        func signed<T: FixedWidthInteger & SignedInteger>(_: T.Type) -> String? {
            guard let value = Int64(text), let narrow = T(exactly: value) else {
                return "'\(text)' is not an integer from \(T.min) to \(T.max)"
            }
            put(narrow)
            return nil
        }
        func unsigned<T: FixedWidthInteger & UnsignedInteger>(_: T.Type) -> String? {
            guard let value = UInt64(text), let narrow = T(exactly: value) else {
                return "'\(text)' is not an integer from 0 to \(T.max)"
            }
            put(narrow)
            return nil
        }
        switch type {
        case .int8: return signed(Int8.self)
        case .int16: return signed(Int16.self)
        case .int32: return signed(Int32.self)
        case .int64: return signed(Int64.self)
        case .uint8: return unsigned(UInt8.self)
        case .uint16: return unsigned(UInt16.self)
        case .uint32: return unsigned(UInt32.self)
        case .uint64: return unsigned(UInt64.self)
        case .float32:
            guard let value = Float(text) else { return "'\(text)' is not a number" }
            if let problem = Self.outOfRange(value, text, "f32", largest: "3.4028235e+38") { return problem }
            put(value.bitPattern)
        case .float64:
            guard let value = Double(text) else { return "'\(text)' is not a number" }
            if let problem = Self.outOfRange(value, text, "f64", largest: "1.7976931348623157e+308") { return problem }
            put(value.bitPattern)
        case .bool:
            switch text {
            case "true", "1": put(UInt8(1))
            case "false", "0": put(UInt8(0))
            default: return "'\(text)' is not true, false, 1 or 0"
            }
        case .bytes, .char: preconditionFailure("store(_:into:) handles bytes and char")
        }
        return nil
    }
}

extension RecordField {
    /// Why `value`, parsed from `text`, is out of the type's range: an infinity that the text
    /// does not spell out (`1e400` is too large, not infinite), or nil.
    static func outOfRange<F: BinaryFloatingPoint>(
        _ value: F, _ text: Substring, _ type: String, largest: String
    )
        -> String?
    {
        guard value.isInfinite else { return nil }
        let spelled = text.lowercased().trimmingCharacters(in: "+-")
        guard spelled != "inf" && spelled != "infinity" else { return nil }
        return "'\(text)' is beyond \(type)'s range (its largest finite value is \(largest)); write inf for infinity"
    }
}

extension String {
    /// This text without leading and trailing characters from `set`.
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}

/// Pairs of hex digits as bytes, or nil if a digit is not hex.
private func hexBytes(_ digits: [UInt8]) -> [UInt8]? {
    func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
    var result: [UInt8] = []
    for index in Swift.stride(from: 0, to: digits.count, by: 2) {
        guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
        result.append(high << 4 | low)
    }
    return result
}
