// mrec: what is inside a record table, a raw struct file, or the name registry.
// docs/MREC.md is the manual.

import ArgumentParser
import Glibc
import MappedRegistry
import RecordTable

@main
struct Mrec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect record tables and the MappedRecords name registry.",
        discussion: "Exit status: 0 ok, 1 the file has problems, 2 usage error, 3 the file cannot be read.",
        subcommands: [Info.self, Dump.self, Verify.self, Schema.self, Names.self])
}

/// Opens a table read-only, or reports why not and exits with the matching status.
func openTable(_ path: String) throws -> DynamicRecordTable {
    do {
        return try DynamicRecordTable.open(path: path)
    } catch {
        complain(error.description)
        throw ExitCode(error.exitStatus.rawValue)
    }
}

// MARK: - info

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a table's header and schema.",
        discussion: "Example:\n  mrec info points.mrec\n  mrec info --json points.mrec")

    @Argument(help: "The table file.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let table = try openTable(file)
        var status = stat()
        stat(file, &status)
        let writer = (try? table.writerIsActive()) == true ? "active" : "none"
        var out = Output()
        if json {
            let fields = table.schema.fields.map {
                "{\"name\":\(jsonString($0.name)),\"type\":\"\($0.type.name)\",\"offset\":\($0.offset),\"count\":\($0.count)}"
            }.joined(separator: ",")
            let metadata = table.metadata.map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
            out.line("{\"path\":\(jsonString(file)),\"fileSize\":\(status.st_size),\"formatVersion\":\"\(table.formatVersion)\","
                + "\"durability\":\"\(table.createdDurability)\",\"headerChecksum\":\"valid\",\"dataOffset\":\(table.dataOffset),"
                + "\"stride\":\(table.schema.stride),\"alignment\":\(table.schema.alignment),\"count\":\(table.count),"
                + "\"capacity\":\(table.capacity),\"commitGeneration\":\(table.committed.generation),\"committedCount\":\(table.committed.count),"
                + "\"writer\":\"\(writer)\",\"fields\":[\(fields)],\"metadata\":{\(metadata)}}")
        } else {
            out.line("file            \(file)")
            out.line("size            \(status.st_size) bytes")
            out.line("format          version \(table.formatVersion), header checksum valid")
            out.line("durability      \(table.createdDurability) (as created)")
            out.line("records         \(table.count) of capacity \(table.capacity), stride \(table.schema.stride), alignment \(table.schema.alignment)")
            out.line("data offset     \(table.dataOffset)")
            out.line("commit point    generation \(table.committed.generation), \(table.committed.count) records")
            out.line("writer          \(writer)")
            out.line("fields")
            for field in table.schema.fields {
                let type = field.type.name + (field.count == 1 ? "" : "[\(field.count)]")
                out.line("  " + field.name.padding(16) + type.padding(12) + "offset \(field.offset)")
            }
            if !table.metadata.isEmpty {
                out.line("metadata")
                for entry in table.metadata { out.line("  \(entry.key) = \(entry.value)") }
            }
        }
        out.flush()
    }
}

extension String {
    /// The string padded with spaces to `width` characters.
    func padding(_ width: Int) -> String { count >= width ? self + " " : self + String(repeating: " ", count: width - count) }
}

// MARK: - dump

/// The set by `SIGINT` while `dump --follow` waits.
nonisolated(unsafe) var interrupted: sig_atomic_t = 0

struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print records.",
        discussion: """
            Examples:
              mrec dump points.mrec
              mrec dump --format csv --fields id,x --range 100..<200 points.mrec
              mrec dump --format jsonl --limit 10 points.mrec
              mrec dump --follow points.mrec          (like tail -f; Ctrl-C ends it)
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, csv, jsonl, hex }

    @Argument(help: "The table file.") var file: String
    @Option(help: "table, csv, jsonl or hex.") var format: Format = .table
    @Option(help: "Records to print: 100..<200, 100...199, 100.. or ..<50.") var range: String?
    @Option(help: "Fields to print, comma-separated.") var fields: String?
    @Option(help: "At most this many records.") var limit: Int?
    @Flag(help: "Leave out the header line.") var noHeader = false
    @Flag(help: "Keep printing records as a writer appends them.") var follow = false

    func run() throws {
        if follow { signal(SIGINT) { _ in interrupted = 1 } }  // before any output: Ctrl-C may come at once
        let table = try openTable(file)
        let selected: [RecordField]
        if let fields {
            selected = try fields.split(separator: ",").map { name in
                guard let field = table.schema.field(named: String(name)) else {
                    complain("\(file): no field '\(name)'; the fields are \(table.schema.fields.map(\.name).joined(separator: ", "))")
                    throw ExitCode(ExitStatus.usage.rawValue)
                }
                return field
            }
        } else {
            selected = table.schema.fields
        }
        var bounds = 0..<table.count
        if let range {
            guard let parsed = parseRange(range, count: table.count) else {
                complain("the range '\(range)' is not like 100..<200, 100...199, 100.. or ..<50")
                throw ExitCode(ExitStatus.usage.rawValue)
            }
            bounds = parsed
        }
        if let limit { bounds = bounds.lowerBound..<min(bounds.upperBound, bounds.lowerBound + max(0, limit)) }

        var out = Output()
        var printer = RecordPrinter(format: format, fields: selected, stride: table.schema.stride)
        if !noHeader { printer.header(&out, sample: table, in: bounds) }
        for index in bounds { printer.print(table, index, &out) }
        out.flush()

        guard follow else { return }
        var next = bounds.upperBound
        while interrupted == 0 {
            let count: Int
            do { count = try table.waitForRecords(beyond: next, timeout: .milliseconds(250)) } catch {
                complain(error.description)
                throw ExitCode(error.exitStatus.rawValue)
            }
            for index in next..<max(next, count) { printer.print(table, index, &out) }
            next = max(next, count)
            out.flush()
        }
    }

    func parseRange(_ text: String, count: Int) -> Range<Int>? {
        func number(_ part: Substring) -> Int? { part.isEmpty ? nil : Int(part) }
        let parts: (Substring, Substring), closed: Bool
        if let split = text.firstRange(of: "..<") {
            parts = (text[..<split.lowerBound], text[split.upperBound...]); closed = false
        } else if let split = text.firstRange(of: "...") {
            parts = (text[..<split.lowerBound], text[split.upperBound...]); closed = true
        } else if text.hasSuffix("..") {
            parts = (text.dropLast(2), ""); closed = false
        } else {
            return nil
        }
        guard parts.0.isEmpty || number(parts.0) != nil, parts.1.isEmpty || number(parts.1) != nil else { return nil }
        let lower = min(max(0, number(parts.0) ?? 0), count)
        let upper = min(count, number(parts.1).map { closed ? $0 + 1 : $0 } ?? count)
        return lower..<max(lower, upper)
    }
}

/// Prints records in one format.
struct RecordPrinter {
    let format: Dump.Format
    let fields: [RecordField]
    let stride: Int
    var widths: [Int] = []

    init(format: Dump.Format, fields: [RecordField], stride: Int) {
        self.format = format
        self.fields = fields
        self.stride = stride
    }

    mutating func header(_ out: inout Output, sample table: DynamicRecordTable, in bounds: Range<Int>) {
        switch format {
        case .csv: out.line(fields.map { FieldValue.string($0.name).csv }.joined(separator: ","))
        case .table:
            // Column widths from the names and the first 100 records: memory stays constant.
            widths = fields.map { $0.name.count }
            for index in bounds.prefix(100) {
                table.withRecordBytes(at: index) { bytes in
                    for (column, field) in fields.enumerated() { widths[column] = max(widths[column], field.value(in: bytes).description.count) }
                }
            }
            out.line(zip(fields, widths).map { $0.name.leftPadded($1) }.joined(separator: "  "))
        case .hex: out.line("# record: byte offset in the file, then the bytes; | marks field boundaries")
        case .jsonl: break
        }
    }

    mutating func print(_ table: DynamicRecordTable, _ index: Int, _ out: inout Output) {
        table.withRecordBytes(at: index) { bytes in
            switch format {
            case .csv: out.line(fields.map { $0.value(in: bytes).csv }.joined(separator: ","))
            case .jsonl: out.line("{" + fields.map { jsonString($0.name) + ":" + $0.value(in: bytes).json }.joined(separator: ",") + "}")
            case .table:
                if widths.isEmpty { widths = fields.map { $0.name.count } }
                out.line(zip(fields, widths).map { $0.value(in: bytes).description.leftPadded($1) }.joined(separator: "  "))
            case .hex:
                let boundaries = Set(table.schema.fields.map(\.offset))
                var text = String(table.dataOffset + index * stride) + ":"
                for offset in 0..<bytes.byteCount {
                    text += boundaries.contains(offset) ? " |" : " "
                    let byte = bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self)
                    text += (byte < 16 ? "0" : "") + String(byte, radix: 16)
                }
                out.line(text)
            }
        }
    }
}

extension String {
    /// Right-aligned in `width` characters.
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

// MARK: - verify

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a table's integrity: header, schema, commit slots, count, records.",
        discussion: "Exit status 0 when clean, 1 with the findings otherwise.\nExample:\n  mrec verify points.mrec")

    @Argument(help: "The table file.") var file: String

    func run() throws {
        let table = try openTable(file)
        let showProgress = standardErrorIsTerminal && table.count > 100_000
        let report = table.verify { done in
            guard showProgress else { return }
            let percent = table.count == 0 ? 100 : done * 100 / table.count
            let bar = String(repeating: "#", count: percent / 5) + String(repeating: ".", count: 20 - percent / 5)
            let text = "\r[\(bar)] \(percent)%"
            _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        }
        if showProgress { _ = "\n".withCString { write(STDERR_FILENO, $0, 1) } }
        var out = Output()
        if report.isClean {
            out.line("\(file): ok, \(report.checkedRecords) records checked")
            out.flush()
            return
        }
        for finding in report.findings { out.line("\(file): \(finding)") }
        out.flush()
        throw ExitCode(ExitStatus.fileProblem.rawValue)
    }
}

// MARK: - schema

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print code that reads the table: a numpy snippet or a Swift struct.",
        discussion: "Examples:\n  mrec schema --numpy points.mrec\n  mrec schema --swift points.mrec")

    @Argument(help: "The table file.") var file: String
    @Flag(help: "A Python snippet that opens the table with numpy.memmap.") var numpy = false
    @Flag(help: "The matching Swift struct declaration.") var swift = false

    func run() throws {
        let table = try openTable(file)
        var out = Output()
        if swift {
            out.line("struct Record: TableRecord {")
            for field in table.schema.fields { out.line("    var \(field.name): \(swiftType(field))") }
            out.line("")
            out.line("    static let schema = RecordSchema(Record.self, fields: [")
            for field in table.schema.fields { out.line("        .field(\"\(field.name)\", \\.\(field.name)),") }
            out.line("    ])")
            out.line("}")
        } else {
            let names = table.schema.fields.map { "'\($0.name)'" }.joined(separator: ", ")
            let formats = table.schema.fields.map { "'\($0.numpyFormat)'" }.joined(separator: ", ")
            let offsets = table.schema.fields.map { String($0.offset) }.joined(separator: ", ")
            out.line("import numpy as np")
            out.line("dtype = np.dtype({'names': [\(names)], 'formats': [\(formats)],")
            out.line("                  'offsets': [\(offsets)], 'itemsize': \(table.schema.stride)})")
            out.line("records = np.memmap(\(jsonString(file)), dtype=dtype, mode='r', offset=\(table.dataOffset), shape=(\(table.count),))")
            out.line("print(records[:5])")
        }
        out.flush()
    }

    func swiftType(_ field: RecordField) -> String {
        let element: String
        switch field.type {
        case .int8: element = "Int8"
        case .int16: element = "Int16"
        case .int32: element = "Int32"
        case .int64: element = "Int64"
        case .uint8, .bytes: element = "UInt8"
        case .uint16: element = "UInt16"
        case .uint32: element = "UInt32"
        case .uint64: element = "UInt64"
        case .float32: element = "Float"
        case .float64: element = "Double"
        case .bool: element = "Bool"
        case .char: return "FixedString<\(field.count)>"
        }
        return field.count == 1 ? element : "InlineArray<\(field.count), \(element)>"
    }
}

// MARK: - names

struct Names: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the names in the registry, with their holders.",
        discussion: "Examples:\n  mrec names\n  mrec names --registry /tmp/my-registry --gc")

    @Option(help: "The registry directory (default: $MAPPED_REGISTRY, then a per-user directory).") var registry: String?
    @Flag(help: "Collect holders of dead processes first.") var gc = false

    func run() throws {
        do {
            let registry = try Registry.open(directory: registry)
            var out = Output()
            if gc {
                let report = try registry.collectGarbage()
                out.line("collected \(report.deadHolders) dead holders; removed \(report.removedNames.count) names")
            }
            out.line("NAME".padding(24) + "KIND".padding(14) + "SIZE".padding(12) + "OFFSET".padding(10) + "HOLDERS".padding(16) + "OBJECT")
            for entry in try registry.entries() {
                let holders = registry.holders(of: entry)
                let alive = holders.filter(\.isAlive).count
                out.line(entry.name.padding(24) + "\(entry.kind)".padding(14) + String(entry.length).padding(12)
                    + String(entry.offset).padding(10) + "\(alive) live, \(holders.count - alive) dead".padding(16) + entry.object)
            }
            out.flush()
        } catch {
            complain(error.description)
            throw ExitCode(error.code == .corrupt ? ExitStatus.fileProblem.rawValue : ExitStatus.cannotRead.rawValue)
        }
    }
}
