// RecordTable's hot paths (append, random read by index, scan) and the cost of each
// durability mode, each beside a raw-pointer baseline on a mapping of the same size in
// the same run. Ratios are in docs/PERFORMANCE.md.

import Benchmark
import Glibc
import MemoryMappedFiles
import RecordTable

/// The 32-byte record of the issue and of the peer comparison.
@MappedRecord
struct Record {
    var id: Int64
    var x: Double
    var y: Double
    var flags: Int32
    var pad: Int32
}

let recordsPerSample = 1 << 20  // 32 MiB of appends per sample
let largeCount = 16 << 20  // 512 MiB table

func temporaryPath(_ name: String) -> String { "/tmp/mapped-records-bench-\(name)-\(getpid()).mrec" }

/// A table kept open for the run; its file is unlinked at once, so nothing is left behind.
func makeTable(_ name: String, durability: Durability, records: Int) -> RecordTable<Record> {
    let path = temporaryPath(name)
    do {
        let table = try RecordTable<Record>.create(path: path, capacity: records, durability: durability)
        unlink(path)
        for index in 0..<records {
            try table.append(Record(id: Int64(index), x: Double(index), y: 1, flags: 0, pad: 0))
        }
        return table
    } catch {
        fatalError("benchmark setup: \(error)")
    }
}

/// A raw mapping of `bytes` for the baselines, faulted in.
final class RawMapping: @unchecked Sendable {
    // SAFETY (Sendable): the benchmarks run one at a time.
    let map: MemoryMappedFile
    var view: MappedViewAccessor
    let base: UnsafeMutableRawPointer
    init(bytes: Int, name: String) {
        let path = temporaryPath(name)
        do {
            map = try MemoryMappedFile.createFromFile(path: path, mode: .create, capacity: bytes)
            view = try map.makeViewAccessor()
        } catch {
            fatalError("benchmark setup: \(error)")
        }
        unlink(path)
        base = view.withUnsafeMutableBytes { $0.baseAddress! }
        for offset in stride(from: 0, to: bytes, by: 4096) {
            base.storeBytes(of: 0, toByteOffset: offset, as: UInt8.self)
        }
    }
}

nonisolated(unsafe) let appendTable = makeTable("append", durability: .none, records: recordsPerSample)
nonisolated(unsafe) let largeTable = makeTable("large", durability: .none, records: largeCount)
let appendRaw = RawMapping(bytes: recordsPerSample * 32, name: "append-raw")
let indices: [Int] = {
    var state: UInt64 = 42
    return (0..<(1 << 20)).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(state >> 33) % largeCount
    }
}()
let batch = (0..<recordsPerSample).map { Record(id: Int64($0), x: 1, y: 2, flags: 3, pad: 0) }

@inline(never)
func appendOneByOne(_ table: RecordTable<Record>, count: Int) throws {
    try table.removeAll()
    for index in 0..<count { try table.append(Record(id: Int64(index), x: 1, y: 2, flags: 3, pad: 0)) }
}

@inline(never)
func rawSequentialWrites(_ base: UnsafeMutableRawPointer, count: Int) {
    for index in 0..<count {
        base.storeBytes(
            of: Record(id: Int64(index), x: 1, y: 2, flags: 3, pad: 0), toByteOffset: index &* 32, as: Record.self)
    }
}

@inline(never)
func randomReads(_ table: RecordTable<Record>) -> Double {
    var sum = 0.0
    for index in indices { sum += table[index].x }
    return sum
}

@inline(never)
func uncheckedRandomReads(_ table: RecordTable<Record>) -> Double {
    var sum = 0.0
    for index in indices { sum += unsafe table[unchecked: index].x }
    return sum
}

@inline(never)
func randomUpdates(_ table: RecordTable<Record>) {
    for (step, index) in indices.enumerated() { table[index].y = Double(step) }
}

@inline(never)
func uncheckedRandomUpdates(_ table: RecordTable<Record>) {
    for (step, index) in indices.enumerated() { unsafe table[unchecked: index].y = Double(step) }
}

