import ArgumentParser
import Glibc
import RecordTable

struct Schema: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print code that reads the table: a numpy snippet or a Swift struct.",
        discussion:
            "Examples:\n  mrec schema --numpy points.mrec\n  mrec schema --swift --name Point points.mrec\n  mrec schema --diff new.mrec old.mrec"
    )

    @Argument(help: "The table file.") var file: String
    @Option(
        help:
            "Another table A: show how FILE's schema differs from A's, as `--diff A.mrec B.mrec` (exit 0 when equal, 1 when not)."
    ) var diff: String?
    @Flag(help: "A Python snippet: the mappedrecords package, or numpy.memmap without it.") var numpy = false
    @Flag(help: "A @MappedRecord struct declaration that opens this very file.") var swift = false
    @Option(help: "With --swift: the struct's name.") var name = "Record"

    func run() throws {
        let table = try openTable(file)
        var out = Output()
        if let diff {
            // `--diff A.mrec B.mrec`: how B differs from A.
            let other = try openTable(diff)
            let lines = SchemaDifference.lines(other.schema, named: diff, table.schema, named: file)
            for line in lines { out.line(line) }
            if lines.isEmpty { out.line("\(diff) and \(file) have the same schema") }
            out.flush()
            if !lines.isEmpty { throw ExitCode(ExitStatus.fileProblem.rawValue) }
            return
        }
        if swift {
            switch SwiftDeclaration.make(for: table.schema, name: name) {
            case .success(let lines): for line in lines { out.line(line) }
            case .failure(let problem):
                out.flush()
                complain("\(file): \(problem.message); read it with DynamicRecordTable instead")
                throw ExitCode(ExitStatus.fileProblem.rawValue)
            }
        } else {
            let names = table.schema.fields.map { "'\($0.name)'" }.joined(separator: ", ")
            let formats = table.schema.fields.map { "'\($0.numpyFormat)'" }.joined(separator: ", ")
            let offsets = table.schema.fields.map { String($0.offset) }.joined(separator: ", ")
            out.line("import numpy as np")
            out.line("try:")
            out.line(
                "    # python/ in the MappedRecords repository (docs/PYTHON.md): the committed count, checksums, growth"
            )
            out.line("    import mappedrecords")
            out.line("    records = mappedrecords.open(\(jsonString(file))).records")
            out.line("except ImportError:")
            out.line("    # The layout alone, and the \(table.count) records there were when this was printed")
            out.line("    dtype = np.dtype({'names': [\(names)], 'formats': [\(formats)],")
            out.line("                      'offsets': [\(offsets)], 'itemsize': \(table.schema.stride)})")
            out.line(
                "    records = np.memmap(\(jsonString(file)), dtype=dtype, mode='r', offset=\(table.dataOffset), shape=(\(table.count),))"
            )
            out.line("print(records[:5])")
        }
        out.flush()
    }
}

/// The Swift declaration of a schema: a `@MappedRecord` struct whose layout is exactly the file's.
///
/// Fields become stored properties in offset order. A gap between fields (or before the stride)
/// becomes `@Padding` properties, of the widest unsigned integers that sit at their natural
/// alignment, so the struct also reaches the file's alignment when a gap allows it. Field names
/// that are not Swift identifiers (such as `position.x`) are kept with `@Field("…")`.
enum SwiftDeclaration {
    struct Problem: Error { let message: String }

