// `make perfgate`: instructions per operation of the hot paths, counted by callgrind, which gives
// the same total for the same binary and input whatever else the machine does (docs/PERFORMANCE.md,
// "The regression gate"). Tests/PerfGate/run.sh runs each operation twice, N and 2N times, on the
// same fixed input, and divides the difference by N, so start-up and set-up cancel out.
//
//   mapped-perfgate OPERATION N DIRECTORY
//
// It is built in release without the macro trait (the record's schema is declared by hand), so
// the gate needs no swift-syntax.

import Glibc
import MappedRegistry
import MemoryMappedFiles
import RecordTable

/// The 32-byte record of the benchmarks and of the peer comparison.
struct GateRecord: MappedRecord, Equatable {
    var id: Int64
    var x: Double
    var y: Double
    var flags: Int32
    var pad: Int32

    static let schema = RecordSchema(
        GateRecord.self,
        fields: [
            .field("id", \.id), .field("x", \.x), .field("y", \.y), .field("flags", \.flags), .field("pad", \.pad),
        ])
}

/// The fixed input: a table of this many records, and this many random indices into it.
let tableRecords = 1 << 16
let batchRecords = 1000

func fail(_ message: String) -> Never {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(2)
}

/// A deterministic sequence of indices below `bound` (a 64-bit LCG).
struct Indices: IteratorProtocol {
    var state: UInt64 = 42
    let bound: Int
    mutating func next() -> Int? {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(state >> 33) % bound
    }
}

/// Prints the result, so that the compiler computes it (run.sh discards standard output).
@inline(never)
func blackHole(_ value: Double) { print(value) }

func filledTable(_ path: String) throws -> RecordTable<GateRecord> {
    let table = try RecordTable<GateRecord>.create(path: path, capacity: tableRecords, durability: .none)
    let records = (0..<tableRecords).map { GateRecord(id: Int64($0), x: Double($0), y: 2, flags: 3, pad: 0) }
    try table.append(contentsOf: records)
    return table
}

/// A child process (this program, `hold-name`) that holds the name "gate-map", so that the
/// lookups measured are those of a name another process holds. Callgrind does not follow it.
struct HoldingProcess {
    let pid: pid_t
    let input: Int32

