// `make journal`: shared appending and series against the exclusive writer, in one run
// (docs/PERFORMANCE.md, "Shared journals").
//
//   journal-mappedrecords run DIR                       the whole benchmark; Markdown on stdout
//   journal-mappedrecords append PATH MODE BATCH N GO   one appender process: N records in batches
//                                                       of BATCH, starting when the file GO appears;
//                                                       prints its records per second
//   journal-mappedrecords follow DIR N                  follows a series for N records; prints the
//                                                       p50 latency of first-of-file and other records
//   journal-mappedrecords rolls DIR [sleep [detail]]    the append that rolls, alone (p50 µs); with
//                                                       `detail`, the 12 slowest appends and where
//   journal-mappedrecords closes DIR                    a table's create, close and open (p50 µs)

import Foundation
import RecordTable

@MappedRecord
struct Trade {
    var sentNanoseconds: UInt64
    var sequence: UInt64
    var price: Double
    var quantity: Int64
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

let arguments = CommandLine.arguments
let selfPath = URL(fileURLWithPath: arguments[0]).path

/// Appends `total` records in batches of `batch` as `mode` (exclusive or shared); returns records/s,
/// and when the appends began and ended (monotonic ns, so that two processes' runs are compared).
func appendRun(
    path: String, mode: String, batch: Int, total: Int, go: String?
) throws -> (rate: Double, start: UInt64, end: UInt64) {
    let table = try RecordTable<Trade>.open(
        path: path, access: mode == "shared" ? .sharedAppend : .readWrite, durability: .none,
        waitForWriter: .seconds(30))
    let records = (0..<batch).map { Trade(sentNanoseconds: 0, sequence: UInt64($0), price: 1.5, quantity: 7) }
    if let go { while access(go, F_OK) != 0 { usleep(100) } }
    let start = monotonicNanoseconds()
    var written = 0
    while written < total {
        if batch == 1 { try table.append(records[0]) } else { try table.append(contentsOf: records) }
        written += batch
    }
    let end = monotonicNanoseconds()
    try table.close()
    return (Double(written) / (Double(end - start) / 1e9), start, end)
}

/// Follows a series until `count` records; returns the p50 latencies (µs) of records that are
/// the first of their file and of the others.
let rollEvery = 100

func follow(directory: String, count: Int) throws -> (first: Double, others: Double) {
    let series = try TableSeries<Trade>.open(directory: directory)
    var position = SeriesPosition(file: 1, index: 0)
    var firsts: [UInt64] = [], others: [UInt64] = []
    print("ready")
    fflush(nil)
    while firsts.count + others.count < count {
        _ = try series.waitForRecords(beyond: position, timeout: .seconds(10))
        let records = try series.read(from: &position)
        let now = monotonicNanoseconds()
        for record in records {
            // The writer rolls every `rollEvery` records: these are the first of their file.
            let latency = now &- record.sentNanoseconds
            if record.sequence % UInt64(rollEvery) == 0 { firsts.append(latency) } else { others.append(latency) }
        }
    }
    func median(_ values: [UInt64]) -> Double {
        values.isEmpty ? .nan : Double(values.sorted()[values.count / 2]) / 1000
    }
    return (median(firsts), median(others))
}

func spawn(_ arguments: [String]) throws -> (Process, Pipe) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: selfPath)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    return (process, pipe)
}

