import Glibc
import MappedRegistry
import MemoryMappedFiles
import RecordTable
import TestSupport
import Testing

/// Runs mrec with `arguments`; returns how it ended, its stdout and its stderr.
func mrec(_ arguments: String...) -> (Termination, String, String) {
    mrecArguments(arguments)
}

@Suite("mrec, run as a user runs it", .timeLimit(.minutes(3)))
struct MrecTests {
    let directory = TemporaryDirectory()

    func sampleTable(_ count: Int = 3) throws -> String {
        let path = directory.file("samples.mrec")
        let table = try RecordTable<Sample>.create(path: path, metadata: ["unit": "m"])
        try table.append(contentsOf: (0..<count).map { Sample(id: Int64($0)) })
        try table.close()
        return path
    }

    @Test("info shows the header and schema; --json is machine-readable")
    func info() throws {
        let path = try sampleTable()
        let (end, output, _) = mrec("info", path)
        #expect(end == .exited(0))
        #expect(
            output == """
                file            \(path)
                size            8192 bytes
                format          version 1.2, header checksum valid
                durability      batch (as created)
                records         3 of capacity 128, stride 32, alignment 8
                data offset     4096
                commit point    generation 2, 3 records
                writer          none
                fields
                  id              i64         offset 0
                  value           f64         offset 8
                  check           u64         offset 16
                  flag            bool        offset 24
                  tag             char[7]     offset 25
                metadata
                  unit = m
                """)
        let (_, json, _) = mrec("info", "--json", path)
        #expect(json.hasPrefix("{\"path\":\"\(path)\",\"fileSize\":8192,\"formatVersion\":\"1.2\""))
        #expect(json.contains("\"fields\":[{\"name\":\"id\",\"type\":\"i64\",\"offset\":0,\"count\":1},"))
        #expect(json.hasSuffix("\"metadata\":{\"unit\":\"m\"}}"))
    }

    @Test("dump in every format, with fields, ranges and limits")
    func dump() throws {
        let path = try sampleTable()
        #expect(
            mrec("dump", path).1 == """
                id  value                 check   flag  tag
                 0    0.0            3735928559   true   r0
                 1    0.5  11400714819903931130  false   r1
                 2    1.0   4354685561206294213   true   r2
                """)
        #expect(
            mrec("dump", "--format", "csv", "--fields", "id,value,tag", "--range", "1..<3", path).1
                == "id,value,tag\n1,0.5,r1\n2,1.0,r2")
        #expect(mrec("dump", "--format", "csv", "--no-header", "--range", "2...2", "--fields", "id", path).1 == "2")
        #expect(
            mrec("dump", "--format", "jsonl", "--limit", "1", path).1
                == "{\"id\":0,\"value\":0.0,\"check\":3735928559,\"flag\":true,\"tag\":\"r0\"}")
        #expect(
            mrec("dump", "--format", "hex", "--range", "1..", "--limit", "1", path).1 == """
                # record: byte offset in the file, then the bytes; | marks field boundaries
                4128: |01 00 00 00 00 00 00 00 |00 00 00 00 00 00 e0 3f |fa c2 e7 a1 b9 79 37 9e |00 |72 31 00 00 00 00 00
                """)
    }

    @Test("errors: one line on stderr naming the file, and documented exit statuses")
    func errors() throws {
        let path = try sampleTable()
        let missing = mrec("info", directory.file("missing.mrec"))
        #expect(missing.0 == .exited(3))
        #expect(
            missing.2
                == "mrec: open '\(directory.file("missing.mrec"))': the file does not exist (open: No such file or directory, errno 2)"
        )

        writeFile(directory.file("foreign"), Array("not a table at all".utf8))
        let foreign = mrec("dump", directory.file("foreign"))
        #expect(foreign.0 == .exited(1))
        #expect(foreign.2.contains("does not start with the magic bytes of a record table"))

        var bytes = preadBytes(path, offset: 0, count: 8192)
        bytes[12] = 2  // a newer major version
        writeFile(directory.file("future.mrec"), bytes)
        let future = mrec("info", directory.file("future.mrec"))
        #expect(future.0 == .exited(1))
        #expect(future.2.contains("it has format version 2.2; this library reads version 1.x"))

        #expect(mrec("dump", "--fields", "nope", path).0 == .exited(2))
        #expect(mrec("dump", "--range", "x..y", path).0 == .exited(2))
        #expect(mrec("dump", "--format", "xml", path).0 == .exited(2))  // ArgumentParser usage errors too
    }

    @Test("verify: 0 for a clean table, 1 with the finding for a damaged one; the tool never writes")
    func verify() throws {
        let path = try sampleTable()
        let before = preadBytes(path, offset: 0, count: 8192)
        let clean = mrec("verify", path)
        #expect(
            clean.0 == .exited(0)
                && clean.1 == "\(path): ok, 3 records checked (every byte read, 1 Bool field, 1 text field)")
        #expect(preadBytes(path, offset: 0, count: 8192) == before)
        var bytes = before
        bytes[4096 + 32 + 24] = 7  // record 1's Bool
        writeFile(path, bytes)
        let damaged = mrec("verify", path)
        #expect(damaged.0 == .exited(1))
        #expect(
            damaged.1 == """
                \(path): 1 record: a Bool field holds a byte other than 0 or 1: record 1 (flag)
                \(path): damaged, 3 records checked (every byte read, 1 Bool field, 1 text field)
                """)
    }

    @Test("schema --numpy runs in Python; --swift declares the struct")
    func schema() throws {
        let path = try sampleTable()
        let swift = mrec("schema", "--swift", path).1
        #expect(swift.contains("@MappedRecord\nstruct Record {\n    var id: Int64\n"))
        #expect(swift.contains("    var tag: MappedString<7>\n}"))
        let (probe, _) = run(["/bin/sh", "-c", "python3 -c 'import numpy' 2>/dev/null"])
        guard probe == .exited(0) else {
            print("skipped: python3 with numpy is not installed")
            return
        }
        let snippet = mrec("schema", "--numpy", path).1
        let (end, output) = run(["/usr/bin/env", "python3", "-c", snippet])
        #expect(end == .exited(0))
        #expect(output.contains("(2, 1. ,  4354685561206294213,  True, b'r2')"))
    }

    @Test("a closed pipe (| head) ends dump quietly with status 0")
    func closedPipe() throws {
        let path = directory.file("big.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<200_000).map { Sample(id: Int64($0)) })
        try table.close()
        let (end, output) = run([
            "/bin/bash", "-c",
            "'\(builtExecutable("mrec"))' dump --format csv '\(path)' | head -2; echo \"status ${PIPESTATUS[0]}\"",
        ])
        #expect(end == .exited(0))
        #expect(output == "id,value,check,flag,tag\n0,0.0,3735928559,true,r0\nstatus 0")
    }

    @Test("dump --follow prints records as a writer process appends them, and ends cleanly on Ctrl-C")
    func follow() throws {
        let path = try sampleTable(0)
        let follower = ChildProcess([
            builtExecutable("mrec"), "dump", "--follow", "--format", "csv", "--no-header", "--fields", "id", path,
        ])
        let (writerEnd, _) = run(helper("table-writer", path, "50", "none"))
        #expect(writerEnd == .exited(0))
        var seen: [String] = []
        while seen.count < 50, let line = follower.readLine() { seen.append(line) }
        #expect(seen == (0..<50).map(String.init))
        kill(follower.pid, SIGINT)
        #expect(follower.wait() == .exited(0))
    }

    @Test("names lists the registry's entries and holders; --gc collects dead ones")
    func names() throws {
        let registryPath = directory.file("registry")
        let registry = try Registry.open(directory: registryPath)
        let map = try MemoryMappedFile.createNew(name: "listed", capacity: 4096, registry: registry)
        let (end, output, _) = mrec("names", "--registry", registryPath)
        #expect(end == .exited(0))
        let lines = output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("NAME") == true)
        #expect(lines.count == 2 && lines[1].hasPrefix("listed") && lines[1].contains("1 live, 0 dead"), "\(output)")
        #expect(
            mrec("names", "--gc", "--registry", registryPath).1.hasPrefix("collected 0 dead holders; removed 0 names"))
        try map.close()
    }

    @Test("dump --layout reads raw struct files: the seed's 4 × Int16 pixels, big-endian numbers, offset and stride")
    func rawStructFile() throws {
        // Five pixels as the seed's ExtremelyLargeImage.data stores them, then 3 stray bytes.
        var pixels: [UInt8] = []
        for index in 0..<5 {
            for value in [Int16(index), Int16(-index), Int16(index * 2), 255] {
                withUnsafeBytes(of: value.littleEndian) { pixels += $0 }
            }
        }
        let image = directory.file("ExtremelyLargeImage.data")
        writeFile(image, pixels + [1, 2, 3])
        let layout = "red:i16,green:i16,blue:i16,alpha:i16"
        let table = mrec("dump", "--layout", layout, "--range", "1..<3", image)
        #expect(table.0 == .exited(0))
        #expect(
            table.1 == """
                red  green  blue  alpha
                  1     -1     2    255
                  2     -2     4    255
                """)
        #expect(
            table.2 == "mrec: note: \(image) has 3 bytes after the last whole record of 8 bytes; they are not shown")

        // The same numbers big-endian, after a 6-byte preamble, 10 bytes apart (2 bytes of padding).
        var bigEndian: [UInt8] = Array("HEADER".utf8)
        for index in 0..<3 {
            for value in [UInt32(index), UInt32(1000 + index)] {
                withUnsafeBytes(of: value.bigEndian) { bigEndian += $0 }
            }
            bigEndian += [0xEE, 0xEE]
        }
        let raw = directory.file("big-endian.bin")
        writeFile(raw, bigEndian)
        let csv = mrec(
            "dump", "--layout", "id:u32,value:u32", "--offset", "6", "--stride", "10", "--big-endian", "--format",
            "csv", raw)
        #expect(csv.0 == .exited(0) && csv.2.isEmpty)
        #expect(csv.1 == "id,value\n0,1000\n1,1001\n2,1002")
        #expect(
            mrec(
                "dump", "--layout", "id:u32,value:u32@4", "--offset", "16", "--stride", "10", "--big-endian",
                "--format", "hex", raw
            ).1 == """
                # record: byte offset in the file, then the bytes; | marks field boundaries
                16: |00 00 00 01 |00 00 03 e9 ee ee
                26: |00 00 00 02 |00 00 03 ea ee ee
                """)

        let bad = mrec("dump", "--layout", "red:i16,green:x16", image)
        #expect(bad.0 == .exited(2))
        #expect(
            bad.2 == "mrec: the layout 'red:i16,green:x16': field 2 ('green:x16'): unknown type 'x16'; "
                + "the types are i8, i16, i32, i64, u8, u16, u32, u64, f32, f64, bool, bytes, char")
        #expect(mrec("dump", "--offset", "2", image).0 == .exited(2))  // --offset without --layout
        #expect(mrec("dump", "--layout", "a:i64", directory.file("missing.data")).0 == .exited(3))
        writeFile(directory.file("empty.data"), [])
        #expect(mrec("dump", "--layout", "a:i64", "--format", "csv", directory.file("empty.data")).1 == "a")
    }

    @Test("create and import: CSV rows become records, dump --format csv round-trips byte for byte")
    func createAndImport() throws {
        let schema = "id:i64,x:f64,name:char[12],v:f32[3],ok:bool,raw:bytes[2]"
        let first = directory.file("first.mrec")
        let created = mrec("create", first, "--schema", schema, "--metadata", "unit=m")
        #expect(created.0 == .exited(0) && created.1 == "created \(first): 6 fields, stride 48, durability batch")
        let rows = directory.file("rows.csv")
        writeFile(
            rows,
            Array(
                "id,x,name,v,ok,raw\n1,0.1,hello,\"[1.5,2,3]\",true,abff\n2,-1e300,\"a,b \"\"q\"\"\",\"[0,0,0]\",0,0000\r\n\n3,nan,,\"[1,2,3]\",false,0102\n"
                    .utf8))
        let imported = mrec("import", first, "--csv", rows)
        #expect(
            imported.0 == .exited(0)
                && imported.1 == "\(first): imported 3 records from \(rows); the table has 3 records")
        let csv = mrec("dump", "--format", "csv", first).1
        #expect(
            csv == """
                id,x,name,v,ok,raw
                1,0.1,hello,"[1.5,2.0,3.0]",true,abff
                2,-1e+300,"a,b ""q""\","[0.0,0.0,0.0]",false,0000
                3,nan,,"[1.0,2.0,3.0]",false,0102
                """)

        // The dump imported into a fresh table gives the same records, byte for byte.
        let second = directory.file("second.mrec")
        let dumped = directory.file("dumped.csv")
        writeFile(dumped, Array((csv + "\n").utf8))
        #expect(mrec("create", second, "--schema", schema).0 == .exited(0))
        #expect(mrec("import", second, "--csv", dumped).0 == .exited(0))
        #expect(preadBytes(second, offset: 4096, count: 3 * 48) == preadBytes(first, offset: 4096, count: 3 * 48))
        #expect(mrec("dump", "--format", "csv", second).1 == csv)
        #expect(mrec("info", first).1.contains("unit = m"))

        // Through a pipe.
        let third = directory.file("third.mrec")
        #expect(mrec("create", third, "--schema", schema).0 == .exited(0))
        let tool = builtExecutable("mrec")
        let (piped, _) = run([
            "/bin/sh", "-c", "'\(tool)' dump --format csv '\(first)' | '\(tool)' import '\(third)' --csv /dev/stdin",
        ])
        #expect(piped == .exited(0))
        #expect(preadBytes(third, offset: 4096, count: 3 * 48) == preadBytes(first, offset: 4096, count: 3 * 48))

        #expect(mrec("create", second, "--schema", "id:i64").0 == .exited(3))  // exists
        let badSchema = mrec("create", directory.file("x.mrec"), "--schema", "id:i64,id:f64")
        #expect(
            badSchema.0 == .exited(2)
                && badSchema.2 == "mrec: the schema 'id:i64,id:f64': the field name 'id' appears twice")
    }

    @Test("import reports every bad row with its line number and writes nothing")
    func importBadRows() throws {
        let path = directory.file("table.mrec")
        #expect(mrec("create", path, "--schema", "id:i64,x:f64,name:char[8]").0 == .exited(0))
        let good = directory.file("good.csv")
        writeFile(good, Array("id,x,name\n7,1.5,seven\n".utf8))
        #expect(mrec("import", path, "--csv", good).0 == .exited(0))
        let before = preadBytes(path, offset: 0, count: 1 << 16)

        let bad = directory.file("bad.csv")
        writeFile(bad, Array("id,x,name\n5,1,ok\n6,zz,ok\nx,1,far too long\n7,1\n\"8,1,a\n".utf8))
        let result = mrec("import", path, "--csv", bad)
        #expect(result.0 == .exited(1))
        #expect(
            result.2 == """
                mrec: \(bad):3: field 'x' (f64): 'zz' is not a number
                mrec: \(bad):4: field 'id' (i64): 'x' is not an integer from -9223372036854775808 to 9223372036854775807
                mrec: \(bad):4: field 'name' (char[8]): 'far too long' is 12 bytes of UTF-8; the field holds 8
                mrec: \(bad):5: 2 values, but the header has 3 columns
                mrec: \(bad):6: a quoted value is not closed before the end of the file
                mrec: nothing was imported; \(path) keeps its 1 records
                """)
        let unknown = directory.file("unknown.csv")
        writeFile(unknown, Array("id,nope\n1,2\n".utf8))
        #expect(
            mrec("import", path, "--csv", unknown).2.hasPrefix(
                "mrec: \(unknown):1: the column 'nope' is not a field; the fields are id, x, name"))
        writeFile(directory.file("empty.csv"), [])
        #expect(mrec("import", path, "--csv", directory.file("empty.csv")).0 == .exited(1))

        // The failed imports left the records and the count alone.
        #expect(mrec("dump", "--format", "csv", path).1 == "id,x,name\n7,1.5,seven")
        #expect(preadBytes(path, offset: 4096, count: 24) == Array(before[4096..<4120]))
        #expect(mrec("verify", path).0 == .exited(0))

        // A partial header leaves the other fields zero, and says so.
        let partial = directory.file("partial.csv")
        writeFile(partial, Array("name,id\nnine,9\n".utf8))
        #expect(
            mrec("import", path, "--csv", partial).1.hasSuffix("the table has 2 records (not in the CSV, so zero: x)"))
        #expect(mrec("dump", "--format", "csv", "--no-header", "--range", "1..", path).1 == "9,0.0,nine")
    }

    @Test("an import killed with kill -9 midway leaves the table as it was")
    func importKilled() throws {
        let path = directory.file("killed.mrec")
        #expect(mrec("create", path, "--schema", "id:i64,x:f64").0 == .exited(0))
        let rows = directory.file("many.csv")
        var text = "id,x\n"
        for index in 0..<1_000_000 { text += "\(index),\(index).5\n" }
        writeFile(rows, Array(text.utf8))
        let importer = ChildProcess([builtExecutable("mrec"), "import", path, "--csv", rows])
        usleep(300_000)
        kill(importer.pid, SIGKILL)
        #expect(importer.wait() == .signaled(SIGKILL))  // killed midway, not finished
        #expect(mrec("info", path).1.contains("records         0 of capacity"))
        #expect(mrec("verify", path).0 == .exited(0))
        let few = directory.file("few.csv")
        writeFile(few, Array("id,x\n1,1.5\n".utf8))
        #expect(mrec("import", path, "--csv", few).0 == .exited(0))  // the writer lock went with the process
        #expect(mrec("dump", "--format", "csv", "--no-header", path).1 == "1,1.5")
    }

    @Test("demo: a writer and two reader processes share a table by name; info, dump and verify follow")
    func demo() throws {
        let place = directory.file("demo")
        let (end, output, errors) = mrec("demo", "--directory", place, "--records", "60000")
        #expect(end == .exited(0), "\(errors)")
        #expect(output.contains("followed the writer to 60000, 0 bad records, sum of x = 899985000.0"))
        #expect(
            output.split(separator: "\n").filter { $0.contains(", 0 bad records, sum of x = 899985000.0") }.count == 2)
        #expect(output.contains("demo.points             file"))
        #expect(output.contains("\(place)/points.mrec: ok, 60000 records checked"))
        #expect(mrec("info", place + "/points.mrec").1.contains("records         60000 of capacity"))
        // The writer withdrew the name when it ended.
        #expect(mrec("names", "--registry", place + "/registry").1.split(separator: "\n").count == 1)
    }

    @Test("every subcommand's --help has examples")
    func help() throws {
        for command in ["info", "dump", "verify", "schema", "create", "import", "names", "demo"] {
            let (end, output, _) = mrec(command, "--help")
            #expect(end == .exited(0))
            #expect(output.contains("Example") && output.contains("mrec \(command)"), "\(command)")
        }
        #expect(mrec("--help").1.contains("mrec dump --layout"))
        #expect(mrec("frobnicate").0 == .exited(2))
    }

    @Test("every example in --help stays on one line (help wraps at 80 columns)")
    func helpExamplesDoNotWrap() throws {
        for command in ["", "info", "dump", "verify", "schema", "create", "import", "migrate", "names", "demo"] {
            let output = (command.isEmpty ? mrec("--help") : mrec(command, "--help")).1
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            var inExamples = false
            for (index, line) in lines.enumerated() {
                if line.hasPrefix("Example") { inExamples = true; continue }
                guard inExamples else { continue }
                if line.isEmpty || line.hasSuffix(":") { inExamples = false; continue }
                #expect(
                    line.hasPrefix("  mrec "),
                    "mrec \(command) --help: line \(index + 1) continues a wrapped example: '\(line)'")
            }
        }
    }
}
