import ArgumentParser
import Glibc
import RecordTable

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Rewrite a table with a new schema, in place and crash-safe: fields matched by name.",
        discussion: """
            Fields are matched by name: kept, moved, widened (i32 to i64, f32 to f64, char[8] to char[16]…), \
            narrowed only when every stored value fits (checked before anything is written), added (zero, or \
            --default), renamed (--rename), dropped only with --drop. The plan is printed first. The new table \
            is written beside the old one and renamed over it: a crash leaves the old table or the new one. \
            The new table keeps the old one's owner, group, mode and extended attributes; a symbolic link is \
            followed, and a table with other hard links is refused.

            Exit status: 0 done, 1 a stored value does not fit, 2 the schema or an option is wrong, 3 the file \
            cannot be read or written (a full disk leaves the old table untouched). docs/EVOLUTION.md has the rules.

            Examples:
              mrec migrate t.mrec --schema 'id:i64,price:f64,qty:i64,side:u8' --dry-run
              mrec migrate t.mrec --schema 'id:i64,cost:f64' --rename price=cost --drop qty
              mrec migrate t.mrec --schema 'id:i64,price:f64,venue:u16' --default venue=7
            """)

    @Argument(help: "The table to migrate.") var file: String
    @Option(help: "The new schema, such as 'id:i64,price:f64,qty:i64'.") var schema: String
    @Option(help: "old=new: the field 'old' is now called 'new'; repeatable.") var rename: [String] = []
    @Option(help: "field=value: the value of an added field; repeatable.") var `default`: [String] = []
    @Option(help: "An old field to drop (its data is lost); repeatable.") var drop: [String] = []
    @Flag(help: "Print the plan and change nothing.") var dryRun = false

    func run() throws {
        let target: RecordSchema
        do { target = try RecordSchema(parsing: schema) } catch {
            throw usageError("the schema '\(schema)': \(error.description)")
        }
        var options = MigrationOptions(drops: Set(drop))
        for pair in rename {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw usageError("--rename '\(pair)' is not old=new")
            }
            options.renames[parts[0]] = parts[1]
        }
        for pair in self.default {
            guard let equals = pair.firstIndex(of: "="), let field = target.field(named: String(pair[..<equals])) else {
                throw usageError("--default '\(pair)' is not field=value for a field of the new schema")
            }
            var scratch = [UInt8](repeating: 0, count: target.stride)
            let problem = scratch.withUnsafeMutableBytes {
                field.store(String(pair[pair.index(after: equals)...]), into: $0)
            }
            if let problem { throw usageError("--default '\(pair)': \(problem)") }
            options.defaults[field.name] = field.value(in: scratch.span.bytes)
        }

        let plan: SchemaMapping
        let count: Int
        do {
            plan = try TableMigration.plan(path: file, to: target, options: options)
            count = try DynamicRecordTable.open(path: file).count
        } catch {
            complain(error.description)
            throw ExitCode(
                error.code == .schemaMismatch || error.code == .invalidArgument
                    ? ExitStatus.usage.rawValue : error.exitStatus.rawValue)
        }
        var out = Output()
        out.line("plan for \(file): \(count) records, stride \(plan.source.stride) -> \(plan.target.stride)")
        for step in plan.fields { out.line("  " + step.description) }
        out.flush()
        guard !dryRun else { return }
        guard !plan.isIdentity else {
            say("\(file) has this schema already; nothing to do")
            return
        }
        do {
            let report = try TableMigration.migrate(path: file, to: target, options: options)
            for leftover in report.removedLeftovers {
                say("removed \(leftover), left by an earlier migration that did not finish")
            }
            say("migrated \(file): \(report.records) records")
        } catch {
            complain(error.description)
            throw ExitCode(
                error.code == .valueDoesNotFit
                    ? ExitStatus.fileProblem.rawValue
                    : error.code == .schemaMismatch || error.code == .invalidArgument
                        ? ExitStatus.usage.rawValue : error.exitStatus.rawValue)
        }
    }
}
