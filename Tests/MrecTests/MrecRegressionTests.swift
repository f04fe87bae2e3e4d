import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// Regression tests for issue #12 that run the tool as a user runs it.
@Suite("mrec: regressions of issue #12", .timeLimit(.minutes(3)))
struct MrecRegressionTests {
    let directory = TemporaryDirectory()

    func table(_ name: String = "t.mrec", count: Int) throws -> String {
        let path = directory.file(name)
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<count).map { Sample(id: Int64($0)) })
        try table.close()
        return path
    }

    @Test("demo --directory never deletes a file it did not make, and replaces its own")
    func demoLeavesForeignFiles() throws {
        let precious = directory.file("points.mrec")
        writeFile(precious, Array("my own data".utf8))
        let refused = mrec("demo", "--directory", directory.path, "--records", "100")
        #expect(refused.0 == .exited(3))
        #expect(refused.2.contains("exists and is not a table made by mrec demo; it is left as it is"), "\(refused.2)")
        #expect(readWholeFile(precious) == Array("my own data".utf8))

        // A real table of the user's own, with other metadata, is left alone too.
        unlink(precious)
        let own = try RecordTable<Sample>.create(path: precious, metadata: ["made by": "me"])
        try own.close()
        #expect(mrec("demo", "--directory", directory.path, "--records", "100").0 == .exited(3))
        #expect(try DynamicRecordTable.open(path: precious).metadata.first?.value == "me")

        // The demo's own table is replaced on the next run.
        unlink(precious)
        #expect(mrec("demo", "--directory", directory.path, "--records", "100").0 == .exited(0))
        let again = mrec("demo", "--directory", directory.path, "--records", "150")
        #expect(again.0 == .exited(0), "\(again.2)")
        #expect(try DynamicRecordTable.open(path: precious).count == 150)
    }

    @Test("hostile numbers on the command line are usage errors (exit 2), never a trap")
    func hostileNumbers() throws {
        let path = try table(count: 10)
        let huge = [
            "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-1", "99999999999999999999999",
            "0x10", "1e3", "",
        ]
        var cases: [[String]] = []
        for number in huge {
            cases.append(["dump", "--range", "0...\(number)", path])
            cases.append(["dump", "--range", "\(number)..", path])
            cases.append(["dump", "--range", "\(number)..<\(number)", path])
            cases.append(["dump", "--range", "..<\(number)", path])
            cases.append(["dump", "--limit", number, "--range", "1..", path])
            cases.append(["dump", "--limit", number, path])
            cases.append(["dump", "--layout", "a:i64", "--offset", number, path])
            cases.append(["dump", "--layout", "a:i64", "--stride", number, path])
            cases.append(["create", directory.file("c.mrec"), "--schema", "a:i64", "--capacity", number])
            cases.append(["demo", "--directory", directory.file("demo-\(cases.count)"), "--records", number])
            cases.append(["dump", "--layout", "a:i64[\(number)]", path])
        }
        for arguments in cases {
            let (end, _, stderr) = mrecArguments(arguments)
            // 0 where the number is valid (Int.max as a limit, a range to the end); otherwise a usage error.
            #expect(
                end == .exited(0) || end == .exited(2) || end == .exited(1),
                "mrec \(arguments.joined(separator: " ")) ended \(end): \(stderr)")
            #expect(
                !stderr.contains("Fatal error") && !stderr.contains("Backtrace"),
                "mrec \(arguments.joined(separator: " ")): \(stderr)")
        }
        #expect(mrec("dump", "--range", "0...9223372036854775807", path).0 == .exited(0))
        #expect(
            mrec("dump", "--limit", "9223372036854775807", "--range", "1..", path).1.split(separator: "\n").count == 10)
        let capacity = mrec(
            "create", directory.file("big.mrec"), "--schema", "a:i64", "--capacity", "9223372036854775807")
        #expect(capacity.0 == .exited(2) && capacity.2.contains("above the format's limit"), "\(capacity.2)")
        #expect(!fileExists(directory.file("big.mrec")))
    }

    @Test("dump of a table truncated underneath it ends with a message and status 3, not SIGBUS")
    func truncatedDuringDump() throws {
        let path = try table(count: 200_000)
        // stdout is a pipe nobody reads yet: dump blocks after 64 KiB, then the file shrinks.
        let dumper = ChildProcess([builtExecutable("mrec"), "dump", "--format", "csv", path])
        _ = dumper.readLine()
        #expect(truncate(path, 8192) == 0)
        _ = dumper.readAll()
        #expect(dumper.wait() == .exited(3))
    }

    @Test("the SIGBUS message reaches stderr")
    func truncationMessage() throws {
        let path = try table(count: 200_000)
        let errors = directory.file("stderr")
        let tool = builtExecutable("mrec")
        // The dump writes into a pipe that `sleep` drains only after the truncation.
        let script =
            "'\(tool)' dump --format csv '\(path)' 2>'\(errors)' | (sleep 1; cat >/dev/null); echo \"status ${PIPESTATUS[0]}\""
        let child = ChildProcess(["/bin/bash", "-c", script])
        usleep(300_000)
        #expect(truncate(path, 8192) == 0)
        #expect(child.readAll() == "status 3")
        let message = String(decoding: readWholeFile(errors), as: UTF8.self)
        #expect(message == "mrec: a file shrank while it was being read (another process truncated it); stopped\n")
    }

    @Test("dump --follow notices that the table shrank, says so, and exits 3")
    func followNoticesShrink() throws {
        let path = try table(count: 5)
        let errors = directory.file("follow-stderr")
        let tool = builtExecutable("mrec")
        let follower = ChildProcess([
            "/bin/sh", "-c",
            "'\(tool)' dump --follow --no-header --fields id '\(path)' 2>'\(errors)'; echo \"status $?\"",
        ])
        var lines: [String] = []
        while lines.count < 5, let line = follower.readLine() { lines.append(line) }
        #expect(lines.map { String($0.drop { $0 == " " }) } == ["0", "1", "2", "3", "4"])
        #expect(truncate(path, 4096) == 0)
        #expect(follower.readLine() == "status 3")
        let message = String(decoding: readWholeFile(errors), as: UTF8.self)
        #expect(message.contains("shrank while it was followed"), "\(message)")
    }

    @Test("dump --follow shows a record the moment a writer process appends it, and says when the writer leaves")
    func followWakesOnAppend() throws {
        let path = try table("follow.mrec", count: 2)
        let errors = directory.file("follow-writer-stderr")
        let tool = builtExecutable("mrec")
        let writer = ChildProcess(helper("table-append-hold", path))
        #expect(writer.readLine() == "writing 2")
        let follower = ChildProcess([
            "/bin/sh", "-c",
            "'\(tool)' dump --follow --no-header --fields id --range '0..<4' '\(path)' 2>'\(errors)'; echo \"status $?\"",
        ])
        #expect(follower.readLine().map { String($0.drop { $0 == " " }) } == "0")
        #expect(follower.readLine().map { String($0.drop { $0 == " " }) } == "1")
        usleep(300_000)  // the follower sleeps on the doorbell now
        let appended = ContinuousClock.now
        writer.writeLine("1")
        #expect(follower.readLine().map { String($0.drop { $0 == " " }) } == "2")
        // Its 250 ms timeout only bounds Ctrl-C: a poll that late would fail this.
        #expect(ContinuousClock.now - appended < .milliseconds(200))
        writer.writeLine("end")  // the writer closes
        #expect(writer.wait() == .exited(0))
        let deadline = ContinuousClock.now + .seconds(10)
        var message = ""
        while !message.contains("has gone") && ContinuousClock.now < deadline {
            usleep(20_000)
            message = String(decoding: readWholeFile(errors), as: UTF8.self)
        }
        #expect(message.contains("the writer of \(path) has gone (closed or died); still following"), "\(message)")
        let next = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        try next.append(Sample(id: 3))
        try next.close()
        #expect(follower.readLine().map { String($0.drop { $0 == " " }) } == "3")
        #expect(follower.readLine() == "status 0")
    }

    @Test("verify says exactly what it read, and warns about text and padding")
    func verifyReportsChecks() throws {
        let path = directory.file("v.mrec")
        #expect(mrec("create", path, "--schema", "id:i64,name:char[3],x:f32@12").0 == .exited(0))
        let rows = directory.file("rows.csv")
        writeFile(rows, Array("id,name,x\n1,abc,1.5\n2,de,2\n".utf8))
        #expect(mrec("import", path, "--csv", rows).0 == .exited(0))
        let clean = mrec("verify", path)
        #expect(clean.0 == .exited(0))
        #expect(clean.1 == "\(path): ok, 2 records checked (every byte read, 1 text field, 1 padding byte)")
        let descriptor = open(path, O_WRONLY)
        var invalid: UInt8 = 0xC3  // a lone UTF-8 lead byte
        #expect(pwrite(descriptor, &invalid, 1, off_t(4096 + 16 + 10)) == 1)
        close(descriptor)
        let warned = mrec("verify", path)
        #expect(warned.0 == .exited(0))
        #expect(warned.1.contains("warning: 1 record: a text field is not valid UTF-8"), "\(warned.1)")
        #expect(
            warned.1.hasSuffix("ok, 2 records checked (every byte read, 1 text field, 1 padding byte) with 1 warning"))
    }

    @Test("import: an extra column is one clear error, or skipped with --ignore-extra-columns")
    func importExtraColumn() throws {
        let path = directory.file("i.mrec")
        #expect(mrec("create", path, "--schema", "id:i64,price:f64,qty:i32").0 == .exited(0))
        let rows = directory.file("rows.csv")
        writeFile(rows, Array(("id,price,qty,side\n" + (0..<30).map { "\($0),1.5,3,B\n" }.joined()).utf8))
        let refused = mrec("import", path, "--csv", rows)
        #expect(refused.0 == .exited(1))
        let lines = refused.2.split(separator: "\n")
        #expect(lines.count == 2, "\(refused.2)")
        #expect(lines.first?.contains("the column 'side' is not a field") == true)
        #expect(!refused.2.contains("values, but the header has"))
        let skipped = mrec("import", path, "--csv", rows, "--ignore-extra-columns")
        #expect(skipped.0 == .exited(0))
        #expect(skipped.1 == "\(path): imported 30 records from \(rows); the table has 30 records; 1 column skipped")
    }

    @Test("impossible selections are usage errors: a range past the end, fields naming nothing")
    func impossibleSelections() throws {
        let path = try table(count: 10)
        let past = mrec("dump", "--range", "20..<30", path)
        #expect(past.0 == .exited(2) && past.2.contains("past the end of \(path) (10 records)"), "\(past.2)")
        #expect(mrec("dump", "--range", "10..", path).0 == .exited(2))
        #expect(mrec("dump", "--range", "5..<3", path).0 == .exited(2))
        #expect(mrec("dump", "--fields", "", path).0 == .exited(2))
        #expect(mrec("dump", "--fields", ",", path).0 == .exited(2))
        // Possible ones still work: partly past the end, and an empty table from the start.
        #expect(mrec("dump", "--no-header", "--range", "8..<30", path).1.split(separator: "\n").count == 2)
        let empty = try table("empty.mrec", count: 0)
        #expect(mrec("dump", "--range", "0..", empty).0 == .exited(0))
    }

    @Test("CSV round trip of a table whose only column is char: empty values survive")
    func singleCharColumnRoundTrip() throws {
        let first = directory.file("chars.mrec")
        #expect(mrec("create", first, "--schema", "name:char[4]").0 == .exited(0))
        let rows = directory.file("rows.csv")
        writeFile(rows, Array(("name\n" + (0..<128).map { $0 % 3 == 0 ? "\"\"\n" : "n\($0 % 100)\n" }.joined()).utf8))
        #expect(mrec("import", first, "--csv", rows).0 == .exited(0))
        #expect(try DynamicRecordTable.open(path: first).count == 128)
        let csv = mrec("dump", "--format", "csv", first).1
        let dumped = directory.file("dumped.csv")
        writeFile(dumped, Array((csv + "\n").utf8))
        let second = directory.file("again.mrec")
        #expect(mrec("create", second, "--schema", "name:char[4]").0 == .exited(0))
        #expect(mrec("import", second, "--csv", dumped).0 == .exited(0))
        #expect(try DynamicRecordTable.open(path: second).count == 128)
        #expect(preadBytes(second, offset: 4096, count: 512) == preadBytes(first, offset: 4096, count: 512))
    }

    @Test("NaN keeps its sign through a CSV round trip; -0.0 and infinities too")
    func nanRoundTrip() throws {
        let first = directory.file("floats.mrec")
        #expect(mrec("create", first, "--schema", "x:f64,y:f32").0 == .exited(0))
        let rows = directory.file("rows.csv")
        writeFile(rows, Array("x,y\n-nan,nan\n-0.0,-inf\n".utf8))
        #expect(mrec("import", first, "--csv", rows).0 == .exited(0))
        #expect(mrec("dump", "--format", "csv", first).1 == "x,y\n-nan,nan\n-0.0,-inf")
    }

    @Test("a metadata key of length 0 is refused by create, and info, dump and verify refuse a file that has one")
    func emptyMetadataKey() throws {
        let created = mrec("create", directory.file("m.mrec"), "--schema", "a:i64", "--metadata", "=value")
        #expect(created.0 == .exited(2))
        #expect(!fileExists(directory.file("m.mrec")))

        // A foreign writer's file with an empty key.
        let path = directory.file("foreign.mrec")
        let header = TableHeader(
            schema: Sample.schema, metadata: [(key: "", value: "v")], flags: 1, versionMinor: 0, dataOffset: 4096)
        writeFile(path, header.encoded(capacity: 128) + [UInt8](repeating: 0, count: 128 * 32))
        for command in ["info", "dump", "verify"] {
            let (end, _, stderr) = mrec(command, path)
            #expect(end == .exited(1), "\(command)")
            #expect(stderr.contains("has an empty key"), "\(command): \(stderr)")
        }
    }
}

