// mrec: what is inside a record table, a raw struct file, or the name registry.
// docs/MREC.md is the manual.

import ArgumentParser
import Glibc
import RecordTable

@main
struct Mrec: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect, create and fill record tables; list the MappedRecords name registry.",
        discussion: """
            Exit status: 0 ok, 1 the file has problems, 2 usage error, 3 the file cannot be read or written.
            Examples:
              mrec demo
              mrec info points.mrec
              mrec dump --format csv points.mrec | head
              mrec dump --layout 'r:i16,g:i16,b:i16,a:i16' ExtremelyLargeImage.data
            """,
        subcommands: [
            Info.self, Dump.self, Verify.self, Schema.self, Create.self, Import.self, Migrate.self, Names.self,
            Demo.self,
            DemoWriter.self, DemoReader.self,
        ])

    /// Runs the command; usage errors exit with 2, as docs/MREC.md documents (not ArgumentParser's 64).
    static func main() {
        endQuietlyOnTruncation()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let status = exitCode(for: error)
            guard status == .validationFailure else { exit(withError: error) }
            complain(message(for: error))
            complain("see 'mrec help' for usage")
            Glibc.exit(ExitStatus.usage.rawValue)
        }
    }
}

/// Opens a table read-only, or reports why not and exits with the matching status.
func openTable(_ path: String, access: TableAccess = .readOnly) throws -> DynamicRecordTable {
    do {
        return try DynamicRecordTable.open(path: path, access: access)
    } catch {
        complain(error.description)
        throw ExitCode(error.exitStatus.rawValue)
    }
}

/// Reports a usage problem and exits with status 2.
func usageError(_ text: String) -> ExitCode {
    complain(text)
    return ExitCode(ExitStatus.usage.rawValue)
}

/// A file mapped by mrec that another process truncates raises SIGBUS when mrec touches a page
/// that is gone (docs/CAVEATS.md). The library's policy stays; the tool ends with a message and
/// status 3 instead of a core dump. The handler only writes a fixed text and calls `_exit`,
/// which are safe in a signal handler.
func endQuietlyOnTruncation() {
    signal(SIGBUS) { _ in
        let message: StaticString =
            "mrec: a file shrank while it was being read (another process truncated it); stopped\n"
        _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
        _exit(3)
    }
}
