import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// Regression tests for issue #12, items 7, 9, 10, 15 and 17 at the library level.
@Suite("Record tables: regressions of issue #12")
struct DefectRegressionTests {
    let directory = TemporaryDirectory()

    @Test(
        "a capacity no file can hold is invalidArgument, not an overflow trap",
        arguments: [Int.max, Int.max / 32, 1 << 48])
    func hugeCapacity(capacity: Int) {
        let path = directory.file("huge.mrec")
        let error = tableError { try RecordTable<Sample>.create(path: path, capacity: capacity) }
        #expect(error?.code == .invalidArgument, "\(String(describing: error))")
        #expect(!fileExists(path))
    }

    @Test("a metadata key of length 0 is corrupt when read, as FORMAT.md says (keys are 1 to 255 bytes)")
    func emptyMetadataKeyIsRefused() throws {
        let path = directory.file("empty-key.mrec")
        // Written below the API, which refuses such keys: as a foreign writer would.
        let header = TableHeader(
            schema: Sample.schema, metadata: [(key: "", value: "v")], flags: 1,
            versionMinor: 0, dataOffset: 4096)
        writeFile(path, header.encoded(capacity: 128) + [UInt8](repeating: 0, count: 128 * 32))
        let error = tableError { try DynamicRecordTable.open(path: path) }
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("empty key") == true, "\(String(describing: error))")
    }

    @Test("a file at the path is always a whole table: readers racing 200 creations never see a partial one")
    func creationIsAtomic() throws {
        let creator = ChildProcess(helper("table-create-many", directory.path, "200"))
        var seen = 0, problems: [String] = []
        var done = false
        while !done {
            done = fileExists(directory.file("t199.mrec"))
            for index in 0..<200 {
                do {
                    let table = try DynamicRecordTable.open(path: directory.file("t\(index).mrec"))
                    seen += 1
                    try table.close()
                } catch  where error.code == .notFound {
                    continue
                } catch {
                    problems.append("t\(index): \(error)")
                }
            }
        }
        #expect(creator.readLine() == "created")
        #expect(creator.wait() == .exited(0))
        #expect(problems.isEmpty, "\(problems.prefix(3))")
        #expect(seen > 0)
    }

    @Test("a reader's refresh of a truncated file is `truncated`, before it can touch a missing page")
    func refreshNoticesTruncation() throws {
        let path = directory.file("shrinks.mrec")
        let writer = try RecordTable<Sample>.create(path: path)
        try writer.append(contentsOf: (0..<1000).map { Sample(id: Int64($0)) })
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(reader.count == 1000)
        #expect(truncate(path, 4096) == 0)
        let error = tableError { try reader.refresh() }
        #expect(error?.code == .truncated, "\(String(describing: error))")
        let waited = tableError { try reader.waitForRecords(beyond: 1000, timeout: .seconds(5)) }
        #expect(waited?.code == .truncated)
        try reader.close()
        try? writer.close()
    }

    @Test("verify reads every record: text and padding are checked even without Bool fields")
    func verifyReadsEveryRecord() throws {
        let path = directory.file("verify.mrec")
        // id:i64 at 0, name:char[5] at 8, 3 padding bytes, value:f32 at 16, 4 padding bytes: stride 24.
        let schema = try RecordSchema(parsing: "id:i64,name:char[5],value:f32@16", stride: 24)
        let table = try DynamicRecordTable.create(path: path, schema: schema)
        var record = [UInt8](repeating: 0, count: 24)
        for index in 0..<10 {
            record[0] = UInt8(index)
            record[8] = UInt8(ascii: "a")
            try table.append(bytes: record.span.bytes)
        }
        try table.close()
        let clean = try DynamicRecordTable.open(path: path)
        let report = clean.verify()
        #expect(report.isClean && report.warnings.isEmpty)
        #expect(report.checkedRecords == 10)
        #expect(report.checks == ["every byte read", "1 text field", "7 padding bytes"])
        try clean.close()

        // Damage record 3's text (invalid UTF-8) and record 7's padding, below the API.
        let descriptor = open(path, O_WRONLY)
        var invalid: UInt8 = 0xFF, garbage: UInt8 = 0xAA
        #expect(pwrite(descriptor, &invalid, 1, off_t(4096 + 3 * 24 + 9)) == 1)
        #expect(pwrite(descriptor, &garbage, 1, off_t(4096 + 7 * 24 + 13)) == 1)
        close(descriptor)
        let damaged = try DynamicRecordTable.open(path: path)
        let second = damaged.verify()
        #expect(second.isClean)  // warnings, not damage
        #expect(second.warnings.count == 2)
        #expect(second.warnings.first?.contains("record 3 (name)") == true, "\(second.warnings)")
        #expect(second.warnings.last?.contains("record 7 (byte 13)") == true, "\(second.warnings)")
        try damaged.close()
    }
}
