import ArgumentParser
import Glibc
import RecordTable

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a table's header and schema, or a series' files.",
        discussion:
            "Example:\n  mrec info points.mrec\n  mrec info --json points.mrec\n  mrec info trades/        (a series: its files, counts and seals)"
    )

    @Argument(help: "The table file, or a series' directory.") var file: String
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        if isDirectory(file) { return try seriesInfo(file, json: json) }
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
            out.line(
                "{\"path\":\(jsonString(file)),\"fileSize\":\(status.st_size),\"formatVersion\":\"\(table.formatVersion)\","
                    + "\"durability\":\"\(table.createdDurability)\",\"headerChecksum\":\"valid\",\"dataOffset\":\(table.dataOffset),"
                    + "\"stride\":\(table.schema.stride),\"alignment\":\(table.schema.alignment),\"count\":\(table.count),"
                    + "\"capacity\":\(table.capacity),\"commitGeneration\":\(table.committed.generation),\"committedCount\":\(table.committed.count),"
                    + "\"writer\":\"\(writer)\",\"fields\":[\(fields)],\"metadata\":{\(metadata)}}")
        } else {
            out.line("file            \(file)")
            out.line("size            \(status.st_size) bytes")
            out.line("format          version \(table.formatVersion), header checksum valid")
            out.line("durability      \(table.createdDurability) (as created)")
            out.line(
                "records         \(table.count) of capacity \(table.capacity), stride \(table.schema.stride), alignment \(table.schema.alignment)"
            )
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
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