    init(directory: String) throws {
        var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
        guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { fail("pipe") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        for end in toChild + fromChild { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        let words = [CommandLine.arguments[0], "hold-name", "1", directory]
        let argv = words.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, words[0], &actions, nil, argv, environ) == 0 else { fail("posix_spawn") }
        posix_spawn_file_actions_destroy(&actions)
        close(toChild[0])
        close(fromChild[1])
        var line = [UInt8](repeating: 0, count: 6)
        guard read(fromChild[0], &line, 6) == 6 else { fail("the holding process did not start") }
        close(fromChild[0])
        self.pid = pid
        self.input = toChild[1]
    }

    /// Lets the child close the name and exit, and waits for it.
    func finish() {
        close(input)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 4, let n = Int(arguments[2]), n > 0 else {
    fail("usage: mapped-perfgate OPERATION N DIRECTORY")
}
let operation = arguments[1]
let directory = arguments[3]
let path = directory + "/gate.mrec"

do {
    switch operation {
    case "random-read":
        let table = try filledTable(path)
        var indices = Indices(bound: tableRecords)
        var sum = 0.0
        for _ in 0..<n { sum += table[indices.next()!].x }
        blackHole(sum)
        try table.close()

    case "random-read-unchecked":
        let table = try filledTable(path)
        var indices = Indices(bound: tableRecords)
        var sum = 0.0
        for _ in 0..<n { sum += unsafe table[unchecked: indices.next()!].x }
        blackHole(sum)
        try table.close()

    case "random-read-raw":  // the baseline: a raw pointer to the same records
        let table = try filledTable(path)
        let base = try table.withRecords { unsafe UnsafeRawPointer($0.withUnsafeBufferPointer { $0.baseAddress! }) }
        var indices = Indices(bound: tableRecords)
        var sum = 0.0
        for _ in 0..<n { sum += unsafe base.load(fromByteOffset: indices.next()! &* 32 &+ 8, as: Double.self) }
        blackHole(sum)
        try table.close()

    case "update":
        let table = try filledTable(path)
        var indices = Indices(bound: tableRecords)
        for i in 0..<n { table[indices.next()!].y = Double(i) }
        try table.close()

    case "append-one":  // with the doorbell in place and nobody asleep
        let table = try RecordTable<GateRecord>.create(path: path, capacity: 1 << 21, durability: .none)
        for i in 0..<n { try table.append(GateRecord(id: Int64(i), x: 1, y: 2, flags: 3, pad: 0)) }
        try table.close()

    case "append-one-raw":  // the baseline: store the record and publish the count with a release store
        let records = UnsafeMutableRawPointer.allocate(byteCount: (n + 1) * 32, alignment: 64)
        let countWord = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
        for i in 0..<n {
            records.storeBytes(
                of: GateRecord(id: Int64(i), x: 1, y: 2, flags: 3, pad: 0), toByteOffset: i * 32, as: GateRecord.self)
            SharedAtomics.storeRelease(countWord, UInt64(i + 1))
        }
        blackHole(Double(SharedAtomics.loadAcquire(countWord)))
        records.deallocate()
        countWord.deallocate()

    case "append-batch":  // one operation: a batch of 1,000 records
        let table = try RecordTable<GateRecord>.create(path: path, capacity: 1 << 21, durability: .none)
        let batch = (0..<batchRecords).map { GateRecord(id: Int64($0), x: 1, y: 2, flags: 3, pad: 0) }
        for _ in 0..<n { try table.append(contentsOf: batch) }
        try table.close()

    case "scan":  // one operation: a for-in over the whole table
        let table = try filledTable(path)
        var sum = 0.0
        for _ in 0..<n {
            for record in table { sum += record.x }
        }
        blackHole(sum)
        try table.close()

    case "open-first-read":  // open, read record 0, close
        try filledTable(path).close()
        var sum = 0.0
        for _ in 0..<n {
            let table = try RecordTable<GateRecord>.open(path: path)
            sum += table[0].x
            try table.close()
        }
        blackHole(sum)

    case "registry-lookup":  // openExisting + close of a name another process holds
        let holder = try HoldingProcess(directory: directory)
        let registry = try Registry.open(directory: directory + "/registry")
        for _ in 0..<n {
            let map = try MemoryMappedFile.openExisting(name: "gate-map", registry: registry)
            try map.close()
        }
        holder.finish()

    case "registry-lookup-raw":  // the baseline: open, fstat, mmap, munmap, close of a 4 KiB file
        let file = directory + "/raw-object"
        let created = open(file, O_RDWR | O_CREAT, 0o600)
        guard created >= 0, ftruncate(created, 4096) == 0 else { fail("cannot create \(file)") }
        close(created)
        var sum = 0.0
        for _ in 0..<n {
            let descriptor = open(file, O_RDWR | O_CLOEXEC)
            var status = stat()
            guard descriptor >= 0, fstat(descriptor, &status) == 0 else { fail("cannot open \(file)") }
            let base = mmap(nil, Int(status.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, descriptor, 0)
            guard let base, base != MAP_FAILED else { fail("cannot map \(file)") }
            sum += Double(base.load(as: UInt8.self))
            munmap(base, Int(status.st_size))
            close(descriptor)
        }
        blackHole(sum)

    case "hold-name":  // a child of registry-lookup: holds "gate-map" until its standard input closes
        let registry = try Registry.open(directory: directory + "/registry")
        let published = try MemoryMappedFile.createNew(name: "gate-map", capacity: 4096, registry: registry)
        _ = "ready\n".withCString { write(1, $0, 6) }
        var byte: UInt8 = 0
        while read(0, &byte, 1) > 0 {}
        try published.close()

    default:
        fail("unknown operation \(operation)")
    }
} catch {
    fail("\(operation): \(error)")
}
