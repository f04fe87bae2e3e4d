import Glibc
import TestSupport
import Testing

@testable import RecordTable

// Three releases of an app's record.

@MappedRecord
struct TradeV1: VersionedRecord, Equatable {
    var id: Int64
    var price: Float
    var qty: Int32
    var side: UInt8
    static let schemaVersion = 1
}

@MappedRecord
struct TradeV2: VersionedRecord, RecordDefaults, Equatable {
    var venue: UInt16  // added: its default comes from migrationDefault
    var id: Int64  // moved
    @Field(renamedFrom: "price") var cost: Double  // renamed and widened f32 -> f64
    var qty: Int64  // widened
    var side: UInt8
    static let schemaVersion = 2
    static let migrationDefault = TradeV2(venue: 7, id: 0, cost: 0, qty: 0, side: 0)
}

@MappedRecord
struct TradeV3: VersionedRecord, Equatable {
    var id: Int64
    var notional: Double  // custom: cost × qty
    var buy: Bool  // custom: side == 1
    var venue: UInt16
    static let schemaVersion = 3
}

enum TradePlan: RecordMigrationPlan {
    typealias Current = TradeV3
    static let stages: [MigrationStage] = [
        .lightweight(from: TradeV1.self, to: TradeV2.self),
        .custom(from: TradeV2.self, to: TradeV3.self) { old in
            TradeV3(id: old.id, notional: old.cost * Double(old.qty), buy: old.side == 1, venue: old.venue)
        },
    ]
}

func tradeV1(_ index: Int) -> TradeV1 {
    TradeV1(id: Int64(index), price: Float(index) + 0.5, qty: Int32(index % 1000) - 500, side: UInt8(index % 2))
}

@Suite("Schema evolution: migrate in place, by name, through versions")
struct MigrationTests {
    let directory = TemporaryDirectory()

    func writeV1(_ count: Int, name: String = "trades.mrec") throws -> String {
        let path = directory.file(name)
        let table = try RecordTable<TradeV1>.create(path: path)
        try table.append(contentsOf: (0..<count).map(tradeV1))
        try table.close()
        return path
    }

