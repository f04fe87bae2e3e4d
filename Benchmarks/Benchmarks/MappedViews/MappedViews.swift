// Typed access through MappedViewAccessor, each beside a raw-pointer baseline that
// reads the same mapping with the same indices in the same run. Ratios are in
// docs/PERFORMANCE.md.

import Benchmark
import Glibc
import MemoryMappedFiles

/// The 32-byte record of the issue and of the peer comparison.
struct Record: BitwiseCopyable {
    var id: Int64
    var x: Double
    var y: Double
    var flags: Int32
    var pad: Int32
}

let recordSize = MemoryLayout<Record>.stride  // 32
let operationsPerSample = 1 << 20

/// A mapped file kept open for the whole run, with every page already faulted in.
final class Fixture: @unchecked Sendable {
    // SAFETY (Sendable): the benchmarks run one at a time.
    let map: MemoryMappedFile
    var view: MappedViewAccessor
    let records: Int
    /// Random record indices, the same for every benchmark that reads this fixture.
    let indices: [Int]

    /// A file in /tmp, or memory (a memfd) that the kernel never writes back.
    enum Backing { case file, memory }

    init(bytes: Int, name: String, backing: Backing = .file) {
        let path = "/tmp/mapped-records-bench-\(name)-\(getpid()).data"
        do {
            switch backing {
            case .file: map = try MemoryMappedFile.createFromFile(path: path, mode: .create, capacity: bytes)
            case .memory: map = try MemoryMappedFile.createAnonymous(capacity: bytes)
            }
            view = try map.makeViewAccessor()
        } catch {
            fatalError("benchmark setup: \(error)")
        }
        if backing == .file { unlink(path) }  // the mapping keeps the file alive; nothing is left behind
        records = bytes / recordSize
        var generator = SplitMix64(seed: 42)
        indices = (0..<operationsPerSample).map { _ in Int(generator.next() % UInt64(bytes / recordSize)) }
        // Fill and fault in every page, so no sample pays for page faults.
        for index in 0..<records {
            view.write(Record(id: Int64(index), x: Double(index), y: 1, flags: 0, pad: 0), at: index * recordSize)
        }
    }
}

struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let large = Fixture(bytes: 512 << 20, name: "large")  // 512 MiB: warm in the page cache, not in CPU caches
let small = Fixture(bytes: 256 << 10, name: "small")  // 256 KiB: resident in L2
// Writes go to memory that is never written back: after writeback cleans a file page, the
// next store takes a write fault, which lands on whichever benchmark happens to be running.
let largeMemory = Fixture(bytes: 512 << 20, name: "large-memory", backing: .memory)
let smallMemory = Fixture(bytes: 256 << 10, name: "small-memory", backing: .memory)

// MARK: - Measured loops. Each takes the view once per sample, as user code does.

@inline(never)
func randomReads(_ view: borrowing MappedViewAccessor, _ indices: [Int]) -> Double {
    var sum = 0.0
    for index in indices { sum += view.read(Record.self, at: index &* recordSize).x }
    return sum
}

@inline(never)
func rawRandomReads(_ view: borrowing MappedViewAccessor, _ indices: [Int]) -> Double {
    view.withUnsafeMutableBytes { bytes in
        let base = bytes.baseAddress!
        var sum = 0.0
        for index in indices { sum += base.load(fromByteOffset: index &* recordSize, as: Record.self).x }
        return sum
    }
}

@inline(never)
func randomWrites(_ view: inout MappedViewAccessor, _ indices: [Int]) {
    for index in indices {
        view.write(Record(id: Int64(index), x: 2, y: 3, flags: 4, pad: 0), at: index &* recordSize)
    }
}

@inline(never)
func rawRandomWrites(_ view: borrowing MappedViewAccessor, _ indices: [Int]) {
    view.withUnsafeMutableBytes { bytes in
        let base = bytes.baseAddress!
        for index in indices {
            base.storeBytes(
                of: Record(id: Int64(index), x: 2, y: 3, flags: 4, pad: 0), toByteOffset: index &* recordSize,
                as: Record.self)
        }
    }
}

@inline(never)
func scan(_ view: borrowing MappedViewAccessor, records: Int) -> Double {
    var sum = 0.0
    for index in 0..<records { sum += view.read(Double.self, at: index &* recordSize &+ 8) }
    return sum
}

@inline(never)
func spanScan(_ view: borrowing MappedViewAccessor, records: Int) -> Double {
    let elements = view.elements(of: Record.self, count: records)
    var sum = 0.0
    for index in elements.indices { sum += elements[index].x }
    return sum
}

