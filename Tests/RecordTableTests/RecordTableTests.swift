import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@testable import RecordTable

/// Runs `body` and returns the RecordTableError it throws, or nil.
func tableError<R>(_ body: () throws -> R, sourceLocation: SourceLocation = #_sourceLocation) -> RecordTableError? {
    do {
        _ = try body()
        return nil
    } catch let error as RecordTableError {
        return error
    } catch {
        Issue.record("expected a RecordTableError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Sample with `value` as a Float and no tag: a different layout.
struct OtherSample: MappedRecord {
    var id: Int64
    var value: Float
    var check: UInt64
    var flag: Bool
    var extra: UInt8
    static let schema = RecordSchema(
        OtherSample.self,
        fields: [
            .field("id", \.id), .field("value", \.value), .field("check", \.check), .field("flag", \.flag),
            .field("extra", \.extra),
        ])
}

@Suite("Record tables: one process")
struct RecordTableTests {
    let directory = TemporaryDirectory()

    @Test("append, read, reopen: records, count and metadata persist")
    func roundTrip() throws {
        let path = directory.file("samples.mrec")
        let table = try RecordTable<Sample>.create(path: path, metadata: ["source": "test", "unit": "m/s"])
        for id in 0..<1000 { try table.append(Sample(id: Int64(id))) }
        try table.append(contentsOf: (1000..<6000).map { Sample(id: Int64($0)) })
        #expect(table.count == 6000)
        #expect(table.indices.allSatisfy { table[$0].isValid(at: $0) })
        try table.close()
        #expect(table.isClosed)

        let reopened = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        #expect(reopened.count == 6000)
        #expect(reopened.metadata.map(\.key) == ["source", "unit"])
        #expect(reopened.metadata.last?.value == "m/s")
        reopened[17] = Sample(id: 99_999)
        try reopened.removeLast(10)
        try reopened.close()

        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(reader.count == 5990)
        #expect(reader[17] == Sample(id: 99_999))
        #expect(reader[5989].isValid(at: 5989))
        #expect(reader.isWritable == false)
    }

    @Test("the table is a RandomAccessCollection: for-in, slices and filter without copying")
    func collection() throws {
        let table = try RecordTable<Sample>.create(path: directory.file("c.mrec"))
        try table.append(contentsOf: (0..<100).map { Sample(id: Int64($0)) })
        var sum: Int64 = 0
        for record in table { sum += record.id }
        #expect(sum == 4950)
        let slice = table[10..<20]
        #expect(slice.count == 10 && slice.first?.id == 10 && slice.last?.id == 19)
        #expect(table.filter { $0.flag }.count == 50)
        #expect(table.map(\.id).reversed().first == 99)
        #expect(table.firstIndex { $0.id == 42 } == 42)
    }

    @Test("growth remaps transparently; reserveCapacity avoids growth")
    func growth() throws {
        let path = directory.file("g.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        let initialCapacity = table.capacity
        for id in 0..<200_000 { try table.append(Sample(id: Int64(id))) }
        #expect(table.capacity >= 200_000 && table.capacity > initialCapacity)
        #expect(table[0].isValid(at: 0) && table[199_999].isValid(at: 199_999))
        try table.reserveCapacity(1_000_000)
        #expect(table.capacity >= 1_000_000)
        #expect(Int(fileStatus(path)!.st_size) >= 4096 + 1_000_000 * 32)
        try table.removeAll()
        #expect(table.isEmpty)
    }

    @Test("opening with a different Swift type names each differing field")
    func schemaMismatch() throws {
        let path = directory.file("s.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let error = tableError {
            try RecordTable<OtherSample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        }
        #expect(error?.code == .schemaMismatch)
        let message = error?.message ?? ""
        #expect(message.contains("field 'value': the file has value: f64 @ 8, OtherSample has value: f32 @ 8"))
        #expect(message.contains("field 'tag': in the file (tag: char[7] @ 25), not in OtherSample"))
        #expect(message.contains("field 'extra': in OtherSample (extra: u8 @ 25), not in the file"))
        // The refused open released the writer lock.
        try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5)).close()
    }

    @Test("a Bool byte other than 0 or 1 reads as true, fails zero-copy access, and verify reports it")
    func damagedBool() throws {
        let path = directory.file("b.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<3).map { Sample(id: Int64($0)) })
        try table.close()
        let descriptor = open(path, O_WRONLY)
        var two: UInt8 = 2
        #expect(pwrite(descriptor, &two, 1, off_t(4096 + 32 + 24)) == 1)  // record 1's flag
        close(descriptor)

        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(reader[1].flag == true)
        #expect(reader[1].id == 1)
        #expect(tableError { try reader.withRecords { $0.count } }?.code == .corrupt)
        #expect(try reader.withRecords(in: 2..<3) { $0[0].id } == 2)

        let dynamic = try DynamicRecordTable.open(path: path)
        #expect(dynamic.record(at: 1)["flag"] == .invalidBool(2))
        let report = dynamic.verify()
        #expect(report.findings == ["1 record: a Bool field holds a byte other than 0 or 1: record 1 (flag)"])
    }

    @Test("zero-copy spans see the records in place")
    func spans() throws {
        let table = try RecordTable<Sample>.create(path: directory.file("z.mrec"))
        try table.append(contentsOf: (0..<1000).map { Sample(id: Int64($0)) })
        let sum = try table.withRecords { span in span.indices.reduce(0.0) { $0 + span[$1].value } }
        #expect(sum == table.reduce(0.0) { $0 + $1.value })
        #expect(try table.withRecords(in: 500..<510) { $0[9].id } == 509)
    }

    @Test("growing while records are borrowed traps")
    func growWhileBorrowedTraps() async {
        await #expect(processExitsWith: .failure) {
            // The child traps, so no defer of its runs: the name goes at once, the open table stays.
            let path = "/tmp/mapped-records-borrow-\(getpid()).mrec"
            let table = try RecordTable<Sample>.create(path: path)
            unlink(path)
            try table.withRecords { _ in try? table.reserveCapacity(1 << 20) }
        }
    }

    @Test("the untyped table decodes every field through the stored schema, and can write")
    func dynamicTable() throws {
        let path = directory.file("d.mrec")
        let typed = try RecordTable<Sample>.create(path: path)
        try typed.append(Sample(id: 7))
        try typed.close()
        let table = try DynamicRecordTable.open(path: path)
        let record = table.record(at: 0)
        #expect(record["id"] == .int(7))
        #expect(record["value"] == .float(3.5))
        #expect(record["check"] == .uint(Sample.expectedCheck(7)))
        #expect(record["flag"] == .bool(false))
        #expect(record["tag"] == .string("r7"))
        #expect(record["missing"] == nil)
        #expect(table.schema == Sample.schema)
        #expect(table.dataOffset == 4096)
        #expect(table.formatVersion == "1.2")
        try table.close()

        let copyPath = directory.file("copy.mrec")
        let copy = try DynamicRecordTable.create(path: copyPath, schema: Sample.schema)
        try copy.append(bytes: record.bytes.span.bytes)
        try copy.close()
        #expect(try RecordTable<Sample>.open(path: copyPath, access: .readOnly)[0] == Sample(id: 7))
    }

    @Test("create refuses an existing file; open reports missing, empty, foreign and directory paths")
    func openErrors() throws {
        let path = directory.file("exists.mrec")
        try RecordTable<Sample>.create(path: path).close()
        #expect(tableError { try RecordTable<Sample>.create(path: path) }?.code == .alreadyExists)
        #expect(tableError { try RecordTable<Sample>.open(path: directory.file("none")) }?.code == .notFound)
        writeFile(directory.file("empty"), [])
        let empty = tableError { try RecordTable<Sample>.open(path: directory.file("empty")) }
        #expect(empty?.code == .notATable)
        #expect(empty?.message == "the file is empty, not a record table")
        writeFile(directory.file("foreign"), Array("hello, this is not a table".utf8))
        #expect(tableError { try DynamicRecordTable.open(path: directory.file("foreign")) }?.code == .notATable)
        #expect(tableError { try DynamicRecordTable.open(path: directory.path) }?.code == .isDirectory)
    }

    @Test("a durable commit survives a reboot; uncommitted appends do not, but do survive a process crash")
    func bootIdentifierRule() throws {
        let path = directory.file("boot.mrec")
        let table = try RecordTable<Sample>.create(path: path, durability: .batch)
        try table.append(contentsOf: (0..<100).map { Sample(id: Int64($0)) })
        try table.commit()
        #expect(table.committedCount == 100)
        // A writer process appends 50 more and is killed before committing them.
        try table.close()
        let writer = ChildProcess(helper("table-writer", path, "1000000", "batch"))
        #expect(writer.readLine() == "open 100")
        while let line = writer.readLine(), line != "ack 150" {}
        kill(writer.pid, SIGKILL)
        writer.wait()

        let sameBoot = try TableStorage.open(path: path, writable: false, durability: .none, waitForWriter: nil)
        #expect(sameBoot.count >= 150)  // the process crash lost nothing acknowledged
        let otherBoot = try TableStorage.open(
            path: path, writable: false, durability: .none, waitForWriter: nil,
            bootIdentifier: [UInt8](repeating: 7, count: 16))
        #expect(otherBoot.count == 100)  // after a reboot, only the commit point counts
    }

    @Test("everyAppend commits each append; batch commits on commit() and close()")
    func durabilityModes() throws {
        let every = try RecordTable<Sample>.create(path: directory.file("e.mrec"), durability: .everyAppend)
        for id in 0..<5 {
            try every.append(Sample(id: Int64(id)))
            #expect(every.committedCount == id + 1)
        }
        let batch = try RecordTable<Sample>.create(path: directory.file("b.mrec"), durability: .batch)
        try batch.append(contentsOf: (0..<5).map { Sample(id: Int64($0)) })
        #expect(batch.committedCount == 0)
        try batch.commit()
        #expect(batch.committedCount == 5)
        let none = try RecordTable<Sample>.create(path: directory.file("n.mrec"), durability: .none)
        try none.append(Sample(id: 0))
        try none.close()
        #expect(try RecordTable<Sample>.open(path: directory.file("n.mrec"), access: .readOnly).committedCount == 1)
    }

    @Test("bad metadata is invalidArgument")
    func badMetadata() {
        let error = tableError { try RecordTable<Sample>.create(path: directory.file("m.mrec"), metadata: ["": "x"]) }
        #expect(error?.code == .invalidArgument)
    }

    @Test("reading past the count traps")
    func indexPastCountTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            // The child traps, so no defer of its runs: the name goes at once, the open table stays.
            let path = "/tmp/mapped-records-index-\(getpid()).mrec"
            let table = try RecordTable<Sample>.create(path: path)
            unlink(path)
            try table.append(Sample(id: 0))
            _ = table[1]
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("RecordTable: index 1 is out of range for a table of 1 records"))
    }

    @Test("a reader's fast paths follow its count both ways: records appended are read, records removed trap")
    func readerLimitsFollowTheCount() async {
        // The child traps with its file still named (a reader refuses a file whose name went);
        // the path is derived from this process's id, so this process removes it afterwards.
        let leftover = "/tmp/mapped-records-limits-\(getpid()).mrec"
        defer { unlink(leftover) }
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let path = "/tmp/mapped-records-limits-\(getppid()).mrec"
            // A record without Bools, so that reads below the load limit take the plain path.
            let writer = try RecordTable<OldSample>.create(path: path)
            try writer.append(contentsOf: (0..<8).map { OldSample(id: Int64($0)) })
            let reader = try RecordTable<OldSample>.open(path: path)  // its limits: 8 records
            try writer.append(contentsOf: (8..<10).map { OldSample(id: Int64($0)) })
            guard try reader.refresh() == 10, reader[9].id == 9 else { exit(0) }  // exit 0 fails the test
            try writer.removeLast(5)
            try writer.append(OldSample(id: 50))
            guard try reader.refresh() == 6, reader[5].id == 50 else { exit(0) }
            _ = reader[7]  // removed: must trap, not read what the mapping still holds
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("RecordTable: index 7 is out of range for a table of 6 records"), "\(message)")
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        let check = Array("123456789".utf8)
        #expect(unsafe check.withUnsafeBytes { unsafe CRC32C.portableChecksum($0) } == 0xE306_9283)
    }

    @Test("padding runs are the bytes no field covers, for 500 random layouts")
    func paddingRunsMatchCoverage() throws {
        var state: UInt64 = 7
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(state >> 33) % bound
        }
        let types: [FieldType] = [.int8, .int16, .int32, .int64, .float64, .bool, .char]
        for _ in 0..<500 {
            // Fields placed one after another with random gaps, then listed in a random order.
            var fields: [RecordField] = []
            var offset = next(3)
            for index in 0..<(1 + next(6)) {
                let type = types[next(types.count)]
                let count = type == .char ? 1 + next(5) : 1
                offset = (offset + type.size - 1) / type.size * type.size
                fields.append(RecordField(name: "f\(index)", type: type, offset: offset, count: count))
                offset += type.size * count + next(4)
            }
            for index in fields.indices.reversed() { fields.swapAt(index, next(index + 1)) }
            let stride = (offset + 7) / 8 * 8
            let schema = try RecordSchema(fields: fields, stride: stride, alignment: 8)
            var covered = [Bool](repeating: false, count: stride)
            for field in fields { for byte in field.offset..<field.offset + field.size { covered[byte] = true } }
            var expected: [Int] = []
            for byte in 0..<stride where !covered[byte] { expected.append(byte) }
            let runs = schema.paddingRuns
            #expect(runs.flatMap { $0.offset..<$0.offset + $0.length } == expected, "\(schema)")
            #expect(zip(runs, runs.dropFirst()).allSatisfy { $0.offset + $0.length < $1.offset }, "runs merge")
        }
    }

    @Test("the CPU's CRC instruction and the table agree at every length, alignment and split")
    func crcInstructionMatchesTable() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<4096).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        unsafe bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 56, 63, 64, 511, 512, 1000, 4000] {
                    let slice = unsafe UnsafeRawBufferPointer(rebasing: all[start..<start + length])
                    let expected = unsafe CRC32C.portableChecksum(slice)
                    #expect(unsafe CRC32C.checksum(slice) == expected, "start \(start), length \(length)")
                    // Continuing from a split gives the checksum of the whole.
                    let split = length / 3
                    let first = unsafe CRC32C.checksum(UnsafeRawBufferPointer(rebasing: slice[0..<split]))
                    let whole = unsafe CRC32C.checksum(
                        UnsafeRawBufferPointer(rebasing: slice[split..<length]), continuing: first)
                    #expect(whole == expected, "start \(start), length \(length), split \(split)")
                }
            }
        }
    }

    @Test("the live count's check catches any single damaged byte")
    func liveCountCheck() {
        for count in [0, 1, 255, 65_536, 123_456_789, LiveCount.maximum] {
            let word = LiveCount.word(count)
            #expect(LiveCount.count(word) == count)
            for byte in 0..<8 {
                for flip in [UInt64(1), 0x80, 0xFF] {
                    #expect(LiveCount.count(word ^ flip << (8 * UInt64(byte))) == nil)
                }
            }
        }
    }
}

