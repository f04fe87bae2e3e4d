import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// Series of tables that roll (docs/FORMAT.md, "Series").
@Suite("Table series: rolling, sealing, retention, following across files", .serialized, .timeLimit(.minutes(5)))
struct TableSeriesTests {
    let directory = TemporaryDirectory()

    /// The seal mark of file `number` of the series in `path`: the next file's number, or nil.
    func sealMark(_ path: String, _ number: Int) -> Int? {
        SealMark.next(preadUInt64(path + "/" + SeriesFormat.fileName(number), offset: TableFormat.sealWordOffset))
    }

    @Test(
        "a writer rolls by record count: each file an ordinary table, sealed naming the next; a reader reads one sequence"
    )
    func rollsByRecords() throws {
        let path = directory.file("trades")
        let series = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(100))
        var id: Int64 = 0
        for round in 0..<150 {
            let batch = (0..<Int64(round % 13 + 1)).map { Sample(id: id + $0) }
            try series.append(contentsOf: batch)
            id += Int64(batch.count)
        }
        try series.append(Sample(id: id))
        id += 1
        try series.commit()
        // The next file was made ahead of the roll once the current one was half full (a standby).
        #expect(try series.fileNumbers().last == series.currentFile + 1)
        let current = series.currentFile
        try series.close()
        // Closing removes the empty standby: the series ends with the file appended to.
        let numbers = try TableSeries<Sample>.open(directory: path).fileNumbers()
        #expect(numbers == Array(1...current))
        #expect(numbers.count >= 10)

        var total = 0
        for number in numbers {
            // Every file is a table anyone opens as usual; no batch is split, none overfills a file.
            let table = try RecordTable<Sample>.open(path: path + "/" + SeriesFormat.fileName(number))
            #expect(table.count <= 100 && table.count > 0)
            #expect(table.first?.id == Int64(total))
            total += table.count
            #expect(sealMark(path, number) == (number == numbers.last ? nil : number + 1))
            #expect(table.metadata.contains { $0.key == SeriesFormat.createdKey })
            try table.close()
        }
        #expect(total == Int(id))

