import Glibc
import TestSupport
import Testing

@testable import RecordTable

@Suite("Record tables: one writer, many reader processes, crashes", .timeLimit(.minutes(5)))
struct MultiProcessTests {
    let directory = TemporaryDirectory()

    @Test("a second writer gets writerActive, or waits; a writer killed with -9 blocks nobody")
    func oneWriter() throws {
        let path = directory.file("w.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let holder = ChildProcess(helper("table-hold-writer", path))
        #expect(holder.readLine() == "writing")
        let error = tableError { try RecordTable<Sample>.open(path: path, access: .readWrite) }
        #expect(error?.code == .writerActive)
        #expect(error?.message == "another process has the table open for writing")
        let started = ContinuousClock.now
        #expect(
            tableError {
                try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .milliseconds(300))
            }?.code == .writerActive)
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        // Readers are never blocked, and can tell that a writer is active.
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(try reader.writerIsActive())

        kill(holder.pid, SIGKILL)
        #expect(holder.wait() == .signaled(SIGKILL))
        #expect(try reader.writerIsActive() == false)
        let writer = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        try writer.append(Sample(id: 0))
        try writer.close()
    }

    @Test("a waiting writer gets the table when the first one closes")
    func waitingWriter() throws {
        let path = directory.file("wait.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let holder = ChildProcess(helper("table-hold-writer", path))
        #expect(holder.readLine() == "writing")
        holder.writeLine("close")
        let writer = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(10))
        #expect(holder.wait() == .exited(0))
        try writer.close()
    }

    @Test("1 writer and 4 reader processes for 20 s: no torn or mismatched record")
    func readersAgainstWriter() throws {
        let path = directory.file("live.mrec")
        let writer = ChildProcess(helper("table-append-for", path, "20"))
        #expect(writer.readLine() == "open 0")
        let readers = (0..<4).map { _ in ChildProcess(helper("table-reader", path, "20")) }
        for reader in readers { #expect(reader.readLine() == "reading") }
        let writerDone = writer.readLine() ?? ""
        #expect(writer.wait() == .exited(0))
        let written = Int(writerDone.split(separator: " ").last ?? "") ?? 0
        #expect(written > 10_000, "the writer appended only \(written) records: '\(writerDone)'")
        for reader in readers {
            let verdict = reader.readAll()
            #expect(reader.wait() == .exited(0), "reader: \(verdict)")
            let fields = verdict.split(separator: " ")
            #expect(fields.first == "ok", "reader: \(verdict)")
            #expect((Int(fields.dropFirst().first ?? "") ?? 0) > 0, "reader saw no records: \(verdict)")
        }
        let table = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(table.count == written)
        #expect(try table.withRecords { span in span.indices.allSatisfy { span[$0].isValid(at: $0) } })
    }

    @Test("500 kill -9s at random moments of appending, with 2 readers: nothing acknowledged is lost or damaged")
    func killDuringAppend() throws {
        let path = directory.file("crash.mrec")
        try RecordTable<Sample>.create(path: path, durability: .none).close()
        let readers = (0..<2).map { _ in ChildProcess(helper("table-reader", path, "600")) }
        for reader in readers { #expect(reader.readLine() == "reading") }
        var generator = SystemRandomNumberGenerator()
        var acknowledged = 0
        var corrupt = 0, lost = 0, verified = 0
        for round in 0..<500 {
            let durability = ["none", "batch", "everyAppend"][round % 3]
            let writer = ChildProcess(helper("table-writer", path, "1000000", durability))
            guard let opened = writer.readLine(), opened.hasPrefix("open ") else {
                Issue.record("round \(round): the writer did not open the table")
                break
            }
            // Let it append a random number of records, then kill it at once: mid-append.
            let acks = Int.random(in: 0...40, using: &generator)
            for _ in 0..<acks {
                guard let line = writer.readLine(), line.hasPrefix("ack ") else { break }
                acknowledged = Int(line.dropFirst(4)) ?? acknowledged
            }
            kill(writer.pid, SIGKILL)
            #expect(writer.wait() == .signaled(SIGKILL))
            do {
                let table = try RecordTable<Sample>.open(path: path, access: .readOnly)
                if table.count < acknowledged { lost += 1 }
                // Every record of this round, and a sample of the earlier ones (the readers check them all).
                let checked =
                    Array(min(verified, table.count)..<table.count)
                    + (0..<32).map { _ in Int.random(in: 0..<max(1, table.count), using: &generator) }
                if !checked.allSatisfy({ $0 >= table.count || table[$0].isValid(at: $0) }) { corrupt += 1 }
                acknowledged = table.count
                verified = table.count
            } catch {
                corrupt += 1
            }
        }
        #expect(corrupt == 0)
        #expect(lost == 0)
        for reader in readers {
            kill(reader.pid, SIGKILL)
            let output = reader.readAll()
            #expect(reader.wait() == .signaled(SIGKILL), "a reader failed: \(output)")
            #expect(!output.contains("bad"), "\(output)")
        }
        print(
            "killDuringAppend: 500 kills during appends, \(acknowledged) records at the end: \(corrupt) corrupt tables, \(lost) rounds that lost acknowledged records"
        )
    }

    @Test("a reader waits for new records and follows the file as it grows")
    func readerFollowsGrowth() throws {
        let path = directory.file("tail.mrec")
        let writer = try RecordTable<Sample>.create(path: path)
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(try reader.waitForRecords(beyond: 0, timeout: .milliseconds(50)) == 0)
        let initialCapacity = reader.capacity
        try writer.append(contentsOf: (0..<100_000).map { Sample(id: Int64($0)) })
        #expect(try reader.waitForRecords(beyond: 0, timeout: .seconds(5)) == 100_000)
        #expect(reader.capacity > initialCapacity)
        #expect(reader[99_999].isValid(at: 99_999))
    }
}
