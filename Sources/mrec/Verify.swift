import ArgumentParser
import Glibc
import RecordTable

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

