import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// Several processes appending to one table (`.sharedAppend`, docs/FORMAT.md "Several appenders").
@Suite("Shared appending: several writer processes, the appender lock, kill -9", .serialized, .timeLimit(.minutes(5)))
struct SharedAppendTests {
    let directory = TemporaryDirectory()

    @Test("an exclusive writer and shared appenders exclude each other, in both orders")
    func exclusion() throws {
        let path = directory.file("exclusion.mrec")
        try RecordTable<Sample>.create(path: path).close()

        // A writer first: appenders are refused (or wait for it).
        let writer = ChildProcess(helper("table-hold-writer", path))
        #expect(writer.readLine() == "writing")
        let refused = tableError { try RecordTable<Sample>.open(path: path, access: .sharedAppend) }
        #expect(refused?.code == .writerActive)
        #expect(refused?.message == "another process has the table open as its exclusive writer")
        writer.writeLine("close")
        #expect(writer.wait() == .exited(0))

        // Appenders first: a writer is refused, more appenders are welcome.
        let appender = ChildProcess(helper("table-hold-appender", path))
        #expect(appender.readLine() == "appending")
        #expect(tableError { try RecordTable<Sample>.open(path: path, access: .readWrite) }?.code == .writerActive)
        let second = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        try second.append(Sample(id: 0))
        let reader = try RecordTable<Sample>.open(path: path)
        #expect(try reader.writerIsActive())
        #expect(reader.count == 1)
        try second.close()
        #expect(tableError { try RecordTable<Sample>.open(path: path, access: .readWrite) }?.code == .writerActive)

        // An appender killed with -9 excludes nobody.
        kill(appender.pid, SIGKILL)
        #expect(appender.wait() == .signaled(SIGKILL))
        #expect(try reader.writerIsActive() == false)
        let exclusive = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        #expect(exclusive.count == 1)
        try exclusive.close()
    }

    @Test("two appenders in turn: each sees the other's records, grows past the other's mapping, commits")
    func appendersInterleave() throws {
        let path = directory.file("interleave.mrec")
        try RecordTable<Sample>.create(path: path, capacity: 8).close()
        let first = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        let second = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        var expected: [Int64] = []
        for round in 0..<200 {
            let table = round % 2 == 0 ? first : second
            let start = Int64(expected.count)
            let batch = (0..<Int64(round % 7 + 1)).map { Sample(id: start + $0) }
            try table.append(contentsOf: batch)
            expected += batch.map(\.id)
            #expect(table.count == expected.count)
            if round % 3 == 0 { try table.commit() }
        }
        // Several thousand records: both grew the file past the 8 records it started with.
        for id in Int64(expected.count)..<5_000 { try second.append(Sample(id: id)) }
        try first.append(Sample(id: 5_000))
        #expect(first.count == 5_001)
        try first.close()
        try second.close()
        let reader = try RecordTable<Sample>.open(path: path)
        #expect(reader.count == 5_001)
        #expect(reader.committedCount == 5_001)
        #expect(try reader.withRecords { span in span.indices.allSatisfy { span[$0].isValid(at: $0) } })
        #expect(try reader.writerIsActive() == false)
    }

    @Test("an appender that mapped the file before another grew it keeps the live count, not the commit point")
    func joiningWithAnOldMapping() throws {
        // The open of a shared appender maps the file, then waits for the appender lock; meanwhile
        // another appender may grow the file and publish past that mapping. Under load this lost
        // records: the joiner fell back to the commit point and published it as the live count.
        let path = directory.file("old-mapping.mrec")
        try RecordTable<Sample>.create(path: path, capacity: 8).close()
        let first = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        try first.append(contentsOf: (0..<5).map { Sample(id: $0) })
        try first.commit()  // the commit point: 5 records, inside the old mapping
        var opened = try TableStorage.mapFile(path: path, writable: true, shared: true, waitForWriter: .zero)
        try first.append(contentsOf: (5..<400).map { Sample(id: $0) })  // grows the file past the mapping
        let (_, _, count) = try TableStorage.decodeAndTakeOver(
            &opened, writable: true, bootIdentifier: TableStorage.currentBootIdentifier, path: path,
            takeoverStep: nil)
        #expect(count == 400, "a joiner with an old mapping took \(count) records, not the published 400")
        let reader = try RecordTable<Sample>.open(path: path)
        #expect(reader.count == 400)
        try first.close()
    }

