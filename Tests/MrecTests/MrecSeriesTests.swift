import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// `mrec info`, `dump [--follow]` and `verify` on a series' directory (issue #26).
@Suite("mrec on a series of tables", .timeLimit(.minutes(3)))
struct MrecSeriesTests {
    let directory = TemporaryDirectory()

    /// A series of 25 Samples, 10 to a file: files 1 and 2 sealed, file 3 open.
    func series() throws -> String {
        let path = directory.file("trades")
        let series = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(10))
        for id in 0..<25 { try series.append(Sample(id: Int64(id))) }
        try series.close()
        return path
    }

    @Test("info lists the files, their counts and seals; --json too")
    func info() throws {
        let path = try series()
        let (end, output, _) = mrec("info", path)
        #expect(end == .exited(0))
        #expect(output.contains("files           3 (00000001.mrec to 00000003.mrec)"), "\(output)")
        #expect(output.contains("records         25, stride 32"), "\(output)")
        #expect(output.contains("  file 1        10 records          sealed, continues in file 2"), "\(output)")
        #expect(output.contains("  file 3        5 records           open for appending"), "\(output)")
        let json = mrec("info", "--json", path).1
        #expect(json.contains("\"records\":25"), "\(json)")
        #expect(
            json.contains(
                "\"file\":2,\"path\":\(jsonQuoted(path + "/00000002.mrec")),\"count\":10,\"sealed\":{\"next\":3}}"),
            "\(json)")
        #expect(mrec("info", directory.file("missing")).0 == .exited(3))
    }

    @Test("dump prints the files' records in order; verify finds an unsealed file in the middle")
    func dumpAndVerify() throws {
        let path = try series()
        let (end, output, _) = mrec("dump", "--format", "csv", "--fields", "id", "--no-header", path)
        #expect(end == .exited(0))
        #expect(output.split(separator: "\n") == (0..<25).map { Substring(String($0)) })
        let ranged = mrec("dump", "--format", "csv", "--fields", "id", "--no-header", "--range", "8..<12", path).1
        #expect(ranged.split(separator: "\n") == ["8", "9", "10", "11"])
        let verified = mrec("verify", path)
        #expect(verified.0 == .exited(0))
        #expect(verified.1.hasSuffix("\(path): ok, 3 files, 25 records"), "\(verified.1)")
        // Damage: file 1 loses its seal.
        let descriptor = open(path + "/00000001.mrec", O_WRONLY | O_CLOEXEC)
        var zero: UInt64 = 0
        #expect(pwrite(descriptor, &zero, 8, off_t(TableFormat.sealWordOffset)) == 8)
        close(descriptor)
        let damaged = mrec("verify", path)
        #expect(damaged.0 == .exited(1))
        #expect(damaged.1.contains("00000001.mrec: not sealed, though file 2 follows it"), "\(damaged.1)")
    }

    @Test("dump --follow follows the series across rolls")
    func follow() throws {
        let path = try series()
        let dumper = ChildProcess([
            builtExecutable("mrec"), "dump", "--follow", "--format", "csv", "--fields", "id", "--no-header", path,
        ])
        for id in 0..<25 { #expect(dumper.readLine() == String(id)) }
        let writer = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(10))
        for id in 25..<60 { try writer.append(Sample(id: Int64(id))) }
        for id in 25..<60 { #expect(dumper.readLine() == String(id)) }
        try writer.close()
        kill(dumper.pid, SIGINT)
        #expect(dumper.wait() == .exited(0))
    }
}

/// `text` as a JSON string literal (no characters that need escapes in the tests' paths).
func jsonQuoted(_ text: String) -> String { "\"" + text + "\"" }
