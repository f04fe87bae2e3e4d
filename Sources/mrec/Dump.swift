import ArgumentParser
import Glibc
import MemoryMappedFiles
import RecordTable

/// Set by `SIGINT` while `dump --follow` waits.
nonisolated(unsafe) var interrupted: sig_atomic_t = 0

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print records of a table, or of a raw struct file with --layout.",
        discussion: """
            Examples:
              mrec dump points.mrec
              mrec dump --format csv --fields id,x --range 100..<200 points.mrec
              mrec dump --format jsonl --limit 10 points.mrec
              mrec dump --follow points.mrec          (like tail -f; Ctrl-C ends it)
              mrec dump --follow trades/              (a series, across its rolls)
              mrec dump --layout 'r:i16,g:i16,b:i16,a:i16' --limit 4 image.data
              mrec dump --layout 'id:u32,x:f64@8' --stride 16 --offset 64 --big-endian a.bin
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, jsonl, hex }

    @Argument(help: "The table file, a series' directory, or a raw struct file with --layout.") var file: String
    @Option(help: "table, csv, jsonl or hex.") var format: Format = .table
    @Option(help: "Records to print: 100..<200, 100...199, 100.. or ..<50.") var range: String?
    @Option(help: "Fields to print, comma-separated.") var fields: String?
    @Option(help: "At most this many records.") var limit: Int?
    @Flag(help: "Leave out the header line.") var noHeader = false
    @Flag(help: "Keep printing records as a writer appends them (tables only).") var follow = false
    @Option(
        help:
            "Read a raw struct file with this layout, such as 'id:i64,x:f64,name:char[16]'; fields follow C alignment unless given @offset."
    )
    var layout: String?
    @Option(help: "With --layout: where the first record starts in the file.") var offset: Int = 0
    @Option(help: "With --layout: the distance between records (default: the layout's size).") var stride: Int?
    @Flag(help: "With --layout: the file's numbers are big-endian.") var bigEndian = false

    func validate() throws {
        if layout == nil && (offset != 0 || stride != nil || bigEndian) {
            throw ValidationError("--offset, --stride and --big-endian describe a raw file; give --layout too")
        }
        if layout != nil && follow {
            throw ValidationError("--follow needs a table; a raw file has no count to follow")
        }
        if offset < 0 { throw ValidationError("--offset must not be negative") }
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    func run() throws {
        if follow { signal(SIGINT) { _ in interrupted = 1 } }  // before any output: Ctrl-C may come at once
        let source: RecordSource
        if let layout {
            let schema: RecordSchema
            do { schema = try RecordSchema(parsing: layout, stride: stride) } catch {
                throw usageError("the layout '\(layout)': \(error.description)")
            }
            source = try RawStructFile.open(file, schema: schema, offset: offset, bigEndian: bigEndian)
        } else if isDirectory(file) {
            source = try SeriesSource(directory: file)
        } else {
            source = try openTable(file)
        }
        let selected: [RecordField]
        if let fields {
            let names = fields.split(separator: ",")
            guard !names.isEmpty else {
                throw usageError(
                    "--fields names no field; the fields are \(source.schema.fields.map(\.name).joined(separator: ", "))"
                )
            }
            selected = try names.map { name in
                guard let field = source.schema.field(named: String(name)) else {
                    throw usageError(
                        "\(file): no field '\(name)'; the fields are \(source.schema.fields.map(\.name).joined(separator: ", "))"
                    )
                }
                return field
            }
        } else {
            selected = source.schema.fields
        }
        var requested = 0..<Int.max
        if let range {
            switch Self.parseRange(range) {
            case .failure(let problem): throw usageError("the range '\(range)': \(problem.message)")
            case .success(let parsed): requested = parsed
            }
            // Asking only for records that do not exist is a mistake, not an empty answer;
            // with --follow they are the records still to come.
            if !follow && requested.lowerBound >= source.count && !requested.isEmpty
                && !(requested.lowerBound == 0 && source.count == 0)
            {
                throw usageError(
                    "the range '\(range)' starts at record \(requested.lowerBound), past the end of \(file) (\(source.count) records)"
                )
            }
        }
        var bounds = requested.clamped(to: 0..<source.count)
        if let limit, limit < bounds.count { bounds = bounds.lowerBound..<bounds.lowerBound + limit }

        var out = Output()
        var printer = RecordPrinter(format: format, fields: selected, source: source)
        if !noHeader { printer.header(&out, in: bounds) }
        // Pages of printed records are let go, so memory stays flat on a table of any size.
        source.advise(.sequential, records: bounds)
        for chunk in Swift.stride(from: bounds.lowerBound, to: bounds.upperBound, by: 1 << 16) {
            let records = chunk..<min(bounds.upperBound, chunk + 1 << 16)
            for index in records { printer.print(index, &out) }
            source.advise(.doneWith, records: records)
        }
        out.flush()

        guard follow else { return }
        let table: any FollowedSource
        if let series = source as? SeriesSource {
            table = series
        } else if let single = source as? DynamicRecordTable {
            table = single
        } else {
            return
        }
        var next = max(bounds.upperBound, requested.lowerBound)
        let end =
            limit.map {
                requested.lowerBound.addingReportingOverflow($0).overflow ? Int.max : requested.lowerBound + $0
            }
            .map { min($0, requested.upperBound) } ?? requested.upperBound
        // It sleeps on the table's doorbell (a futex) and wakes when the writer appends; the
        // timeout only bounds how long Ctrl-C waits. It says so once when the writer leaves.
        var writerWasActive = (try? table.writerIsActive()) ?? false
        while interrupted == 0 && next < end {
            let count: Int
            do { count = try table.waitForRecords(beyond: next, timeout: .milliseconds(250)) } catch {
                complain(error.description)
                if error.code == .truncated {
                    complain("\(file) shrank while it was followed (another process truncated it); stopped")
                    throw ExitCode(ExitStatus.cannotRead.rawValue)
                }
                if error.code == .replaced {
                    complain(
                        "\(file) was replaced while it was followed (a migration); run the command again to follow the new table"
                    )
                    throw ExitCode(ExitStatus.cannotRead.rawValue)
                }
                throw ExitCode(error.exitStatus.rawValue)
            }
            if count <= next, let active = try? table.writerIsActive(), active != writerWasActive {
                complain(
                    active
                        ? "a process took the writer lock of \(file) (a writer, or a migration); following"
                        : "the writer of \(file) has gone (closed or died); still following")
                writerWasActive = active
            }
            for index in next..<min(max(next, count), end) { printer.print(index, &out) }
            next = max(next, count)
            out.flush()
        }
    }

    /// A range problem, for the usage error.
    struct RangeProblem: Error { let message: String }

    /// The records a `--range` asks for, before it meets the table: `100..<200`, `100...199`,
    /// `100..` or `..<50`. Numbers are non-negative; a closed upper bound of Int.max means "to the end".
    static func parseRange(_ text: String) -> Result<Range<Int>, RangeProblem> {
        let parts: (Substring, Substring), closed: Bool
        if let split = text.firstRange(of: "..<") {
            parts = (text[..<split.lowerBound], text[split.upperBound...]); closed = false
        } else if let split = text.firstRange(of: "...") {
            parts = (text[..<split.lowerBound], text[split.upperBound...]); closed = true
        } else if text.hasSuffix("..") {
            parts = (text.dropLast(2), ""); closed = false
        } else {
            return .failure(RangeProblem(message: "it is not like 100..<200, 100...199, 100.. or ..<50"))
        }
        func bound(_ part: Substring, _ fallback: Int) -> Int?? {
            if part.isEmpty { return .some(fallback) }
            guard let value = Int(part), value >= 0 else { return .none }
            return .some(value)
        }
        guard let lower = bound(parts.0, 0), let upperGiven = bound(parts.1, Int.max), let lower, let upperGiven else {
            return .failure(RangeProblem(message: "its bounds must be whole numbers from 0 to \(Int.max)"))
        }
        let upper = closed && !parts.1.isEmpty ? (upperGiven == Int.max ? Int.max : upperGiven + 1) : upperGiven
        guard lower <= upper else {
            return .failure(RangeProblem(message: "it ends before it starts"))
        }
        return .success(lower..<upper)
    }
}

/// Prints records in one format, straight into the output buffer.
struct RecordPrinter {
    let format: Dump.Format
    let fields: [RecordField]
    let source: RecordSource
    /// Record byte offsets where a field starts, for `hex`.
    let boundaries: [Bool]
    var widths: [Int] = []

    init(format: Dump.Format, fields: [RecordField], source: RecordSource) {
        self.format = format
        self.fields = fields
        self.source = source
        var boundaries = [Bool](repeating: false, count: source.schema.stride)
        for field in source.schema.fields { boundaries[field.offset] = true }
        self.boundaries = boundaries
    }

    mutating func header(_ out: inout Output, in bounds: Range<Int>) {
        switch format {
        case .csv:
            for (column, field) in fields.enumerated() {
                if column > 0 { out.byte(UInt8(ascii: ",")) }
                out.csvCell(field.name)
            }
            out.newline()
        case .table:
            // Column widths from the names and the first 100 records: memory stays constant.
            widths = fields.map { $0.name.count }
            for index in bounds.prefix(100) {
                source.withRecordBytes(at: index) { bytes in
                    for (column, field) in fields.enumerated() {
                        widths[column] = max(
                            widths[column], field.value(in: bytes, bigEndian: source.bigEndian).description.count)
                    }
                }
            }
            out.line(zip(fields, widths).map { $0.name.leftPadded($1) }.joined(separator: "  "))
        case .hex: out.line("# record: byte offset in the file, then the bytes; | marks field boundaries")
        case .jsonl: break
        }
    }

    mutating func print(_ index: Int, _ out: inout Output) {
        if format == .table && widths.isEmpty { widths = fields.map { $0.name.count } }
        source.withRecordBytes(at: index) { bytes in
            switch format {
            case .csv:
                for (column, field) in fields.enumerated() {
                    if column > 0 { out.byte(UInt8(ascii: ",")) }
                    let value = field.value(in: bytes, bigEndian: source.bigEndian)
                    // A lone empty cell would be a blank line, which CSV readers skip: quote it.
                    if fields.count == 1, case .string(let text) = value, text.isEmpty {
                        out.write("\"\"")
                    } else {
                        out.csvCell(value)
                    }
                }
            case .jsonl:
                out.byte(UInt8(ascii: "{"))
                for (column, field) in fields.enumerated() {
                    if column > 0 { out.byte(UInt8(ascii: ",")) }
                    out.write(jsonString(field.name))
                    out.byte(UInt8(ascii: ":"))
                    out.write(field.value(in: bytes, bigEndian: source.bigEndian).json)
                }
                out.byte(UInt8(ascii: "}"))
            case .table:
                for (column, field) in fields.enumerated() {
                    if column > 0 { out.write("  ") }
                    out.write(
                        field.value(in: bytes, bigEndian: source.bigEndian).description.leftPadded(widths[column]))
                }
            case .hex:
                out.write(String(source.fileOffset(ofRecord: index)))
                out.byte(UInt8(ascii: ":"))
                for offset in 0..<bytes.byteCount {
                    out.write(boundaries[offset] ? " |" : " ")
                    out.hexByte(bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self))
                }
            }
            out.newline()
        }
    }
}

extension String {
    /// Right-aligned in `width` characters.
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

/// What `dump --follow` follows: a table, or a series across its files.
protocol FollowedSource {
    func waitForRecords(beyond known: Int, timeout: Duration) throws(RecordTableError) -> Int
    func writerIsActive() throws(RecordTableError) -> Bool
}

extension DynamicRecordTable: FollowedSource {
    func waitForRecords(beyond known: Int, timeout: Duration) throws(RecordTableError) -> Int {
        try waitForRecords(beyond: known, timeout: timeout, strategy: .block)
    }
}

extension SeriesSource: FollowedSource {}