        let reader = try TableSeries<Sample>.open(directory: path)
        #expect(try reader.count() == Int(id))
        var position = try reader.startPosition()
        var read: [Sample] = []
        while true {
            let chunk = try reader.read(from: &position, maxCount: 37)
            if chunk.isEmpty { break }
            read += chunk
        }
        #expect(read == (0..<id).map { Sample(id: $0) })
        #expect(position == (try reader.endPosition()))
        // A saved position resumes exactly there, across files.
        var resumed = SeriesPosition(file: 2, index: 50)
        let rest = try reader.read(from: &resumed)
        #expect(rest.first?.id == Int64(try RecordTable<Sample>.open(path: path + "/00000001.mrec").count + 50))
        #expect(rest.last?.id == id - 1)
        try reader.close()
    }

    @Test("a writer rolls by size; the roll and retention rules are checked")
    func rollsBySize() throws {
        let path = directory.file("sized")
        let series = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .bytes(8192))
        for id in 0..<1_000 { try series.append(Sample(id: Int64(id))) }
        try series.close()
        let perFile = (8192 - 4096) / MemoryLayout<Sample>.stride
        #expect(try TableSeries<Sample>.open(directory: path).fileNumbers().count == (1_000 + perFile - 1) / perFile)
        #expect(
            tableError { try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(0)) }?.code
                == .invalidArgument)
        #expect(
            tableError { try TableSeries<Sample>.open(directory: path, access: .readWrite, retention: .files(0)) }?
                .code == .invalidArgument)
        #expect(tableError { try TableSeries<Sample>.open(directory: directory.file("none")) }?.code == .notFound)
    }

    @Test("a standby made ahead of the roll: a writer that finds one appends to the file before it, then rolls into it")
    func standby() throws {
        let path = directory.file("standby")
        let appender = try TableSeries<Sample>.open(directory: path, access: .sharedAppend, roll: .records(10))
        for id in 0..<6 { try appender.append(Sample(id: Int64(id))) }
        // Half full: the next file exists, empty and unsealed, and stays when a shared appender leaves.
        #expect(try appender.fileNumbers() == [1, 2])
        try appender.close()
        #expect(try TableSeries<Sample>.open(directory: path).fileNumbers() == [1, 2])
        #expect(sealMark(path, 1) == nil)

        let writer = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(10))
        #expect(writer.currentFile == 1)
        for id in 6..<11 { try writer.append(Sample(id: Int64(id))) }
        #expect(writer.currentFile == 2)
        #expect(sealMark(path, 1) == 2)
        try writer.close()
        var position = SeriesPosition(file: 1, index: 0)
        #expect(try TableSeries<Sample>.open(directory: path).read(from: &position).map(\.id) == Array(0..<11))
    }

    @Test("an exclusive series writer excludes another; a sealed file refuses writers")
    func exclusiveWriters() throws {
        let path = directory.file("exclusive")
        let series = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(10))
        for id in 0..<25 { try series.append(Sample(id: Int64(id))) }
        #expect(tableError { try TableSeries<Sample>.open(directory: path, access: .readWrite) }?.code == .writerActive)
        #expect(
            tableError { try TableSeries<Sample>.open(directory: path, access: .sharedAppend) }?.code == .writerActive)
        let sealed = tableError { try RecordTable<Sample>.open(path: path + "/00000001.mrec", access: .readWrite) }
        #expect(sealed?.code == .sealed)
        #expect(sealed?.message.contains("continues in file 2") == true)
        try series.close()
    }

    @Test("time rolls: a file per UTC day, by the clock the writer reads; age retention removes old days")
    func rollsDaily() throws {
        let path = directory.file("daily")
        let day: Int64 = 86_400, start: Int64 = 1_790_000_000 / day * day
        func append(at clock: Int64, id: Int, retention: String = "forever") {
            let writer = ChildProcess(
                helper("series-append", path, String(id + 1), "daily", retention, "exclusive"),
                environment: ["MAPPED_RECORDS_TEST_CLOCK=\(clock)"])
            let output = writer.readAll()
            #expect(writer.wait() == .exited(0), "\(output)")
        }
        append(at: start + 10, id: 0)
        append(at: start + 3_600, id: 1)
        append(at: start + day + 5, id: 2)
        append(at: start + 2 * day, id: 3)
        let series = try TableSeries<Sample>.open(directory: path)
        #expect(try series.fileNumbers() == [1, 2, 3])
        let cycles = try [1, 2, 3].map { number in
            try RecordTable<Sample>.open(path: series.path(ofFile: number)).metadata
                .first { $0.key == SeriesFormat.cycleKey }?.value
        }
        #expect(cycles == [String(start), String(start + day), String(start + 2 * day)])
        // Four days later, keeping two days: the files that ended more than two days ago go.
        append(at: start + 4 * day + 1, id: 4, retention: "age:\(2 * day)")
        #expect(try series.fileNumbers() == [3, 4])
        var position = try series.startPosition()
        #expect(try series.read(from: &position).map(\.id) == [3, 4])
    }

    @Test(
        "retention keeps the newest files; a reader holding a removed file keeps reading; a follower behind gets fellBehind"
    )
    func retention() throws {
        let path = directory.file("kept")
        let series = try TableSeries<Sample>.open(
            directory: path, access: .readWrite, roll: .records(10), retention: .files(3))
        for id in 0..<10 { try series.append(Sample(id: Int64(id))) }
        let reader = try TableSeries<Sample>.open(directory: path)
        var held = SeriesPosition(file: 1, index: 0)
        #expect(try reader.read(from: &held, maxCount: 5).count == 5)  // file 1 is open in the reader now
        for id in 10..<100 { try series.append(Sample(id: Int64(id))) }
        // Three files kept, and the next one made ahead of the roll (a standby, empty).
        #expect(try series.fileNumbers() == [8, 9, 10, 11])
        #expect(!fileExists(path + "/00000001.mrec"))
        // The removed file is still open in the reader: it reads on to its end, then needs file 2.
        #expect(try reader.read(from: &held, maxCount: 5).map(\.id) == [5, 6, 7, 8, 9])
        let behind = tableError { try reader.read(from: &held) }
        #expect(behind?.code == .fellBehind)
        #expect(behind?.message.contains("the oldest file now is 8, so this reader is 6 file(s) behind") == true)
        #expect(tableError { try reader.waitForRecords(beyond: held, timeout: .zero) }?.code == .fellBehind)
        try series.close()
        try reader.close()
    }

    @Test("a follower crosses 3+ rolls while writers are killed at each step of a roll: every record once, in order")
    func followerAcrossKilledRolls() throws {
        let path = directory.file("crashing")
        let total = 1_000
        // The series exists before the follower starts: a follower opening a directory that is
        // not there yet gets notFound (a CI run under load started it first).
        try TableSeries<Sample>.open(directory: path, access: .readWrite).close()
        let follower = ChildProcess(helper("series-follow", path, String(total), "120"))
        #expect(follower.readLine() == "following")
        var acknowledged = -1
        for round in 0..<9 {
            let step = round % 3 + 1
            let writer = ChildProcess(
                helper("series-append", path, String(total), "records:50", "forever", "exclusive"),
                environment: ["MAPPED_RECORDS_CRASH_AT=roll-step-\(step)"])
            var lines: [String] = []
            while let line = writer.readLine() { lines.append(line) }
            #expect(writer.wait() == .signaled(SIGKILL), "round \(round), step \(step): \(lines)")
            if let last = lines.last(where: { $0.hasPrefix("ack ") }) { acknowledged = Int(last.dropFirst(4))! }
            // What was acknowledged is there, after the crash at this step of the roll.
            let series = try TableSeries<Sample>.open(directory: path)
            var position = try series.startPosition()
            let ids = try series.read(from: &position).map(\.id)
            #expect(ids == (0..<Int64(ids.count)).map { $0 })
            #expect(ids.count > acknowledged)
        }
        let last = ChildProcess(helper("series-append", path, String(total), "records:50", "forever", "exclusive"))
        let output = last.readAll()
        #expect(last.wait() == .exited(0), "\(output)")
        let verdict = follower.readAll()
        #expect(follower.wait() == .exited(0), "\(verdict)")
        let fields = verdict.split(separator: " ")
        #expect(fields.first == "ok", "\(verdict)")
        #expect((Int(fields.last ?? "") ?? 0) >= 4, "the follower crossed too few files: \(verdict)")
        // Every file but the newest is sealed, naming the next.
        let numbers = try TableSeries<Sample>.open(directory: path).fileNumbers()
        for number in numbers { #expect(sealMark(path, number) == (number == numbers.last ? nil : number + 1)) }
    }

    @Test("3 shared appender processes roll one series: each writer's records once, in order, no batch split")
    func sharedAppendersRoll() throws {
        let path = directory.file("shared")
        let writers = 3, total = 20_000
        let processes = (0..<writers).map {
            ChildProcess(helper("journal-series", path, String($0), String(total), "records:1000"))
        }
        for (writer, process) in processes.enumerated() {
            let output = process.readAll()
            #expect(process.wait() == .exited(0), "writer \(writer): \(output)")
        }
        let series = try TableSeries<JournalEntry>.open(directory: path)
        var next = [Int](repeating: 0, count: writers)
        var problems = 0
        for number in try series.fileNumbers() {
            let table = try RecordTable<JournalEntry>.open(path: series.path(ofFile: number))
            #expect(table.count <= 1_000)
            var index = 0
            while index < table.count {
                let entry = table[index]
                let writer = Int(entry.writer)
                guard entry.isWhole, writer < writers, Int(entry.sequence) == next[writer],
                    index + Int(entry.batchSize) <= table.count
                else {
                    problems += 1
                    break
                }
                next[writer] += Int(entry.batchSize)
                index += Int(entry.batchSize)
            }
            let newest = try series.fileNumbers().last!
            // The newest file is unsealed; it may be a standby that an appender made ahead of the
            // roll (empty), and then the one before it is still unsealed too.
            let newestIsStandby = try RecordTable<JournalEntry>.open(path: series.path(ofFile: newest)).isEmpty
            switch number {
            case newest: #expect(sealMark(path, number) == nil)
            case newest - 1 where newestIsStandby: #expect(sealMark(path, number) == nil)
            default: #expect(sealMark(path, number) == number + 1)
            }
        }
        #expect(problems == 0)
        #expect(next == [Int](repeating: total, count: writers))
    }

    @Test("updates() yields the end position as records arrive, across a roll")
    func updatesAcrossRolls() async throws {
        let path = directory.file("async")
        let writer = try TableSeries<Sample>.open(directory: path, access: .readWrite, roll: .records(5))
        let reader = try TableSeries<Sample>.open(directory: path)
        let updates = try reader.updates(from: SeriesPosition(file: 1, index: 0))
        let task = Task {
            var ends: [SeriesPosition] = []
            for try await end in updates {
                ends.append(end)
                if end.file == 3 { break }
            }
            return ends
        }
        for id in 0..<12 {
            try writer.append(Sample(id: Int64(id)))
            usleep(5_000)
        }
        let ends = try await task.value
        #expect(ends.last == SeriesPosition(file: 3, index: ends.last?.index ?? 0))
        #expect(ends == ends.sorted())
        try writer.close()
        try reader.close()
    }

    @Test("the README's example of shared journals and series runs as written")
    func readmeExample() throws {
        // Relative paths, as in the README: inside this test's directory (nothing else here uses the cwd).
        var original = [CChar](repeating: 0, count: 4096)
        #expect(getcwd(&original, original.count) != nil)
        #expect(chdir(directory.path) == 0)
        defer { _ = chdir(original) }
        let trade = Trade(id: 1, price: 101.5, qty: 10, side: 1)
        let batch = (2..<6).map { Trade(id: Int64($0), price: 100, qty: 1, side: 0) }
        try RecordTable<Trade>.create(path: "trades.mrec").close()

        // in each of several processes at once
        let journal = try RecordTable<Trade>.open(path: "trades.mrec", access: .sharedAppend)
        try journal.append(trade)  // one record, atomic
        try journal.append(contentsOf: batch)  // contiguous and all-or-nothing for readers
        try journal.commit()  // what this process appended is durable (per Durability)
        try journal.close()

        // a directory of tables that rolls: 00000001.mrec, 00000002.mrec, …
        let series = try TableSeries<Trade>.open(
            directory: "trades", access: .readWrite,  // or .sharedAppend, .readOnly (default)
            roll: .records(1_000_000),  // or .bytes(n), .hourly, .daily (UTC)
            retention: .files(7))  // or .age(.seconds(n)), .forever (default)
        try series.append(trade)
        try series.append(contentsOf: batch)
        try series.commit()
        try series.close()

        // read or follow it as one sequence, from a saved position if you like
        let reader = try TableSeries<Trade>.open(directory: "trades")
        var position = try reader.startPosition()  // (file, index)
        let records = try reader.read(from: &position)  // crosses from each sealed file to the next
        let end = try reader.waitForRecords(beyond: position, timeout: .milliseconds(10))
        #expect(records == [trade] + batch)
        #expect(end == SeriesPosition(file: 1, index: 5))
        #expect(try RecordTable<Trade>.open(path: "trades.mrec").count == 5)
    }
}

/// The README's record.
@MappedRecord
struct Trade: Equatable {
    var id: Int64
    var price: Double
    var qty: Int32
    var side: UInt8
}
