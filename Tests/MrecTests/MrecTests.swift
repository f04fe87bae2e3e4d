import Glibc
import MappedRegistry
import MemoryMappedFiles
import RecordTable
import Testing
import TestSupport

/// Runs mrec with `arguments`; returns how it ended, its stdout and its stderr.
func mrec(_ arguments: String...) -> (Termination, String, String) {
    let errors = "/tmp/mrec-stderr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    defer { unlink(errors) }
    let command = ([builtExecutable("mrec")] + arguments).map { "'\($0)'" }.joined(separator: " ")
    let (_, output) = run(["/bin/sh", "-c", "\(command) 2>'\(errors)'; echo \"status $?\""])
    var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let status = Int32(lines.removeLast().dropFirst("status ".count)) ?? -1
    let stderr = String(decoding: preadBytes(errors, offset: 0, count: 1 << 16), as: UTF8.self)
    return (.exited(status), lines.joined(separator: "\n"), stderr.hasSuffix("\n") ? String(stderr.dropLast()) : stderr)
}

@Suite("mrec, run as a user runs it", .timeLimit(.minutes(2)))
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
        #expect(output == """
            file            \(path)
            size            8192 bytes
            format          version 1.0, header checksum valid
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
        #expect(json.hasPrefix("{\"path\":\"\(path)\",\"fileSize\":8192,\"formatVersion\":\"1.0\""))
        #expect(json.contains("\"fields\":[{\"name\":\"id\",\"type\":\"i64\",\"offset\":0,\"count\":1},"))
        #expect(json.hasSuffix("\"metadata\":{\"unit\":\"m\"}}"))
    }

    @Test("dump in every format, with fields, ranges and limits")
    func dump() throws {
        let path = try sampleTable()
        #expect(mrec("dump", path).1 == """
            id  value                 check   flag  tag
             0    0.0            3735928559   true   r0
             1    0.5  11400714819903931130  false   r1
             2    1.0   4354685561206294213   true   r2
            """)
        #expect(mrec("dump", "--format", "csv", "--fields", "id,value,tag", "--range", "1..<3", path).1 == "id,value,tag\n1,0.5,r1\n2,1.0,r2")
        #expect(mrec("dump", "--format", "csv", "--no-header", "--range", "2...2", "--fields", "id", path).1 == "2")
        #expect(mrec("dump", "--format", "jsonl", "--limit", "1", path).1
            == "{\"id\":0,\"value\":0.0,\"check\":3735928559,\"flag\":true,\"tag\":\"r0\"}")
        #expect(mrec("dump", "--format", "hex", "--range", "1..", "--limit", "1", path).1 == """
            # record: byte offset in the file, then the bytes; | marks field boundaries
            4128: |01 00 00 00 00 00 00 00 |00 00 00 00 00 00 e0 3f |fa c2 e7 a1 b9 79 37 9e |00 |72 31 00 00 00 00 00
            """)
    }

    @Test("errors: one line on stderr naming the file, and documented exit statuses")
    func errors() throws {
        let path = try sampleTable()
        let missing = mrec("info", directory.file("missing.mrec"))
        #expect(missing.0 == .exited(3))
        #expect(missing.2 == "mrec: open '\(directory.file("missing.mrec"))': the file does not exist (open: No such file or directory, errno 2)")

        writeFile(directory.file("foreign"), Array("not a table at all".utf8))
        let foreign = mrec("dump", directory.file("foreign"))
        #expect(foreign.0 == .exited(1))
        #expect(foreign.2.contains("does not start with the magic bytes of a record table"))

        var bytes = preadBytes(path, offset: 0, count: 8192)
        bytes[12] = 2  // a newer major version
        writeFile(directory.file("future.mrec"), bytes)
        let future = mrec("info", directory.file("future.mrec"))
        #expect(future.0 == .exited(1))
        #expect(future.2.contains("it has format version 2.0; this library reads version 1.x"))

        #expect(mrec("dump", "--fields", "nope", path).0 == .exited(2))
        #expect(mrec("dump", "--range", "x..y", path).0 == .exited(2))
        #expect(mrec("dump", "--format", "xml", path).0 == .exited(64))  // ArgumentParser's usage status
    }

    @Test("verify: 0 for a clean table, 1 with the finding for a damaged one; the tool never writes")
    func verify() throws {
        let path = try sampleTable()
        let before = preadBytes(path, offset: 0, count: 8192)
        let clean = mrec("verify", path)
        #expect(clean.0 == .exited(0) && clean.1 == "\(path): ok, 3 records checked")
        #expect(preadBytes(path, offset: 0, count: 8192) == before)
        var bytes = before
        bytes[4096 + 32 + 24] = 7  // record 1's Bool
        writeFile(path, bytes)
        let damaged = mrec("verify", path)
        #expect(damaged.0 == .exited(1))
        #expect(damaged.1 == "\(path): record 1: Bool field 'flag' holds a byte other than 0 or 1")
    }

    @Test("schema --numpy runs in Python; --swift declares the struct")
    func schema() throws {
        let path = try sampleTable()
        let swift = mrec("schema", "--swift", path).1
        #expect(swift.contains("    var tag: FixedString<7>"))
        #expect(swift.contains("        .field(\"check\", \\.check),"))
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
        let (end, output) = run(["/bin/bash", "-c", "'\(builtExecutable("mrec"))' dump --format csv '\(path)' | head -2; echo \"status ${PIPESTATUS[0]}\""])
        #expect(end == .exited(0))
        #expect(output == "id,value,check,flag,tag\n0,0.0,3735928559,true,r0\nstatus 0")
    }

    @Test("dump --follow prints records as a writer process appends them, and ends cleanly on Ctrl-C")
    func follow() throws {
        let path = try sampleTable(0)
        let follower = ChildProcess([builtExecutable("mrec"), "dump", "--follow", "--format", "csv", "--no-header", "--fields", "id", path])
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
        #expect(mrec("names", "--gc", "--registry", registryPath).1.hasPrefix("collected 0 dead holders; removed 0 names"))
        try map.close()
    }
}