@inline(never)
func rawRandomUpdates(_ base: UnsafeMutableRawPointer) {
    for (step, index) in indices.enumerated() {
        base.storeBytes(of: Double(step), toByteOffset: index &* 32 &+ 16, as: Double.self)
    }
}

@inline(never)
func rawRandomReads(_ base: UnsafeRawPointer) -> Double {
    var sum = 0.0
    for index in indices { sum += base.load(fromByteOffset: index &* 32 &+ 8, as: Double.self) }
    return sum
}

@inline(never)
func scanForIn(_ table: RecordTable<Record>) -> Double {
    var sum = 0.0
    for record in table { sum += record.x }
    return sum
}

@inline(never)
func scanSpan(_ table: RecordTable<Record>) throws -> Double {
    try table.withRecords { span in
        var sum = 0.0
        for index in span.indices { sum += span[index].x }
        return sum
    }
}

@inline(never)
func rawScan(_ base: UnsafeRawPointer, count: Int) -> Double {
    var sum = 0.0
    for index in 0..<count { sum += base.load(fromByteOffset: index &* 32 &+ 8, as: Double.self) }
    return sum
}

/// The first record of the large table in this process's mapping, for the raw baselines.
func largeBase() -> UnsafeRawPointer {
    try! largeTable.withRecords { UnsafeRawPointer($0.withUnsafeBufferPointer { $0.baseAddress! }) }
}

let benchmarks: @Sendable () -> Void = {
    let perSample = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal], timeUnits: .microseconds, maxDuration: .seconds(3), maxIterations: 30)

    Benchmark("append 1 Mi records one by one: raw pointer", configuration: perSample) { _ in
        rawSequentialWrites(appendRaw.base, count: recordsPerSample)
    }
    Benchmark("append 1 Mi records one by one: table append(_:)", configuration: perSample) { _ in
        try appendOneByOne(appendTable, count: recordsPerSample)
    }
    Benchmark("append 1 Mi records as a batch: memcpy", configuration: perSample) { _ in
        batch.withUnsafeBytes { appendRaw.base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }
    Benchmark("append 1 Mi records as a batch: table append(contentsOf:)", configuration: perSample) { _ in
        try appendTable.removeAll()
        try appendTable.append(contentsOf: batch.span)
    }
    Benchmark("random read 512 MiB: raw pointer", configuration: perSample) { _ in
        blackHole(rawRandomReads(largeBase()))
    }
    Benchmark("random read 512 MiB: table[i]", configuration: perSample) { _ in
        blackHole(randomReads(largeTable))
    }
    Benchmark("random read 512 MiB: table[unchecked:]", configuration: perSample) { _ in
        blackHole(uncheckedRandomReads(largeTable))
    }
    Benchmark("random update 512 MiB: raw pointer", configuration: perSample) { _ in
        rawRandomUpdates(UnsafeMutableRawPointer(mutating: largeBase()))
    }
    Benchmark("random update 512 MiB: table[i]", configuration: perSample) { _ in
        randomUpdates(largeTable)
    }
    Benchmark("random update 512 MiB: table[unchecked:]", configuration: perSample) { _ in
        uncheckedRandomUpdates(largeTable)
    }
    Benchmark("scan 512 MiB: raw pointer", configuration: perSample) { _ in
        blackHole(rawScan(largeBase(), count: largeCount))
    }
    Benchmark("scan 512 MiB: table for-in", configuration: perSample) { _ in
        blackHole(scanForIn(largeTable))
    }
    Benchmark("scan 512 MiB: table withRecords span", configuration: perSample) { _ in
        blackHole(try scanSpan(largeTable))
    }

    // Durability: 1000 appends per sample, committed as each mode commits.
    for durability in Durability.allCases {
        let table = makeTable("durability-\(durability)", durability: durability, records: 0)
        Benchmark("durability 1000 appends + commit: \(durability)", configuration: perSample) { _ in
            for index in 0..<1000 { try table.append(Record(id: Int64(index), x: 1, y: 2, flags: 3, pad: 0)) }
            try table.commit()
        }
    }
}
