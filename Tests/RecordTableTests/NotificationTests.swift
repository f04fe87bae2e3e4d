import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// The doorbell (docs/FORMAT.md): readers in other processes sleep on the live word, and the
/// writer wakes them only when one is registered.
@Suite("Waking readers: the doorbell, async updates, crashes", .serialized, .timeLimit(.minutes(3)))
struct NotificationTests {
    let directory = TemporaryDirectory()

    /// A writable table, with the path it lives at.
    func makeWriter(_ name: String, mode: mode_t = 0o644) throws -> (RecordTable<Sample>, String) {
        let path = directory.file(name)
        try RecordTable<Sample>.create(path: path).close()
        #expect(chmod(path, mode) == 0)
        // (Waits: a child that another suite's thread is spawning holds the creator's descriptor until it execs.)
        let writer = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        #expect(writer.storage.hasDoorbell, "this machine offers membarrier and System V shared memory")
        return (writer, path)
    }

    /// Waits until a reader has registered on the writer's doorbell (it is then asleep, or about to be).
    func waitForSleeper(_ writer: RecordTable<Sample>) -> Bool {
        let deadline = ContinuousClock.now + .seconds(10)
        while !writer.storage.doorbellHasSleeper {
            guard ContinuousClock.now < deadline else { return false }
            usleep(200)
        }
        usleep(2000)  // registered: give it the moment it needs to enter the futex
        return true
    }

    /// "count N at T writer W" from a table-wait helper.
    func parse(_ line: String?) -> (count: Int, at: UInt64, writer: String)? {
        guard let fields = line?.split(separator: " "), fields.count == 6, fields[0] == "count",
            let count = Int(fields[1]), let at = UInt64(fields[3])
        else { return nil }
        return (count, at, String(fields[5]))
    }

    @Test("a reader process sleeps, and wakes within milliseconds of the append, by one ring")
    func readerWakesOnAppend() throws {
        let (writer, path) = try makeWriter("wake.mrec")
        let reader = ChildProcess(helper("table-wait", path, "0", "10000", "block"))
        #expect(reader.readLine() == "waiting")
        #expect(waitForSleeper(writer))
        let appended = TestSupport.monotonicNanoseconds()
        try writer.append(Sample(id: 0))
        let woke = parse(reader.readLine())
        #expect(reader.wait() == .exited(0))
        #expect(woke?.count == 1)
        #expect(woke?.writer == "active")
        let latency = Double((woke?.at ?? .max) &- appended) / 1e6
        #expect(latency < 100, "woke \(latency) ms after the append")  // a poll would be 10 ms to 1 s; see make latency
        #expect(writer.storage.doorbellRings == 1)
        // No one sleeps now: a thousand appends ring nothing.
        for id in 1...1000 { try writer.append(Sample(id: Int64(id))) }
        #expect(writer.storage.doorbellRings == 1)
        try writer.close()
    }

    @Test("a sleeper that waits for a far count costs the writer nothing until the count reaches it")
    func targetedWakeUp() throws {
        let (writer, path) = try makeWriter("target.mrec")
        let reader = ChildProcess(helper("table-wait", path, "100", "10000", "block"))
        #expect(reader.readLine() == "waiting")
        #expect(waitForSleeper(writer))
        for id in 0..<100 { try writer.append(Sample(id: Int64(id))) }
        #expect(writer.storage.doorbellRings == 0)  // not one wake-up for 100 publishes short of the target
        #expect(writer.storage.doorbellHasSleeper)
        try writer.append(Sample(id: 100))
        #expect(parse(reader.readLine())?.count == 101)
        #expect(reader.wait() == .exited(0))
        #expect(writer.storage.doorbellRings == 1)
        try writer.close()
    }

    @Test("a spinning reader sees the append without any ring")
    func spinningReader() throws {
        let (writer, path) = try makeWriter("spin.mrec")
        let reader = ChildProcess(helper("table-wait", path, "0", "10000", "spin"))
        #expect(reader.readLine() == "waiting")
        usleep(50_000)
        try writer.append(Sample(id: 0))
        #expect(parse(reader.readLine())?.count == 1)
        #expect(reader.wait() == .exited(0))
        #expect(writer.storage.doorbellRings == 0)
        try writer.close()
    }