    static func make(for schema: RecordSchema, name: String) -> Result<[String], Problem> {
        var lines = ["import RecordTable", "", "@MappedRecord", "struct \(name) {"]
        var position = 0, alignment = 1, paddingNumber = 0, used = Set<String>()
        func pad(to end: Int) {
            while position < end {
                let width = [8, 4, 2, 1].first { position % $0 == 0 && position + $0 <= end }!
                let type = ["UInt8", "UInt16", "", "UInt32", "", "", "", "UInt64"][width - 1]
                lines.append("    @Padding var _padding\(paddingNumber): \(type)")
                paddingNumber += 1
                alignment = max(alignment, width)
                position += width
            }
        }
        for field in schema.fields.sorted(by: { $0.offset < $1.offset }) {
            let elementAlignment = field.type.size
            guard field.offset % elementAlignment == 0 else {
                return .failure(
                    Problem(
                        message:
                            "field '\(field.name)' (\(field.type.name) at offset \(field.offset)) is not aligned to \(elementAlignment) bytes, which a Swift struct cannot express"
                    ))
            }
            pad(to: field.offset)
            let property = identifier(for: field.name, avoiding: &used)
            let rename =
                property == field.name || property == "`\(field.name)`" ? "" : "@Field(\(jsonString(field.name))) "
            lines.append("    \(rename)var \(property): \(swiftType(field))")
            alignment = max(alignment, elementAlignment)
            position = field.offset + field.size
        }
        pad(to: schema.stride)
        guard alignment == schema.alignment else {
            return .failure(
                Problem(
                    message:
                        "the file's alignment is \(schema.alignment) bytes, and no Swift struct with these fields and gaps has it (this one would have \(alignment))"
                ))
        }
        lines.append("}")
        return .success(lines)
    }

    /// A Swift identifier for a field name: itself if it is one, else with `_` for other characters.
    static func identifier(for name: String, avoiding used: inout Set<String>) -> String {
        let isIdentifier =
            name.first.map { $0 == "_" || $0.isLetter } == true
            && name.allSatisfy { $0 == "_" || $0.isLetter || $0.isNumber }
        var candidate = isIdentifier ? name : String(name.map { $0 == "_" || $0.isLetter || $0.isNumber ? $0 : "_" })
        if candidate.first?.isNumber != false { candidate = "_" + candidate }
        if keywords.contains(candidate) { candidate = "`\(candidate)`" }
        while used.contains(candidate) { candidate += "_" }
        used.insert(candidate)
        return candidate
    }

    static let keywords: Set<String> = [
        "associatedtype", "class", "deinit", "enum", "extension", "func", "import", "init", "inout", "let", "operator",
        "protocol", "static", "struct", "subscript", "typealias", "var", "break", "case", "continue", "default",
        "defer",
        "do", "else", "fallthrough", "for", "guard", "if", "in", "repeat", "return", "switch", "where", "while", "as",
        "catch", "false", "is", "nil", "rethrows", "super", "self", "Self", "throw", "throws", "true", "try", "Any",
    ]

    static func swiftType(_ field: RecordField) -> String {
        let element: String
        switch field.type {
        case .int8: element = "Int8"
        case .int16: element = "Int16"
        case .int32: element = "Int32"
        case .int64: element = "Int64"
        case .uint8: element = "UInt8"
        case .uint16: element = "UInt16"
        case .uint32: element = "UInt32"
        case .uint64: element = "UInt64"
        case .float32: element = "Float"
        case .float64: element = "Double"
        case .bool: element = "Bool"
        case .char: return "MappedString<\(field.count)>"
        case .bytes: return "MappedBytes<\(field.count)>"
        }
        return field.count == 1 ? element : "InlineArray<\(field.count), \(element)>"
    }
}

/// The differences between two schemas, field by field, as `mrec schema --diff` prints them.
enum SchemaDifference {
    static func lines(
        _ first: RecordSchema, named firstName: String, _ second: RecordSchema, named secondName: String
    ) -> [String] {
        var lines: [String] = []
        if first.stride != second.stride {
            lines.append("stride     \(firstName): \(first.stride), \(secondName): \(second.stride)")
        }
        if first.alignment != second.alignment {
            lines.append("alignment  \(firstName): \(first.alignment), \(secondName): \(second.alignment)")
        }
        for field in first.fields {
            guard let other = second.field(named: field.name) else {
                lines.append("only in    \(firstName): \(field)")
                continue
            }
            guard other != field else { continue }
            let word = other.type == field.type && other.count == field.count ? "moved" : "changed"
            lines.append("\(word.padding(10))\(field) -> \(other)")
        }
        for field in second.fields where first.field(named: field.name) == nil {
            lines.append("only in    \(secondName): \(field)")
        }
        return lines
    }
}
