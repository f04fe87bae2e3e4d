import ArgumentParser
import Glibc
import RecordTable

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