/// `mrec` with an argument array: how it ended, its stdout and its stderr.
func mrecArguments(_ arguments: [String]) -> (Termination, String, String) {
    let errors = "/tmp/mrec-stderr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(errors) }
    let command = ([builtExecutable("mrec")] + arguments).map { "'\($0)'" }.joined(separator: " ")
    let (_, output) = run(["/bin/sh", "-c", "\(command) 2>'\(errors)'; echo \"status $?\""])
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let status = Int32(lines.removeLast().dropFirst("status ".count)) ?? -1
    let stderr = String(decoding: preadBytes(errors, offset: 0, count: 1 << 16), as: UTF8.self)
    return (.exited(status), lines.joined(separator: "\n"), stderr.hasSuffix("\n") ? String(stderr.dropLast()) : stderr)
}

/// Issue #14: the migration tool.
@Suite("mrec migrate and schema --diff", .timeLimit(.minutes(3)))
struct MrecMigrateTests {
    let directory = TemporaryDirectory()

    func trades() throws -> String {
        let path = directory.file("trades.mrec")
        #expect(mrec("create", path, "--schema", "id:i64,price:f64,qty:i32,side:u8").0 == .exited(0))
        let rows = directory.file("rows.csv")
        writeFile(rows, Array("id,price,qty,side\n1,101.5,10,1\n2,99.25,-5,2\n3,1e10,70000,0\n".utf8))
        #expect(mrec("import", path, "--csv", rows).0 == .exited(0))
        return path
    }

