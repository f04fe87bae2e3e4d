import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@testable import RecordTable

/// What a workload got done before it stopped: the count of its last commit that returned.
final class Progress {
    var created = false
    var committed = 0
}

/// The workload both sweeps run: a table that grows over three committed rounds.
func tableWorkload(_ path: String, _ progress: Progress) throws {
    let table = try RecordTable<Sample>.create(path: path, capacity: 100, durability: .batch)
    progress.created = true
    for round in 0..<3 {
        try table.append(contentsOf: (round * 300..<(round + 1) * 300).map { Sample(id: Int64($0)) })
        try table.commit()
        progress.committed = table.count
    }
    try table.close()
    // A second process's turn: reopen for writing, add a little, and shrink by one.
    let again = try RecordTable<Sample>.open(path: path, access: .readWrite, durability: .batch)
    try again.append(contentsOf: (900..<910).map { Sample(id: Int64($0)) })
    try again.removeLast()
    try again.commit()
    progress.committed = again.count
    try again.close()
}

/// Checks a table file as a later process would find it: it opens with at least `committed`
/// records, all correct, and verifies clean; or it fails to open with a typed error.
/// Returns a description of what is wrong, or nil.
func checkAfterwards(_ path: String, committed: Int, mayRefuse: Bool, allowedCounts: Set<Int>? = nil) -> String? {
    guard fileStatus(path) != nil else {
        return mayRefuse ? nil : "the file is gone after \(committed) committed records"
    }
    let table: DynamicRecordTable
    do {
        table = try DynamicRecordTable.open(path: path)
    } catch {
        // Refusing to open is allowed only before the table's creation completed, and then
        // only with a typed error that names the damage.
        return mayRefuse && [.corrupt, .notATable, .truncated].contains(error.code) ? nil : "open failed: \(error)"
    }
    defer { try? table.close() }
    if table.count < committed { return "\(table.count) records, but \(committed) were committed" }
    if let allowedCounts, !allowedCounts.contains(table.count) {
        return "\(table.count) records, not one of \(allowedCounts.sorted())"
    }
    for index in 0..<table.count {
        let expected = Sample(id: Int64(index))
        let matches = table.withRecordBytes(at: index) { bytes in
            withUnsafeBytes(of: expected) { wanted in
                (0..<Sample.schema.stride).allSatisfy {
                    bytes.unsafeLoad(fromByteOffset: $0, as: UInt8.self) == wanted[$0]
                }
            }
        }
        if !matches { return "record \(index) is wrong" }
    }
    let report = table.verify()
    return report.isClean ? nil : "verify: \(report.findings)"
}

@Suite("Reliability: injected I/O failures and simulated power loss")
struct ReliabilityTests {
    let directory = TemporaryDirectory()

