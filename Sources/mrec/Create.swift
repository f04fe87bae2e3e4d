import ArgumentParser
import Glibc
import RecordTable

struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create an empty table with a schema.",
        discussion: """
            Fields follow C alignment unless given @offset; the types are i8 i16 i32 i64 u8 u16 u32 u64 f32 f64 bool bytes char.
            Examples:
              mrec create points.mrec --schema 'id:i64,x:f64,y:f64,flags:i32,tag:i32'
              mrec create names.mrec --schema 'id:u32,name:char[28]' --durability none
            """)

    @Argument(help: "The new table file; it must not exist.") var file: String
    @Option(help: "The fields, such as 'id:i64,x:f64,pos:f32[3],name:char[16]'.") var schema: String
    @Option(help: "Records to make room for now.") var capacity: Int = 0
    @Option(help: "none, batch or everyAppend (see docs/FORMAT.md).") var durability: String = "batch"
    @Option(help: "A key=value pair stored in the header; repeatable.") var metadata: [String] = []

    func run() throws {
        let parsed: RecordSchema
        do { parsed = try RecordSchema(parsing: schema) } catch {
            throw usageError("the schema '\(schema)': \(error.description)")
        }
        guard let mode = Durability(name: durability) else {
            throw usageError("the durability '\(durability)' is not none, batch or everyAppend")
        }
        let pairs = try metadata.map { pair in
            guard let equals = pair.firstIndex(of: "=") else {
                throw usageError("the metadata '\(pair)' is not key=value")
            }
            return (key: String(pair[..<equals]), value: String(pair[pair.index(after: equals)...]))
        }
        guard capacity >= 0 else { throw usageError("--capacity must not be negative") }
        do {
            let table = try DynamicRecordTable.create(
                path: file, schema: parsed, capacity: capacity, durability: mode, metadata: pairs)
            try table.close()
        } catch {
            complain(error.description)
            throw ExitCode(error.code == .invalidArgument ? ExitStatus.usage.rawValue : ExitStatus.cannotRead.rawValue)
        }
        var out = Output()
        out.line("created \(file): \(parsed.fields.count) fields, stride \(parsed.stride), durability \(mode)")
        out.flush()
    }
}

extension Durability {
    /// The mode named as `mrec` and the docs spell it: `none`, `batch`, `everyAppend`.
    init?(name: String) {
        guard let mode = Durability.allCases.first(where: { "\($0)" == name }) else { return nil }
        self = mode
    }
}