    @Test("a follower that may only read the file, as another user, sleeps on the doorbell and wakes")
    func readOnlyFollowerAsAnotherUser() throws {
        guard isRoot else {
            print("skipped: a second user needs root (the helper drops to uid 65534)")
            return
        }
        #expect(chmod(directory.path, 0o755) == 0)
        let (writer, path) = try makeWriter("theirs.mrec", mode: 0o644)
        let reader = ChildProcess(helper("table-wait", path, "0", "10000", "block", "nobody"))
        #expect(reader.readLine() == "waiting")
        #expect(waitForSleeper(writer), "uid 65534 could not register on the doorbell")
        let appended = TestSupport.monotonicNanoseconds()
        try writer.append(Sample(id: 0))
        let woke = parse(reader.readLine())
        #expect(reader.wait() == .exited(0))
        #expect(woke?.count == 1)
        #expect(Double((woke?.at ?? .max) &- appended) / 1e6 < 100)
        #expect(writer.storage.doorbellRings == 1)
        try writer.close()
    }

    @Test("a table only its owner may read keeps other users off the doorbell")
    func privateTableKeepsOthersOut() throws {
        guard isRoot else {
            print("skipped: a second user needs root (the helper drops to uid 65534)")
            return
        }
        #expect(chmod(directory.path, 0o755) == 0)
        let (writer, path) = try makeWriter("private.mrec", mode: 0o600)
        let (end, _) = run(helper("table-wait", path, "0", "100", "block", "nobody"))
        #expect(end == .exited(3))  // it cannot even open the table
        #expect(!writer.storage.doorbellHasSleeper)
        try writer.close()
    }

    @Test("a sleeper killed with -9 costs the writer one wake-up, then none")
    func crashedSleeper() throws {
        let (writer, path) = try makeWriter("crashed-reader.mrec")
        let reader = ChildProcess(helper("table-wait", path, "0", "60000", "block"))
        #expect(reader.readLine() == "waiting")
        #expect(waitForSleeper(writer))
        kill(reader.pid, SIGKILL)
        #expect(reader.wait() == .signaled(SIGKILL))
        #expect(writer.storage.doorbellHasSleeper)  // its registration outlives it …
        try writer.append(Sample(id: 0))
        #expect(writer.storage.doorbellRings == 1)  // … until one ring clears it
        for id in 1..<100 { try writer.append(Sample(id: Int64(id))) }
        #expect(writer.storage.doorbellRings == 1)
        try writer.close()
    }

    @Test("a writer killed with -9: sleepers return by their timeout and see it gone; the next writer wakes them")
    func crashedWriter() throws {
        let path = directory.file("crashed-writer.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let writer = ChildProcess(helper("table-append-hold", path))
        #expect(writer.readLine() == "writing 0")
        writer.writeLine("3")
        #expect(writer.readLine() == "appended 3")

        // A sleeper with a short timeout returns at it, though no one will ring.
        let shortWait = ChildProcess(helper("table-wait", path, "3", "300", "block"))
        // A sleeper with a long one is woken by the next writer.
        let longWait = ChildProcess(helper("table-wait", path, "3", "60000", "block"))
        #expect(shortWait.readLine() == "waiting")
        #expect(longWait.readLine() == "waiting")
        usleep(50_000)
        kill(writer.pid, SIGKILL)
        #expect(writer.wait() == .signaled(SIGKILL))
        let timedOut = parse(shortWait.readLine())
        #expect(shortWait.wait() == .exited(0))
        #expect(timedOut?.count == 3)
        #expect(timedOut?.writer == "gone")

        let next = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        #expect(waitForSleeper(next), "the sleeper moved to the new writer's doorbell")
        let appended = TestSupport.monotonicNanoseconds()
        try next.append(Sample(id: 3))
        let woke = parse(longWait.readLine())
        #expect(longWait.wait() == .exited(0))
        #expect(woke?.count == 4)
        #expect(Double((woke?.at ?? .max) &- appended) / 1e6 < 100)
        try next.close()
    }

    @Test("a writer that closes wakes its sleepers at once, and they see it gone")
    func closingWriterWakesSleepers() throws {
        let (writer, path) = try makeWriter("closing.mrec")
        let reader = ChildProcess(helper("table-wait", path, "0", "60000", "block"))
        #expect(reader.readLine() == "waiting")
        #expect(waitForSleeper(writer))
        try writer.close()
        // Woken with no new record, it sleeps again; a new writer then appends and it sees that.
        let next = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .seconds(5))
        #expect(waitForSleeper(next))
        try next.append(Sample(id: 0))
        #expect(parse(reader.readLine())?.count == 1)
        #expect(reader.wait() == .exited(0))
        try next.close()
    }