    @Test("a reader sleeping on the doorbell wakes for an append by any appender")
    func doorbellWithAppenders() throws {
        let path = directory.file("bell.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let first = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        let second = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
        #expect(first.storage.hasDoorbell && second.storage.hasDoorbell)
        // One doorbell for the table: the second appender rings the segment the first one named.
        #expect(first.storage.writerDoorbell?.liveAreaWord == second.storage.writerDoorbell?.liveAreaWord)
        for (index, appender) in [first, second, first].enumerated() {
            let reader = ChildProcess(helper("table-wait", path, String(index), "10000", "block"))
            #expect(reader.readLine() == "waiting")
            let deadline = ContinuousClock.now + .seconds(10)
            while !appender.storage.doorbellHasSleeper && ContinuousClock.now < deadline { usleep(200) }
            usleep(2000)
            try appender.append(Sample(id: Int64(index)))
            let line = reader.readLine() ?? ""
            #expect(reader.wait() == .exited(0))
            #expect(line.hasPrefix("count \(index + 1) "), "\(line)")
        }
        // The first leaves; the second still rings the doorbell, which stays named.
        try first.close()
        #expect(preadUInt64(path, offset: DoorbellFormat.liveAreaOffset) != 0)
        try second.close()
        #expect(preadUInt64(path, offset: DoorbellFormat.liveAreaOffset) == 0)
    }

    @Test("an appender killed while it holds the appender lock costs the others only the detection")
    func deadHolder() throws {
        let path = directory.file("dead-holder.mrec")
        let table = try RecordTable<JournalEntry>.create(path: path)
        try table.append(JournalEntry(writer: 9, sequence: 0, batchSize: 1))
        try table.close()
        let victim = ChildProcess(
            helper("journal-append", path, "1", "100", "none"),
            environment: ["MAPPED_RECORDS_CRASH_AT=holding-appender-lock"])
        #expect(victim.wait() == .signaled(SIGKILL))
        // The word still names the dead appender's token.
        #expect(UInt32(truncatingIfNeeded: preadUInt64(path, offset: AppenderLock.wordOffset)) != 0)
        let started = ContinuousClock.now
        let survivor = try RecordTable<JournalEntry>.open(path: path, access: .sharedAppend)
        try survivor.append(JournalEntry(writer: 2, sequence: 0, batchSize: 1))
        let waited = ContinuousClock.now - started
        #expect(waited < .seconds(1), "took over a dead holder's lock after \(waited)")
        #expect(survivor.count == 2)
        #expect(survivor[1] == JournalEntry(writer: 2, sequence: 0, batchSize: 1))
        try survivor.close()
        #expect(UInt32(truncatingIfNeeded: preadUInt64(path, offset: AppenderLock.wordOffset)) == 0)
    }

    @Test("a shared appender cannot change records in place")
    func inPlaceUpdateTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let path = "/tmp/mapped-records-shared-\(getpid()).mrec"
            let table = try RecordTable<Sample>.create(path: path)
            try table.append(Sample(id: 0))
            try table.close()
            let appender = try RecordTable<Sample>.open(path: path, access: .sharedAppend)
            unlink(path)
            appender[0] = Sample(id: 1)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("opened for shared appending; in-place changes need the exclusive writer"))
    }

    @Test(
        "4 appender processes × 250,000 records in random batches, 50 kill -9s: every acknowledged batch once, whole, in order"
    )
    func fourAppendersFiftyKills() throws {
        let path = directory.file("journal.mrec")
        try RecordTable<JournalEntry>.create(path: path, durability: .none).close()
        let writers = 4, total = 250_000
        // Writer 0 syncs its commits; the others commit without syncing (what a kill -9 tests alike).
        func start(_ writer: Int) -> ChildProcess {
            ChildProcess(helper("journal-append", path, String(writer), String(total), writer == 0 ? "batch" : "none"))
        }
        // 0 until the writer's first commit made the file.
        func acknowledged(_ writer: Int) -> Int {
            let descriptor = open(path + ".ack\(writer)", O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return 0 }
            defer { close(descriptor) }
            var value: Int64 = 0
            return pread(descriptor, &value, 8, 0) == 8 ? Int(value) : 0
        }
        var running = (0..<writers).map(start)
        var generator = SystemRandomNumberGenerator()
        var kills = 0, checksAfterKill = 0
        while kills < 50 {
            usleep(UInt32.random(in: 5_000...20_000, using: &generator))
            let victim = Int.random(in: 0..<writers, using: &generator)
            kill(running[victim].pid, SIGKILL)
            let ended = running[victim].wait()
            if ended == .exited(0) {
                // It finished before the kill: the run was too short for 50 kills.
                Issue.record("writer \(victim) finished after \(kills) kills")
                break
            }
            #expect(ended == .signaled(SIGKILL))
            kills += 1
            // What the killed writer saw acknowledged is in the table now.
            let promised = acknowledged(victim)
            let table = try RecordTable<JournalEntry>.open(path: path)
            // Its records are in its order: the last one of them in the table is its highest.
            let last = table.indices.reversed().first { table[$0].writer == Int32(victim) }
            let present = last.map { Int(table[$0].sequence) + 1 } ?? 0
            #expect(present >= promised, "writer \(victim) was promised \(promised) records, the table has \(present)")
            checksAfterKill += 1
            try table.close()
            running[victim] = start(victim)
        }
        for (writer, process) in running.enumerated() {
            let output = process.readAll()
            #expect(process.wait() == .exited(0), "writer \(writer): \(output)")
            #expect(output.hasSuffix("done \(total)"), "writer \(writer): \(output)")
        }
        for writer in 0..<writers { unlink(path + ".ack\(writer)") }

        let table = try RecordTable<JournalEntry>.open(path: path)
        #expect(table.count == writers * total)
        var next = [Int](repeating: 0, count: writers)
        var torn = 0, outOfOrder = 0, splitBatches = 0
        try table.withRecords { records in
            var index = 0
            while index < records.count {
                let entry = records[index]
                let writer = Int(entry.writer)
                guard entry.isWhole, (0..<writers).contains(writer) else {
                    torn += 1
                    index += 1
                    continue
                }
                if Int(entry.sequence) != next[writer] { outOfOrder += 1 }
                // A batch starts here: its records follow one another, nobody else's between them.
                let size = Int(entry.batchSize)
                for offset in 0..<size {
                    let member = index + offset < records.count ? records[index + offset] : nil
                    if member?.writer != entry.writer || member?.sequence != entry.sequence + Int64(offset)
                        || member?.batchSize != entry.batchSize
                    {
                        splitBatches += 1
                        break
                    }
                }
                next[writer] = Int(entry.sequence) + size
                index += max(size, 1)
            }
        }
        #expect(torn == 0)
        #expect(outOfOrder == 0)
        #expect(splitBatches == 0)
        #expect(next == [Int](repeating: total, count: writers))
        try table.close()
        let (status, output) = run([builtExecutable("mrec"), "verify", path])
        #expect(status == .exited(0), "mrec verify: \(output)")
        print(
            "fourAppendersFiftyKills: \(kills) kills, \(checksAfterKill) checks after a kill, \(writers * total) records"
        )
    }
}
