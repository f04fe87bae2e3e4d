import ArgumentParser
import Glibc
import RecordTable

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a table's integrity: header, schema, commit slots, count, records.",
        discussion: """
            Reads every committed record: Bool bytes must be 0 or 1 (damage), text must be UTF-8 and padding zero (warnings).
            Exit status 0 when there is no damage (warnings allowed), 1 with the findings otherwise.
            On a series' directory: every file, one schema, and each file but the newest sealed naming the next.
            Example:
              mrec verify points.mrec
              mrec verify trades/
            """)

    @Argument(help: "The table file, or a series' directory.") var file: String

    func run() throws {
        if isDirectory(file) { return try seriesVerify(file) }
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
        let checked = "\(report.checkedRecords) records checked (\(report.checks.joined(separator: ", ")))"
        for warning in report.warnings { out.line("\(file): warning: \(warning)") }
        if report.isClean {
            out.line(
                "\(file): ok, \(checked)"
                    + (report.warnings.isEmpty
                        ? "" : " with \(report.warnings.count) warning\(report.warnings.count == 1 ? "" : "s")"))
            out.flush()
            return
        }
        for finding in report.findings { out.line("\(file): \(finding)") }
        out.line("\(file): damaged, \(checked)")
        out.flush()
        throw ExitCode(ExitStatus.fileProblem.rawValue)
    }
}