    @Test(
        "every failing posix_fallocate, ftruncate, msync, fsync and mmap, once or from then on, is an error; the file stays sound"
    )
    func faultInjectionSweep() throws {
        let counts = try FaultInjection.run(nil) { try tableWorkload(directory.file("dry.mrec"), Progress()) }.counts
        print(
            "fault injection: calls in one run of the workload: \(counts.filter { $0.value > 0 }.map { "\($0.key) \($0.value)" }.sorted())"
        )
        #expect(
            counts[.msync, default: 0] >= 3 && counts[.posixFallocate, default: 0] >= 2
                && counts[.mmap, default: 0] >= 2)
        var cases = 0
        for call in [FaultInjection.Call.posixFallocate, .ftruncate, .msync, .fsync, .mmap] {
            for failAt in stride(from: 1, through: counts[call, default: 0], by: 1) {
                for persistent in [false, true] {
                    let path = directory.file("\(call)-\(failAt)-\(persistent).mrec")
                    let progress = Progress()
                    var thrown: (any Error)?
                    let failures = FaultInjection.run(
                        FaultInjection.Plan(call: call, failAt: failAt, persistent: persistent)
                    ) {
                        do { try tableWorkload(path, progress) } catch { thrown = error }
                    }.failures
                    #expect(
                        failures >= 1,
                        "\(call) #\(failAt) was not reached (the workload ended with \(String(describing: thrown)))")
                    #expect(thrown != nil, "\(call) #\(failAt) failed, and the workload reported success")
                    #expect(
                        thrown is RecordTableError,
                        "\(call) #\(failAt): \(String(describing: thrown)) is not a RecordTableError")
                    if let problem = checkAfterwards(path, committed: progress.committed, mayRefuse: !progress.created)
                    {
                        Issue.record("\(call) #\(failAt)\(persistent ? "+" : ""): \(problem)")
                    }
                    cases += 1
                }
            }
        }
        #expect(cases >= 20)
    }

    @Test("simulated power loss at every sync point: mixes of old and new pages, torn header sectors")
    func powerLossSweep() throws {
        let wanted = getenv("MAPPED_POWER_LOSS_IMAGES").flatMap { Int(String(cString: $0)) } ?? 1000
        let path = directory.file("power.mrec")
        let image = directory.file("image.mrec")
        var disk: [UInt8] = []  // what the disk holds: the file as of the last completed sync
        var syncPoints: [(current: [UInt8], disk: [UInt8], created: Bool, committed: Int, next: Int)] = []
        let progress = Progress()
        var counting = 0  // the count the commit in progress is writing
        FaultInjection.observeSyncs { syncedPath, range in
            // `create` syncs the header while the file has no name yet, then links it and syncs
            // the directory: a crash before that leaves no file at all. So the disk starts as the
            // synced header of the first file seen at the path.
            guard syncedPath == path, let status = fileStatus(path) else { return }
            let size = Int(status.st_size)
            let current = preadBytes(path, offset: 0, count: size)
            if disk.isEmpty { disk = Array(current[..<4096]) }
            syncPoints.append((current, disk, progress.created, progress.committed, counting))
            // After the sync, the synced range (or the whole file) is on disk.
            if disk.count < current.count { disk += [UInt8](repeating: 0, count: current.count - disk.count) }
            if disk.count > current.count { disk.removeLast(disk.count - current.count) }
            let synced = range.map { max(0, $0.lowerBound)..<min(current.count, $0.upperBound) } ?? 0..<current.count
            if !synced.isEmpty { disk.replaceSubrange(synced, with: current[synced]) }
        }
        defer { FaultInjection.observeSyncs(nil) }
        let table = try RecordTable<Sample>.create(path: path, capacity: 100, durability: .batch)
        progress.created = true
        for round in 0..<4 {
            try table.append(contentsOf: (round * 250..<(round + 1) * 250).map { Sample(id: Int64($0)) })
            counting = table.count
            try table.commit()
            progress.committed = table.count
        }
        try table.close()
        #expect(syncPoints.count >= 8)

        var generator = SystemRandomNumberGenerator()
        var opened = 0, refused = 0
        for number in 0..<wanted {
            let point = syncPoints[number % syncPoints.count]
            // A crash before this sync: each 4 KiB page written since the last sync is old or new;
            // the first page is torn at 512-byte sectors.
            var bytes = point.disk
            if bytes.count < point.current.count {
                bytes += [UInt8](repeating: 0, count: point.current.count - bytes.count)
            }
            bytes.removeLast(max(0, bytes.count - point.current.count))
            for page in stride(from: 0, to: point.current.count, by: 4096) {
                let end = min(page + 4096, point.current.count)
                if page == 0 {
                    for sector in stride(from: 0, to: end, by: 512) where Bool.random(using: &generator) {
                        bytes.replaceSubrange(
                            sector..<min(sector + 512, end), with: point.current[sector..<min(sector + 512, end)])
                    }
                } else if Bool.random(using: &generator) {
                    bytes.replaceSubrange(page..<end, with: point.current[page..<end])
                }
            }
            // The machine rebooted: the live count's boot identifier no longer matches.
            if bytes.count >= TableFormat.liveOffset + 16 { bytes[TableFormat.liveOffset] ^= 0xFF }
            unlink(image)
            writeFile(image, bytes)
            if let problem = checkAfterwards(
                image, committed: point.committed, mayRefuse: !point.created,
                allowedCounts: [point.committed, point.next])
            {
                Issue.record("image \(number) at sync point \(number % syncPoints.count): \(problem)")
                break
            }
            if (try? DynamicRecordTable.open(path: image).close()) != nil {
                opened += 1
                // A writer of the new boot takes the image over: at every step of its takeover, a
                // reader of the new boot counts no record past the commit point (the live word
                // left from before the power loss must not be paired with the new boot's identity).
                let newBoot = (0..<16).map { _ in UInt8.random(in: 0...255) }
                let storage = try TableStorage.open(
                    path: image, writable: true, durability: .batch, waitForWriter: nil, bootIdentifier: newBoot
                ) { bytes in
                    let view = bytes
                    let live =
                        view[TableFormat.liveOffset..<TableFormat.liveOffset + 16].elementsEqual(newBoot)
                        ? view.loadLittleEndian(TableFormat.liveCountOffset, as: UInt64.self) : nil
                    let (_, slot, count) =
                        (try? TableStorage.decodeState(view, liveWord: live, path: image, operation: "test")) ?? (
                            nil, nil, -1
                        )
                    #expect(
                        count <= (slot?.count ?? -1),
                        "image \(number): a reader of the new boot counted \(count) records mid-takeover")
                }
                try storage.close()
            } else {
                refused += 1
            }
        }
        #expect(opened + refused == wanted)
        print(
            "power loss: \(wanted) images at \(syncPoints.count) sync points: \(opened) opened intact, \(refused) refused with a typed error before the table was created"
        )
    }
}