    @Test("--dry-run prints the plan and changes nothing; then the migration runs and verify passes")
    func planAndMigrate() throws {
        let path = try trades()
        let before = readWholeFile(path)
        let schema = "id:i64,price:f64,qty:i64,side:u8,venue:u16"
        let dry = mrec("migrate", path, "--schema", schema, "--default", "venue=7", "--dry-run")
        #expect(dry.0 == .exited(0))
        #expect(
            dry.1 == """
                plan for \(path): 3 records, stride 24 -> 32
                  kept     id: i64 @ 0 -> id: i64 @ 0
                  kept     price: f64 @ 8 -> price: f64 @ 8
                  widened  qty: i32 @ 16 -> qty: i64 @ 16
                  moved    side: u8 @ 20 -> side: u8 @ 24
                  added    venue: u16 @ 26 = 7
                """)
        #expect(readWholeFile(path) == before)
        let done = mrec("migrate", path, "--schema", schema, "--default", "venue=7")
        #expect(done.0 == .exited(0) && done.1.hasSuffix("migrated \(path): 3 records"))
        #expect(
            mrec("dump", "--format", "csv", path).1
                == "id,price,qty,side,venue\n1,101.5,10,1,7\n2,99.25,-5,2,7\n3,10000000000.0,70000,0,7")
        #expect(mrec("verify", path).0 == .exited(0))
        #expect(mrec("migrate", path, "--schema", schema).1.hasSuffix("has this schema already; nothing to do"))
    }

    @Test(
        "exit statuses: a drop not asked for is 2, a value that does not fit is 1 and changes nothing; --rename and --drop"
    )
    func refusalsAndRenames() throws {
        let path = try trades()
        let before = readWholeFile(path)
        let unasked = mrec("migrate", path, "--schema", "id:i64,cost:f64,qty:i32", "--rename", "price=cost")
        #expect(unasked.0 == .exited(2) && unasked.2.contains("the new schema has no field for 'side'"), "\(unasked.2)")
        let narrow = mrec(
            "migrate", path, "--schema", "id:i64,cost:f64,qty:i16", "--rename", "price=cost", "--drop", "side")
        #expect(narrow.0 == .exited(1))
        #expect(
            narrow.2 == "mrec: migrate '\(path)': record 2, field 'qty': 70000 does not fit in i16; nothing was changed"
        )
        #expect(readWholeFile(path) == before)
        let renamed = mrec(
            "migrate", path, "--schema", "side:u8,id:i64,cost:f64", "--rename", "price=cost", "--drop", "qty")
        #expect(renamed.0 == .exited(0), "\(renamed.2)")
        #expect(renamed.1.contains("moved    price: f64 @ 8 -> cost: f64 @ 16 (renamed)"), "\(renamed.1)")
        #expect(renamed.1.contains("dropped  qty: i32 @ 16"))
        #expect(mrec("dump", "--format", "csv", path).1 == "side,id,cost\n1,1,101.5\n2,2,99.25\n0,3,10000000000.0")
        #expect(mrec("migrate", path, "--schema", "id:i64", "--rename", "nope=id").0 == .exited(2))
        #expect(
            mrec("migrate", path, "--schema", "id:i64,side:u8,cost:f64,venue:u16", "--default", "venue=70000").0
                == .exited(2))
    }

    @Test("schema --diff shows what differs, field by field; 0 when equal, 1 when not")
    func diff() throws {
        let old = try trades()
        let new = directory.file("new.mrec")
        #expect(mrec("create", new, "--schema", "qty:i64,id:i64,price:f64,venue:u16").0 == .exited(0))
        let shown = mrec("schema", "--diff", old, new)
        #expect(shown.0 == .exited(1))
        #expect(
            shown.1 == """
                stride     \(old): 24, \(new): 32
                moved     id: i64 @ 0 -> id: i64 @ 8
                moved     price: f64 @ 8 -> price: f64 @ 16
                changed   qty: i32 @ 16 -> qty: i64 @ 0
                only in    \(old): side: u8 @ 20
                only in    \(new): venue: u16 @ 24
                """)
        let same = mrec("schema", "--diff", old, old)
        #expect(same.0 == .exited(0) && same.1 == "\(old) and \(old) have the same schema")
    }
}