func output(_ pipe: Pipe) -> String {
    String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

func run(directory: String) throws {
    let rounds = 5, total = 4_000_000, singles = 1_000_000
    var exclusive: [Double] = [], shared: [Double] = [], pair: [Double] = []
    var exclusiveOne: [Double] = [], sharedOne: [Double] = [], pairOne: [Double] = []
    func fresh(_ name: String) throws -> String {
        let path = directory + "/" + name
        unlink(path)
        try RecordTable<Trade>.create(path: path, capacity: total + singles, durability: .none).close()
        return path
    }
    func together(batch: Int, count: Int) throws -> Double {
        let path = try fresh("pair.mrec"), go = directory + "/go"
        unlink(go)
        let children = try (0..<2).map { _ in
            try spawn(["append", path, "shared", String(batch), String(count / 2), go])
        }
        usleep(200_000)
        close(open(go, O_CREAT | O_WRONLY, 0o644))
        // From the first append of either process to the last of both (not their exits).
        var starts: [UInt64] = [], ends: [UInt64] = []
        for (process, pipe) in children {
            let fields = output(pipe).split(whereSeparator: \.isWhitespace)
            process.waitUntilExit()
            starts.append(UInt64(fields[1])!)
            ends.append(UInt64(fields[2])!)
        }
        return Double(count) / (Double(ends.max()! - starts.min()!) / 1e9)
    }
    // Interleaved rounds: each case once per round, so a slow phase of the machine hits all alike.
    for _ in 0..<rounds {
        exclusive.append(try appendRun(path: try fresh("e.mrec"), mode: "exclusive", batch: 1_000, total: total, go: nil).rate)
        shared.append(try appendRun(path: try fresh("s.mrec"), mode: "shared", batch: 1_000, total: total, go: nil).rate)
        pair.append(try together(batch: 1_000, count: total))
        exclusiveOne.append(try appendRun(path: try fresh("e1.mrec"), mode: "exclusive", batch: 1, total: singles, go: nil).rate)
        sharedOne.append(try appendRun(path: try fresh("s1.mrec"), mode: "shared", batch: 1, total: singles, go: nil).rate)
        pairOne.append(try together(batch: 1, count: singles))
    }
    func row(_ name: String, _ values: [Double], _ base: Double) -> String {
        let rate = median(values)
        return "| \(name) | \(String(format: "%.1f", rate / 1e6)) M/s | \(String(format: "%.2f", rate / base))× |"
    }
    print("## Appending: shared appenders against the exclusive writer (\(rounds) interleaved rounds, medians)")
    print()
    print("Records of 32 bytes, durability `.none`, the file made large enough first. Goal: one shared appender ≥ 0.8×, two together ≥ 0.5× the exclusive writer in batches of 1,000.")
    print()
    print("| case | records per second | ratio to the exclusive writer |")
    print("|---|--:|--:|")
    print(row("exclusive writer, batches of 1,000", exclusive, median(exclusive)))
    print(row("one shared appender, batches of 1,000", shared, median(exclusive)))
    print(row("two shared appender processes together, batches of 1,000", pair, median(exclusive)))
    print(row("exclusive writer, single records", exclusiveOne, median(exclusiveOne)))
    print(row("one shared appender, single records", sharedOne, median(exclusiveOne)))
    print(row("two shared appender processes together, single records", pairOne, median(exclusiveOne)))
    print()

    // A follower of a series while the writer appends one record every 200 µs and rolls every 100.
    let seriesDirectory = directory + "/series"
    let count = 20_000
    let writer = try TableSeries<Trade>.open(
        directory: seriesDirectory, access: .readWrite, roll: .records(rollEvery), durability: .none)
    let (process, pipe) = try spawn(["follow", seriesDirectory, String(count)])
    let ready = pipe.fileHandleForReading.availableData
    precondition(String(decoding: ready, as: UTF8.self).hasPrefix("ready"))
    var rolls: [UInt64] = []
    for sequence in 0..<count {
        let sent = monotonicNanoseconds()
        try writer.append(Trade(sentNanoseconds: sent, sequence: UInt64(sequence), price: 1, quantity: 1))
        if sequence % rollEvery == 0 && sequence > 0 { rolls.append(monotonicNanoseconds() - sent) }
        usleep(200)
    }
    let rollMicroseconds = Double(rolls.sorted()[rolls.count / 2]) / 1000
    process.waitUntilExit()
    let followed = output(pipe).split(separator: " ")
    try writer.close()
    print("## A follower crossing a roll")
    print()
    print("One record every 200 µs, a roll every 100 records (\(count / 100) rolls); the follower blocks on the doorbell. Goal: the first record of a new file seen within 2× the usual append-to-visible latency.")
    print()
    print("| record | append → visible, p50 |")
    print("|---|--:|")
    print("| first of its file | \(followed[0]) µs |")
    print("| any other | \(followed[1].trimmingCharacters(in: .whitespacesAndNewlines)) µs |")
    print()
    print("The append that rolls (creates the next file, seals the full one, moves on) takes \(String(format: "%.0f", rollMicroseconds)) µs (p50) in the writer.")
}

switch arguments[1] {
case "append":
    let run = try appendRun(
        path: arguments[2], mode: arguments[3], batch: Int(arguments[4])!, total: Int(arguments[5])!, go: arguments[6])
    print(run.rate, run.start, run.end)
case "follow":
    let (first, others) = try follow(directory: arguments[2], count: Int(arguments[3])!)
    print(String(format: "%.1f %.1f", first, others))
case "rolls":  // rolls DIR: the append that rolls, with no follower (p50 µs)
    let writer = try TableSeries<Trade>.open(
        directory: arguments[2], access: .readWrite, roll: .records(rollEvery), durability: .none)
    var rolls: [UInt64] = []
    var slow: [(UInt64, Int)] = []
    for sequence in 0..<20_000 {
        let sent = monotonicNanoseconds()
        try writer.append(Trade(sentNanoseconds: sent, sequence: UInt64(sequence), price: 1, quantity: 1))
        let took = monotonicNanoseconds() - sent
        if sequence % rollEvery == 0 && sequence > 0 { rolls.append(took) }
        slow.append((took, sequence))
        if arguments.count > 3 { usleep(200) }
    }
    print(Double(rolls.sorted()[rolls.count / 2]) / 1000)
    if arguments.count > 4 { print(slow.sorted { $0.0 > $1.0 }.prefix(12).map { "\($0.0 / 1000)µs@\($0.1 % rollEvery)" }) }
case "closes":  // closes DIR: a writer's close after 100 appends, and a create (p50 µs)
    var closes: [UInt64] = [], creates: [UInt64] = [], opens: [UInt64] = []
    for round in 0..<200 {
        let path = arguments[2] + "/t\(round).mrec"
        var start = monotonicNanoseconds()
        let table = try RecordTable<Trade>.create(path: path, durability: .none)
        creates.append(monotonicNanoseconds() - start)
        for sequence in 0..<100 { try table.append(Trade(sentNanoseconds: 0, sequence: UInt64(sequence), price: 1, quantity: 1)) }
        start = monotonicNanoseconds()
        try table.close()
        closes.append(monotonicNanoseconds() - start)
        start = monotonicNanoseconds()
        let reader = try RecordTable<Trade>.open(path: path)
        opens.append(monotonicNanoseconds() - start)
        try reader.close()
        usleep(200)
    }
    for (name, values) in [("create", creates), ("close", closes), ("open", opens)] {
        print(name, Double(values.sorted()[values.count / 2]) / 1000)
    }
case "run":
    try run(directory: arguments[2])
default:
    fatalError("usage: journal-mappedrecords run DIR")
}