/// Issue #18: dropping a table costs what closing it costs, and syncs only what its durability promises.
@Suite("Closing and dropping sync the same", .timeLimit(.minutes(3)))
struct DropSyncTests {
    let directory = TemporaryDirectory()

    /// msync and fsync calls of a workload that appends 10,000 records and then closes or drops.
    func syncs(_ durability: Durability, closing: Bool, _ name: String) throws -> (msync: Int, fsync: Int) {
        let path = directory.file(name)
        let counts = try FaultInjection.run(nil) { () throws -> Void in
            let table = try RecordTable<Sample>.create(path: path, durability: durability)
            try table.append(contentsOf: (0..<10_000).map { Sample(id: Int64($0)) })
            if closing { try table.close() }
        }.counts
        let reopened = try RecordTable<Sample>.open(path: path)
        #expect(reopened.count == 10_000)  // dropped or closed, every record is there
        try reopened.close()
        return (counts[.msync] ?? -1, counts[.fsync] ?? -1)
    }

    @Test("Durability.none: dropping without close makes no sync at all, as close does not")
    func noneMakesNoSync() throws {
        let dropped = try syncs(.none, closing: false, "dropped.mrec")
        let closed = try syncs(.none, closing: true, "closed.mrec")
        #expect(dropped.msync == 0 && dropped.fsync == 0, "dropping synced: \(dropped)")
        #expect(closed.msync == 0 && closed.fsync == 0)
    }

    @Test("Durability.batch: dropping syncs exactly what close syncs")
    func batchSyncsTheSame() throws {
        let dropped = try syncs(.batch, closing: false, "dropped-batch.mrec")
        let closed = try syncs(.batch, closing: true, "closed-batch.mrec")
        #expect(dropped.msync == closed.msync && dropped.fsync == closed.fsync, "dropped \(dropped), closed \(closed)")
        #expect(closed.msync > 0)  // the commit's syncs
    }
}

/// Where each msync of records during `body` starts (msync works in whole pages), for tables of
/// 10,000 `PlainPair`s: records end past 100,000 bytes, and commit slots lie in the first pages.
func recordSyncStarts(during body: () throws -> Void) rethrows -> [Int] {
    var starts: [Int] = []
    FaultInjection.observeSyncs { _, range in
        if let range, range.upperBound > 100_000 { starts.append(range.lowerBound) }
    }
    defer { FaultInjection.observeSyncs(nil) }
    try body()
    return starts
}

/// A record with neither Bools nor padding: its in-place writes take the one-compare fast path.
@MappedRecord
struct PlainPair: Equatable {
    var key: Int64
    var amount: Double
}

/// Issue #18: the fast in-place write path still tells the next durable commit what to sync.
@Suite("In-place writes are synced by the next commit", .timeLimit(.minutes(3)))
struct InPlaceSyncTests {
    let directory = TemporaryDirectory()

    /// Where each msync of records starts (msync works in whole pages), after in-place writes at
    /// each batch's indices and a commit.
    func syncedStarts(_ durability: Durability, writesBeforeEachCommit batches: [[Int]]) throws -> [Int] {
        let table = try RecordTable<PlainPair>.create(
            path: directory.file("\(durability).mrec"), durability: durability)
        try table.append(contentsOf: (0..<10_000).map { PlainPair(key: Int64($0), amount: 0) })
        try table.commit()
        let starts = try recordSyncStarts {
            for batch in batches {
                for index in batch { table[index].amount += 1 }  // _modify, in place
                try table.commit()
            }
        }
        #expect(table.map(\.amount).reduce(0, +) == Double(batches.joined().count))
        try table.close()
        return starts
    }

    @Test("Durability.batch: each commit syncs from the lowest record written since the last one")
    func batchSyncsWrittenRange() throws {
        let stride = MemoryLayout<PlainPair>.stride
        // 9,000 then 9,500 (above it: the fast path, no note needed), then 10 then 7,000.
        let starts = try syncedStarts(.batch, writesBeforeEachCommit: [[9_000, 9_500], [10, 7_000]])
        try #require(starts.count == 2, "\(starts)")
        // The second sync starts 8,990 records earlier than the first, give or take the page rounding.
        #expect(abs((starts[0] - starts[1]) - 8_990 * stride) < 4096, "\(starts)")
    }

