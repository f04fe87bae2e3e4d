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

    case "registry-lookup":  // openExisting + close of one name
        let registry = try Registry.open(directory: directory + "/registry")
        let published = try MemoryMappedFile.createNew(name: "gate-map", capacity: 4096, registry: registry)
        for _ in 0..<n {
            let map = try MemoryMappedFile.openExisting(name: "gate-map", registry: registry)
            try map.close()
        }
        try published.close()

    default:
        fail("unknown operation \(operation)")
    }
} catch {
    fail("\(operation): \(error)")
}