@Suite("Schemas written as text")
struct SchemaTextTests {
    @Test("fields follow C alignment; arrays, explicit offsets and strides")
    func parsing() throws {
        let schema = try RecordSchema(parsing: "id:i64, flag:bool, pos:f32[3], name:char[5], count:u16")
        #expect(schema.fields.map(\.offset) == [0, 8, 12, 24, 30])
        #expect(schema.fields.map(\.count) == [1, 1, 3, 5, 1])
        #expect(schema.stride == 32 && schema.alignment == 8)
        #expect(try RecordSchema(parsing: schema.specification) == schema)

        let pixel = try RecordSchema(parsing: "red:i16,green:i16,blue:i16,alpha:i16")
        #expect(pixel.stride == 8 && pixel.alignment == 2)
        let explicit = try RecordSchema(parsing: "a:u8@3,b:u32@4", stride: 10)
        #expect(explicit.fields.map(\.offset) == [3, 4] && explicit.stride == 10 && explicit.alignment == 2)

        // The schema Sample declares from key paths reads back from its text.
        #expect(try RecordSchema(parsing: Sample.schema.specification, stride: Sample.schema.stride) == Sample.schema)
    }

    @Test("bad text is a SchemaProblem naming the field")
    func problems() {
        func problem(_ text: String, stride: Int? = nil) -> String? {
            do { _ = try RecordSchema(parsing: text, stride: stride); return nil } catch { return error.description }
        }
        #expect(problem("id") == "field 1 ('id'): not name:type")
        #expect(
            problem("id:i64,x:float")
                == "field 2 ('x:float'): unknown type 'float'; the types are i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, bytes, char"
        )
        #expect(problem("v:f32[0]") == "field 1 ('v:f32[0]'): the count in [ ] is not a number from 1 to 16777216")
        #expect(problem("v:f32[x") == "field 1 ('v:f32[x'): the count in [ ] is not a number from 1 to 16777216")
        #expect(problem("a:u8@-1") == "field 1 ('a:u8@-1'): the offset after @ is not a number from 0 to 16777216")
        #expect(problem("a:u32,b:u32@2") == "fields 'a' and 'b' overlap")
        #expect(problem("a:i64,a:i8") == "the field name 'a' appears twice")
        #expect(problem("") == "field 1 (''): not name:type")
        #expect(problem("a:i64", stride: 4) == "field 'a' (8 bytes at offset 0) overflows the stride 4")
        #expect(problem(":i64") == "the field name '' is not 1 to 47 bytes without NUL")
    }
}