    @Test("updates(): each count another process appends, then cancellation ends it within milliseconds")
    func asyncUpdates() async throws {
        let path = directory.file("updates.mrec")
        try RecordTable<Sample>.create(path: path).close()
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        let updates = try reader.updates()
        let writer = ChildProcess(helper("table-append-hold", path))
        #expect(writer.readLine() == "writing 0")
        // The collector reports each count it sees. The helper publishes each record of a batch
        // on its own, so a count inside a batch may show; the next batch starts only after the
        // collector has reported the batch's last count, so 1, 3 and 6 are always among them.
        let (seenCounts, report) = AsyncStream.makeStream(of: Int.self)
        let collector = Task { () throws -> Void in
            defer { report.finish() }
            for try await count in updates {
                report.yield(count)
                if count == 6 { break }
            }
        }
        var seen: [Int] = []
        var reported = seenCounts.makeAsyncIterator()
        for (batch, total) in [(1, 1), (2, 3), (3, 6)] {
            writer.writeLine("\(batch)")
            _ = writer.readLine()
            while let count = await reported.next() {
                seen.append(count)
                if count >= total { break }
            }
        }
        try await collector.value
        #expect(zip(seen, seen.dropFirst()).allSatisfy { $0 < $1 }, "counts must only grow: \(seen)")
        #expect(seen.allSatisfy { (1...6).contains($0) } && [1, 3, 6].allSatisfy(seen.contains), "\(seen)")
        #expect(try reader.refresh() == 6)

        // Cancellation: a follower with nothing to read ends promptly.
        let idleUpdates = try reader.updates()
        let idle = Task { () throws -> Int in
            var yielded = 0
            for try await _ in idleUpdates { yielded += 1 }
            return yielded
        }
        try await Task.sleep(for: .milliseconds(100))
        let cancelled = TestSupport.monotonicNanoseconds()
        idle.cancel()
        #expect(try await idle.value == 0)
        let took = Double(TestSupport.monotonicNanoseconds() - cancelled) / 1e6
        // Unloaded it ends in well under a millisecond (the wake is one FUTEX_WAKE); under the full
        // suite the task may wait for a thread of the cooperative pool, so the bound is generous.
        print("updates() ended \(took) ms after cancellation")
        #expect(took < 500, "the cancelled sequence took \(took) ms to end")
        writer.writeLine("end")
        #expect(writer.wait() == .exited(0))
        try reader.close()
    }

    @Test("a read-only table can be sent to another task")
    func sendingAReader() async throws {
        let path = directory.file("sent.mrec")
        let writer = try RecordTable<Sample>.create(path: path)
        try writer.append(Sample(id: 0))
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        // Region-based isolation: the table moves into the task; this task no longer uses it.
        let count = await Task.detached { [reader] in reader.count }.value
        #expect(count == 1)
        try writer.close()
    }

    @Test("an updates() iterator holds no mapping between next() calls, so a loop left with break leaks nothing")
    func iteratorHoldsNothingBetweenCalls() {
        let (end, output) = run(helper("updates-between", directory.file("between.mrec")))
        #expect(end == .exited(0) && output == "count 1, held maps 0 views 0", "\(output)")
    }

    @Test("waitForRecords(beyond: Int.max) times out instead of overflowing; so does updates() past Int.max")
    func waitingBeyondTheLargestCount() throws {
        let path = directory.file("largest.mrec")
        let writer = try RecordTable<Sample>.create(path: path)
        try writer.append(Sample(id: 0))
        let reader = try RecordTable<Sample>.open(path: path, access: .readOnly)
        #expect(try reader.waitForRecords(beyond: Int.max, timeout: .milliseconds(20)) == 1)
        #expect(try reader.waitForRecords(beyond: Int.max, timeout: .milliseconds(20), strategy: .spin) == 1)
        try reader.close()
        try writer.close()
    }
}