extension MrecMigrateTests {
    @Test("dump --follow says so when the table is migrated under it, and exits 3")
    func followNoticesMigration() throws {
        let path = try trades()
        let errors = directory.file("follow-stderr")
        let tool = builtExecutable("mrec")
        let follower = ChildProcess([
            "/bin/sh", "-c",
            "'\(tool)' dump --follow --no-header --fields id '\(path)' 2>'\(errors)'; echo \"status $?\"",
        ])
        var lines: [String] = []
        while lines.count < 3, let line = follower.readLine() { lines.append(line) }
        #expect(mrec("migrate", path, "--schema", "id:i64,price:f64,qty:i64,side:u8").0 == .exited(0))
        #expect(follower.readLine() == "status 3")
        let message = String(decoding: readWholeFile(errors), as: UTF8.self)
        #expect(message.contains("was replaced while it was followed (a migration)"), "\(message)")
        #expect(!message.contains("a writer opened"), "a migration is not a writer: \(message)")
    }

    @Test("--default of a float beyond the field's range is a usage error; inf is still infinity")
    func floatDefaultsAreRangeChecked() throws {
        let path = try trades()
        let before = readWholeFile(path)
        let huge = mrec(
            "migrate", path, "--schema", "id:i64,price:f64,qty:i32,side:u8,level:f32", "--default", "level=1e400")
        #expect(huge.0 == .exited(2) && huge.2.contains("beyond f32's range"), "\(huge)")
        let f32 = mrec(
            "migrate", path, "--schema", "id:i64,price:f64,qty:i32,side:u8,level:f32", "--default", "level=1e39")
        #expect(f32.0 == .exited(2) && f32.2.contains("beyond f32's range"), "\(f32)")
        #expect(readWholeFile(path) == before)
        let infinite = mrec(
            "migrate", path, "--schema", "id:i64,price:f64,qty:i32,side:u8,level:f32", "--default", "level=-inf")
        #expect(infinite.0 == .exited(0), "\(infinite)")
        #expect(mrec("dump", "--format", "csv", "--fields", "level", path).1 == "level\n-inf\n-inf\n-inf")
    }
}