    @Test(
        "lightweight: added (with the type's default), reordered, widened, renamed by @Field, dropped only when asked")
    func lightweight() throws {
        let path = try writeV1(1000)
        // Opening the old file with the new type is refused, and says how to go on.
        let mismatch = tableError { try RecordTable<TradeV2>.open(path: path, access: .readOnly) }
        #expect(mismatch?.code == .schemaMismatch && mismatch?.message.contains("migrate") == true)

        let report = try RecordTable<TradeV2>.migrate(path: path)
        #expect(report.migrated && report.records == 1000)
        let table = try RecordTable<TradeV2>.open(path: path, access: .readOnly)
        #expect(table.count == 1000)
        for index in [0, 1, 499, 999] {
            let old = tradeV1(index)
            #expect(
                table[index]
                    == TradeV2(venue: 7, id: old.id, cost: Double(old.price), qty: Int64(old.qty), side: old.side))
        }
        #expect(table.metadata.contains { $0.key == TableMigration.versionKey && $0.value == "2" })
        try table.close()
        // Migrating again does nothing.
        #expect(try RecordTable<TradeV2>.migrate(path: path).migrated == false)
        #expect(DynamicRecordTable.openVerified(path).isClean)
    }

    @Test("dropping a field needs asking; an impossible conversion names the field")
    func refusals() throws {
        let path = try writeV1(10)
        let before = readWholeFile(path)
        let lost = try RecordSchema(parsing: "id:i64,price:f32,qty:i32")
        let unasked = tableError { try TableMigration.migrate(path: path, to: lost) }
        #expect(
            unasked?.code == .schemaMismatch && unasked?.message.contains("'side'") == true,
            "\(String(describing: unasked))")
        #expect(sameBytes(readWholeFile(path), before), "the old table changed")
        try TableMigration.migrate(path: path, to: lost, options: MigrationOptions(drops: ["side"]))
        #expect(try DynamicRecordTable.open(path: path).schema == lost)

        let bool = try RecordSchema(parsing: "id:bool,price:f32,qty:i32")
        #expect(
            tableError { try TableMigration.migrate(path: path, to: bool) }?.message.contains(
                "field 'id': i64 cannot become bool by itself") == true)
    }

    @Test("narrowing is checked before anything is written, and the refusal names the first record and field")
    func narrowing() throws {
        let path = try writeV1(1000)
        let before = readWholeFile(path)
        let tooSmall = try RecordSchema(parsing: "id:i8,price:f32,qty:i32,side:u8")
        let refused = tableError { try TableMigration.migrate(path: path, to: tooSmall) }
        #expect(refused?.code == .valueDoesNotFit)
        #expect(refused?.message == "record 128, field 'id': 128 does not fit in i8; nothing was changed")
        #expect(sameBytes(readWholeFile(path), before), "the table changed although the migration was refused")
        // ids 0..<1000 fit in i16, and qty (−500…499) too.
        let fits = try RecordSchema(parsing: "id:i16,price:f32,qty:i16,side:u8")
        try TableMigration.migrate(path: path, to: fits)
        let table = try DynamicRecordTable.open(path: path)
        #expect(table.record(at: 999)["id"] == .int(999) && table.record(at: 1)["qty"] == .int(-499))
        let unsigned = try RecordSchema(parsing: "id:i16,price:f32,qty:u16,side:u8")
        #expect(
            tableError { try TableMigration.migrate(path: path, to: unsigned) }?.message
                == "record 0, field 'qty': -500 does not fit in u16; nothing was changed")
    }

    @Test("widening integers to f64 is checked when they could lose bits; text and bytes widen and narrow")
    func conversions() throws {
        let path = directory.file("mixed.mrec")
        let source = try RecordSchema(parsing: "big:i64,name:char[8],raw:bytes[4],small:u16")
        let table = try DynamicRecordTable.create(path: path, schema: source)
        var record = [UInt8](repeating: 0, count: source.stride)
        record.withUnsafeMutableBytes { $0.storeBytes(of: Int64(1 << 53 + 1), toByteOffset: 0, as: Int64.self) }
        record.replaceSubrange(8..<11, with: Array("abc".utf8))
        record[16] = 0xAB
        try table.append(bytes: record.span.bytes)
        try table.close()
        let inexact = try RecordSchema(parsing: "big:f64,name:char[8],raw:bytes[4],small:u16")
        #expect(
            tableError { try TableMigration.migrate(path: path, to: inexact) }?.message
                == "record 0, field 'big': 9007199254740993 is not exactly representable as f64; nothing was changed")
        let wider = try RecordSchema(parsing: "big:i64,name:char[16],raw:bytes[8],small:f64")
        try TableMigration.migrate(path: path, to: wider)
        let narrower = try RecordSchema(parsing: "big:i64,name:char[3],raw:bytes[1],small:f32")
        try TableMigration.migrate(path: path, to: narrower)
        let migrated = try DynamicRecordTable.open(path: path)
        #expect(migrated.record(at: 0)["name"] == .string("abc"))
        #expect(migrated.record(at: 0)["raw"] == .bytes([0xAB]))
        #expect(migrated.record(at: 0)["small"] == .float(0))
        let tooShort = try RecordSchema(parsing: "big:i64,name:char[2],raw:bytes[1],small:f32")
        #expect(
            tableError { try TableMigration.migrate(path: path, to: tooShort) }?.message
                == "record 0, field 'name': its text has 3 bytes, more than char[2] holds; nothing was changed")
    }

    @Test("a versioned plan takes a V1 file through every stage to V3 in one rewrite; V2 files and V3 files too")
    func versionedPlan() throws {
        let path = try writeV1(500)
        let report = try RecordTable<TradeV3>.migrate(path: path, plan: TradePlan.self)
        #expect(report.migrated && report.records == 500)
        let table = try RecordTable<TradeV3>.open(path: path, access: .readOnly)
        for index in [0, 1, 250, 499] {
            let old = tradeV1(index)
            #expect(
                table[index]
                    == TradeV3(id: old.id, notional: Double(old.price) * Double(old.qty), buy: old.side == 1, venue: 7))
        }
        #expect(table.metadata.contains { $0.key == TableMigration.versionKey && $0.value == "3" })
        try table.close()
        #expect(try RecordTable<TradeV3>.migrate(path: path, plan: TradePlan.self).migrated == false)

        let second = try writeV1(10, name: "v2.mrec")
        try RecordTable<TradeV2>.migrate(path: second)
        try RecordTable<TradeV3>.migrate(path: second, plan: TradePlan.self)
        #expect(try RecordTable<TradeV3>.open(path: second, access: .readOnly)[9].venue == 7)

        // A file of none of the versions is refused.
        let stranger = directory.file("stranger.mrec")
        try RecordTable<Sample>.create(path: stranger).close()
        #expect(
            tableError { try RecordTable<TradeV3>.migrate(path: stranger, plan: TradePlan.self) }?.code
                == .schemaMismatch)
    }

    @Test("a reader opens a file that has fields its type does not declare, without a migration")
    func readWithoutRewriting() throws {
        let path = try writeV1(3)
        struct Narrow: MappedRecord {
            var id: Int64
            var price: Float
            var qty: Int32
            var tail: MappedBytes<8>
            static let schema = RecordSchema(
                Narrow.self,
                fields: [.field("id", \.id), .field("price", \.price), .field("qty", \.qty), .padding(\.tail)])
        }
        let reader = try RecordTable<Narrow>.open(path: path, access: .readOnly)
        #expect(reader[2].id == 2 && reader[2].qty == -498)
        #expect(
            tableError { try RecordTable<Narrow>.open(path: path, access: .readWrite, waitForWriter: .seconds(5)) }?
                .code == .schemaMismatch)
    }

    @Test("a reader following the table while another process migrates it is told: replaced")
    func readerLearnsOfTheReplacement() throws {
        let path = directory.file("followed.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<10_000).map { Sample(id: Int64($0)) })
        try table.close()
        let reader = ChildProcess(helper("table-follow-replaced", path, "20"))
        #expect(reader.readLine() == "following 10000")
        let (end, output) = run(
            helper("table-migrate", path, "id:i64,value:f64,check:u64,flag:bool,tag:char[16],extra:u32"))
        #expect(end == .exited(0) && output == "migrated 10000")
        #expect(reader.readLine() == "replaced")
        #expect(reader.wait() == .exited(0))
        #expect(try DynamicRecordTable.open(path: path).schema.field(named: "extra") != nil)
    }

    @Test("a full disk during a migration leaves the old table untouched, with a clear error")
    func diskFull() throws {
        let mounted = try withSmallFileSystem(in: directory, size: "1m") { mountPoint in
            let path = mountPoint + "/trades.mrec"
            let table = try RecordTable<TradeV1>.create(path: path)
            try table.append(contentsOf: (0..<20_000).map(tradeV1))  // 480 KB: a second, wider copy does not fit
            try table.close()
            let before = readWholeFile(path)
            let error = tableError { try RecordTable<TradeV2>.migrate(path: path) }
            #expect(error?.code == .noSpace, "\(String(describing: error))")
            #expect(sameBytes(readWholeFile(path), before), "the old table changed")
            #expect(directoryListing(mountPoint) == ["trades.mrec"])
        }
        if !mounted { print("skipped: needs root to mount a small tmpfs") }
    }

    @Test(
        "200 kill -9s at random moments of a migration of 100,000 records: the path always holds the whole old or the whole new table"
    )
    func killDuringMigration() throws {
        let count = 100_000
        let pristine = directory.file("pristine.mrec")
        let table = try RecordTable<Sample>.create(path: pristine)
        try table.append(contentsOf: (0..<count).map { Sample(id: Int64($0)) })
        try table.close()
        let original = readWholeFile(pristine)
        let path = directory.file("migrating.mrec")
        let target = "id:i64,value:f64,check:u64,flag:bool,tag:char[16],extra:u32"
        // How long one migration takes, process start included: the median of three.
        let durations = (0..<3).map { _ in
            unlink(path)
            writeFile(path, original)
            let start = ContinuousClock.now
            #expect(run(helper("table-migrate", path, target)).0 == .exited(0))
            return ContinuousClock.now - start
        }
        let duration = durations.sorted()[1]
        var generator = SystemRandomNumberGenerator()
        var old = 0, new = 0
        for round in 0..<200 {
            unlink(path)
            writeFile(path, original)
            let migrator = ChildProcess(helper("table-migrate", path, target))
            let microseconds =
                Double(duration.components.seconds) * 1e6 + Double(duration.components.attoseconds) / 1e12
            // Up to 1.6 times the median: early kills must leave the old table, late ones the new.
            usleep(UInt32(Double.random(in: 0...1.6, using: &generator) * microseconds))
            kill(migrator.pid, SIGKILL)
            _ = migrator.wait()
            let verify = mrecVerify(path)
            #expect(
                verify.hasPrefix("\(path): ok, \(count) records checked (every byte read")
                    && !verify.contains("warning"),
                "round \(round): \(verify)")
            let opened = try DynamicRecordTable.open(path: path)
            if opened.schema == Sample.schema {
                #expect(sameBytes(readWholeFile(path), original), "round \(round): the old table changed")
                old += 1
            } else {
                #expect(opened.count == count)
                for index in [0, count / 2, count - 1] {
                    let record = opened.record(at: index)
                    #expect(
                        record["id"] == .int(Int64(index))
                            && record["check"] == .uint(Sample.expectedCheck(Int64(index)))
                            && record["extra"] == .uint(0),
                        "round \(round): record \(index)")
                }
                new += 1
            }
            try opened.close()
        }
        // Leftovers of migrations killed between link and rename are removed by the next one.
        writeFile(path, original)
        let report = try TableMigration.migrate(path: path, to: try RecordSchema(parsing: target))
        let leftovers = directoryListing(directory.path)!.filter { $0.hasSuffix(".replacing") }
        #expect(leftovers.isEmpty, "\(leftovers)")
        print(
            "killDuringMigration: 200 kills over \(duration): \(old) left the old table, \(new) the new one; \(report.removedLeftovers.count) leftovers removed"
        )
        #expect(old > 0 && new > 0, "the kills did not land on both sides of the rename")
    }
}

extension DynamicRecordTable {
    /// The verification report of the table at `path`.
    static func openVerified(_ path: String) -> VerificationReport {
        guard let table = try? DynamicRecordTable.open(path: path) else {
            return VerificationReport(findings: ["cannot open"], warnings: [], checkedRecords: 0, checks: [])
        }
        defer { try? table.close() }
        return table.verify()
    }
}

/// `mrec verify PATH`'s standard output.
func mrecVerify(_ path: String) -> String {
    run(["/bin/sh", "-c", "'\(builtExecutable("mrec"))' verify '\(path)' 2>&1"]).1
}

/// Whether two byte arrays are equal, compared with memcmp (fast in debug builds too).
func sameBytes(_ first: [UInt8], _ second: [UInt8]) -> Bool {
    guard first.count == second.count else { return false }
    guard !first.isEmpty else { return true }
    return first.withUnsafeBytes { a in
        second.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
    }
}