    @Test("Durability.none: in-place writes take the fast path and no commit syncs records")
    func noneSyncsNothing() throws {
        let starts = try syncedStarts(.none, writesBeforeEachCommit: [[9_000, 9_500], [10, 7_000]])
        #expect(starts.isEmpty, "\(starts)")
    }
}

/// A record with a Bool and padding: 1 byte of flag, 7 of padding, then 8 of count.
@MappedRecord
struct FlaggedCount: Equatable {
    var flag: Bool
    var count: Int64
}

/// Issue #18: `withMutableRecords`, the update path that keeps the table's state in registers.
@Suite("Updating records through a MutableSpan", .timeLimit(.minutes(3)))
struct MutableRecordsTests {
    let directory = TemporaryDirectory()

    @Test("changes land in the file, a range limits them, and a reader sees them")
    func changesLandInTheFile() throws {
        let path = directory.file("pairs.mrec")
        let table = try RecordTable<PlainPair>.create(path: path)
        try table.append(contentsOf: (0..<1_000).map { PlainPair(key: Int64($0), amount: 0) })
        let touched = table.withMutableRecords(in: 100..<200) { records in
            for index in records.indices { records[index].amount = Double(index) }
            return records.count
        }
        #expect(touched == 100)
        try table.close()
        let reader = try RecordTable<PlainPair>.open(path: path)
        #expect(
            reader[99].amount == 0 && reader[100].amount == 0 && reader[199].amount == 99 && reader[200].amount == 0)
        try reader.close()
    }

    @Test("Bools are mended before the body sees them, and padding is zeroed after it")
    func boolsAndPadding() throws {
        let path = directory.file("flags.mrec")
        let table = try RecordTable<FlaggedCount>.create(path: path)
        try table.append(contentsOf: (0..<4).map { FlaggedCount(flag: false, count: Int64($0)) })
        try table.close()
        // Below the API: record 1's Bool byte holds 7, record 2's padding holds 0xAA.
        let dataOffset = 4096, stride = MemoryLayout<FlaggedCount>.stride
        let descriptor = open(path, O_WRONLY)
        var seven: UInt8 = 7, junk: UInt8 = 0xAA
        #expect(pwrite(descriptor, &seven, 1, off_t(dataOffset + stride)) == 1)
        #expect(pwrite(descriptor, &junk, 1, off_t(dataOffset + 2 * stride + 3)) == 1)
        close(descriptor)
        let writer = try RecordTable<FlaggedCount>.open(path: path, access: .readWrite, waitForWriter: .seconds(10))
        let flags = writer.withMutableRecords { records in
            var seen: [UInt8] = []
            for index in records.indices {
                seen.append(unsafe withUnsafeBytes(of: records[index].flag) { $0[0] })
                records[index].count += 10
            }
            return seen
        }
        #expect(flags == [0, 1, 0, 0])
        try writer.close()
        let bytes = preadBytes(path, offset: dataOffset, count: 4 * stride)
        #expect(bytes[stride] == 1)
        #expect(bytes[2 * stride + 1..<2 * stride + 8].allSatisfy { $0 == 0 })
        let reader = try RecordTable<FlaggedCount>.open(path: path)
        #expect(reader.map(\.count) == [10, 11, 12, 13])
        try reader.close()
    }

    @Test("Durability.batch: the next commit syncs from the range's first record")
    func nextCommitSyncsTheRange() throws {
        let table = try RecordTable<PlainPair>.create(path: directory.file("batch.mrec"), durability: .batch)
        try table.append(contentsOf: (0..<10_000).map { PlainPair(key: Int64($0), amount: 0) })
        try table.commit()
        let starts = try recordSyncStarts {
            table.withMutableRecords(in: 3_000..<3_010) { records in
                for index in records.indices { records[index].amount += 1 }
            }
            try table.commit()
        }
        try #require(starts.count == 1, "\(starts)")
        let first = 4096 + 3_000 * MemoryLayout<PlainPair>.stride
        #expect(starts[0] <= first && first - starts[0] < 4096, "\(starts)")
        try table.close()
    }

    @Test("a reader cannot take the records to change them")
    func readersTrap() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            // The child traps, so no defer of its runs: the name goes at once, the open table stays.
            let path = "/tmp/mapped-records-mutable-\(getpid()).mrec"
            let table = try RecordTable<PlainPair>.create(path: path)
            try table.append(PlainPair(key: 1, amount: 1))
            try table.close()
            let reader = try RecordTable<PlainPair>.open(path: path)
            unlink(path)
            reader.withMutableRecords { $0[0].amount = 2 }
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("RecordTable: cannot write to a table opened read-only"))
    }
}