@inline(never)
func rawScan(_ view: borrowing MappedViewAccessor, records: Int) -> Double {
    view.withUnsafeMutableBytes { bytes in
        let base = bytes.baseAddress!
        var sum = 0.0
        for index in 0..<records { sum += base.load(fromByteOffset: index &* recordSize &+ 8, as: Double.self) }
        return sum
    }
}

let bulkCount = (1 << 20) / recordSize  // 1 MiB of records per copy
nonisolated(unsafe) let bulkBuffer = UnsafeMutableBufferPointer<Record>.allocate(capacity: bulkCount)

let benchmarks: @Sendable () -> Void = {
    // Random access: one sample is 2^20 operations, so microseconds per sample read as
    // nanoseconds per operation (÷ 1.05).
    let perSample = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .syscalls], timeUnits: .microseconds,
        maxDuration: .seconds(3), maxIterations: 40)
    let perOperation = perSample

    bulkBuffer.initialize(repeating: Record(id: 0, x: 0, y: 0, flags: 0, pad: 0))

    Benchmark("random read 512 MiB: raw pointer", configuration: perOperation) { _ in
        blackHole(rawRandomReads(large.view, large.indices))
    }
    Benchmark("random read 512 MiB: accessor", configuration: perOperation) { _ in
        blackHole(randomReads(large.view, large.indices))
    }
    Benchmark("random read 256 KiB: raw pointer", configuration: perOperation) { _ in
        blackHole(rawRandomReads(small.view, small.indices))
    }
    Benchmark("random read 256 KiB: accessor", configuration: perOperation) { _ in
        blackHole(randomReads(small.view, small.indices))
    }
    Benchmark("random write 512 MiB: raw pointer", configuration: perOperation) { _ in
        rawRandomWrites(largeMemory.view, largeMemory.indices)
    }
    Benchmark("random write 512 MiB: accessor", configuration: perOperation) { _ in
        randomWrites(&largeMemory.view, largeMemory.indices)
    }
    Benchmark("random write 256 KiB: raw pointer", configuration: perOperation) { _ in
        rawRandomWrites(smallMemory.view, smallMemory.indices)
    }
    Benchmark("random write 256 KiB: accessor", configuration: perOperation) { _ in
        randomWrites(&smallMemory.view, smallMemory.indices)
    }
    Benchmark("scan 512 MiB: raw pointer", configuration: perSample) { _ in
        blackHole(rawScan(large.view, records: large.records))
    }
    Benchmark("scan 512 MiB: accessor read(at:)", configuration: perSample) { _ in
        blackHole(scan(large.view, records: large.records))
    }
    Benchmark("scan 512 MiB: accessor elements(of:) span", configuration: perSample) { _ in
        blackHole(spanScan(large.view, records: large.records))
    }
    Benchmark("bulk read 1 MiB: memcpy", configuration: perSample) { _ in
        for _ in 0..<64 {
            large.view.withUnsafeMutableBytes { bytes in
                UnsafeMutableRawPointer(bulkBuffer.baseAddress!).copyMemory(
                    from: bytes.baseAddress! + (1 << 24), byteCount: 1 << 20)
            }
        }
    }
    Benchmark("bulk read 1 MiB: accessor read(into:)", configuration: perSample) { _ in
        for _ in 0..<64 { large.view.read(into: bulkBuffer, at: 1 << 24) }
    }
    Benchmark("bulk write 1 MiB: memcpy", configuration: perSample) { _ in
        for _ in 0..<64 {
            largeMemory.view.withUnsafeMutableBytes { bytes in
                (bytes.baseAddress! + (1 << 25)).copyMemory(
                    from: UnsafeRawPointer(bulkBuffer.baseAddress!), byteCount: 1 << 20)
            }
        }
    }
    Benchmark("bulk write 1 MiB: accessor write(contentsOf:)", configuration: perSample) { _ in
        for _ in 0..<64 { largeMemory.view.write(contentsOf: UnsafeBufferPointer(bulkBuffer), at: 1 << 25) }
    }
    let perView = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .syscalls], timeUnits: .nanoseconds,
        scalingFactor: .kilo, maxDuration: .seconds(3), maxIterations: 40)
    Benchmark("view create+close 64 KiB: mmap+munmap", configuration: perView) { benchmark in
        for index in benchmark.scaledIterations {
            let start = mmap(nil, 65536, PROT_READ, MAP_SHARED, large.map.fileDescriptor, off_t((index % 4096) * 65536))
            munmap(start, 65536)
        }
    }
    Benchmark("view create+close 64 KiB: makeViewAccessor", configuration: perView) { benchmark in
        for index in benchmark.scaledIterations {
            let view = try large.map.makeViewAccessor(offset: (index % 4096) * 65536 + 17, length: 65536, access: .read)
            try view.close()
        }
    }
}
