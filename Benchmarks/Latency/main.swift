// `make latency`: how soon a record appended in one process is visible in another, for each way
// a reader can wait, beside a C busy-spin reader, all in one run (docs/PERFORMANCE.md, "Waking readers").
//
//   latency-mappedrecords run DIR SPIN_READER FUTEX_PAIR [PYTHON]
//                                                  the whole benchmark; a Markdown report on stdout,
//                                                  every sample in DIR/latency-samples.csv
//   latency-mappedrecords reader PATH MODE COUNT   a reader process: block, spin or poll
//   latency-mappedrecords follower PATH TARGET     a blocked follower, for the throughput case
//   latency-mappedrecords throughput DIR ROUNDS    only the append rates with and without followers

import Foundation
import Histogram
import RecordTable

@MappedRecord
struct Stamp {
    var sentNanoseconds: UInt64
    var sequence: UInt64
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func sleepUntil(_ deadline: UInt64) {
    var request = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &request, nil) == EINTR {}
}

func cpuMicroseconds() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1_000_000
        + Int(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
}

let arguments = CommandLine.arguments

// MARK: Child processes

/// Waits for COUNT records, one wait at a time; prints "ready", then each latency in ns,
/// then "cpu-us N": the CPU it used while waiting.
func reader(path: String, mode: String, count: Int) throws {
    let table = try RecordTable<Stamp>.open(path: path, access: .readOnly)
    var known = table.count
    let base = known
    var latencies: [UInt64] = []
    latencies.reserveCapacity(count)
    print("ready")
    fflush(nil)
    let cpuBefore = cpuMicroseconds()
    while known - base < count {
        let current: Int
        switch mode {
        case "block": current = try table.waitForRecords(beyond: known, timeout: .seconds(60))
        case "spin": current = try table.waitForRecords(beyond: known, timeout: .seconds(60), strategy: .spin)
        default:  // "poll": what waitForRecords did before the doorbell: refresh, sleep 50 µs doubling to 10 ms
            var pause: UInt32 = 50
            var polled = try table.refresh()
            while polled <= known {
                usleep(pause)
                pause = min(pause * 2, 10_000)
                polled = try table.refresh()
            }
            current = polled
        }
        let now = monotonicNanoseconds()
        for index in known..<min(current, base + count) { latencies.append(now &- table[index].sentNanoseconds) }
        known = current
    }
    let cpu = cpuMicroseconds() - cpuBefore
    for latency in latencies { print(latency) }
    print("cpu-us \(cpu)")
}

/// Follows the table until it has TARGET records, sleeping between wake-ups; with `last`, waits
/// only for the last record (woken by every ring, it registers and sleeps again).
func follower(path: String, target: Int, onlyTheLast: Bool) throws {
    let table = try RecordTable<Stamp>.open(path: path, access: .readOnly)
    print("ready")
    fflush(nil)
    var known = table.count
    var waits = 0
    let cpuBefore = cpuMicroseconds()
    while known < target {
        known = try table.waitForRecords(beyond: onlyTheLast ? target - 1 : known, timeout: .seconds(60))
        waits += 1
    }
    print("done \(waits) \(cpuMicroseconds() - cpuBefore)")
}

// MARK: The benchmark

/// A child process with its stdout read line by line.
final class Child {
    let process = Process()
    let output = Pipe()
    private var buffered: [UInt8] = []

    let input = Pipe()

    init(_ executable: String, _ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        process.standardInput = input
        try process.run()
    }

    /// Sends one line to the child's standard input.
    func send(_ line: String) {
        input.fileHandleForWriting.write((line + "\n").data(using: .utf8)!)
    }

    /// The next line, or nil at the end of the output.
    func readLine() -> String? {
        let descriptor = output.fileHandleForReading.fileDescriptor
        while true {
            if let newline = buffered.firstIndex(of: 10) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            buffered += chunk[..<count]
        }
    }
}

struct Outcome {
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var cpuMicroseconds = 0
    /// Every latency in ns, for the CDF chart (Benchmarks/latency/cdf.py).
    var samples: [UInt64] = []

    mutating func record(_ nanoseconds: UInt64) {
        _ = histogram.record(nanoseconds)
        samples.append(nanoseconds)
    }
}

/// Appends an outcome's samples to the run's samples file, as `case,reader,nanoseconds` lines.
func saveSamples(_ outcome: Outcome, label: String, reader: String, to file: FileHandle) {
    let lines = outcome.samples.map { "\(label),\(reader),\($0)\n" }.joined()
    file.write(lines.data(using: .utf8)!)
}

let selfPath = URL(fileURLWithPath: CommandLine.arguments[0]).path

/// One writer (this process) and one reader process of `mode`; `samples` appends, `interval` apart.
func measure(directory: String, spinReader: String, mode: String, interval: Duration, samples: Int) throws -> Outcome {
    let path = directory + "/latency-\(mode).mrec"
    unlink(path)
    let writer = try RecordTable<Stamp>.create(path: path, capacity: samples + 16, durability: .none)
    let child =
        mode == "c-spin"
        ? try Child(spinReader, [path, "\(samples)"])
        : try Child(selfPath, ["reader", path, mode, "\(samples)"])
    guard child.readLine() == "ready" else { throw CocoaError(.fileReadUnknown) }
    usleep(200_000)  // the reader is waiting now
    let step = UInt64(interval / .nanoseconds(1))
    var next = monotonicNanoseconds() + step
    for sequence in 0..<samples {
        sleepUntil(next)
        try writer.append(Stamp(sentNanoseconds: monotonicNanoseconds(), sequence: UInt64(sequence)))
        next += step
    }
    var outcome = Outcome()
    while let line = child.readLine() {
        if line.hasPrefix("cpu-us ") {
            outcome.cpuMicroseconds = Int(line.dropFirst(7)) ?? 0
        } else if let value = UInt64(line) {
            outcome.record(value)
        }
    }
    child.process.waitUntilExit()
    try writer.close()
    unlink(path)
    return outcome
}

/// A Python writer process (Benchmarks/latency/python_writer.py) and a blocking Swift reader.
func measurePythonWriter(directory: String, python: String, interval: Duration, samples: Int) throws -> Outcome {
    let path = directory + "/latency-python.mrec"
    unlink(path)
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("latency/python_writer.py").path
    let step = UInt64(interval / .microseconds(1))
    let writer = try Child(python, [script, path, "\(samples)", "\(step)"])
    guard writer.readLine() == "created" else { throw CocoaError(.fileReadUnknown) }
    let child = try Child(selfPath, ["reader", path, "block", "\(samples)"])
    guard child.readLine() == "ready" else { throw CocoaError(.fileReadUnknown) }
    usleep(200_000)  // the reader is waiting now
    writer.send("go")
    var outcome = Outcome()
    while let line = child.readLine() {
        if line.hasPrefix("cpu-us ") {
            outcome.cpuMicroseconds = Int(line.dropFirst(7)) ?? 0
        } else if let value = UInt64(line) {
            outcome.record(value)
        }
    }
    child.process.waitUntilExit()
    writer.process.waitUntilExit()
    unlink(path)
    return outcome
}

/// The C futex pair (Benchmarks/latency/futex_pair.c): the floor for a reader that sleeps in the kernel.
func measureFutexPair(_ futexPair: String, interval: Duration, samples: Int) throws -> Outcome {
    let child = try Child(futexPair, ["\(UInt64(interval / .microseconds(1)))", "\(samples)"])
    var outcome = Outcome()
    while let line = child.readLine() {
        if let value = UInt64(line) { outcome.record(value) }
    }
    child.process.waitUntilExit()
    return outcome
}

/// What one append-rate run measured: the writer's rate, and what its followers did.
struct AppendRun {
    var recordsPerSecond: Double
    /// Waits that returned, summed over the followers (each wait that slept cost the writer a ring).
    var followerWaits = 0
    /// CPU the followers used while the writer appended, summed (µs).
    var followerCPUMicroseconds = 0
    /// The writer's own CPU while appending (µs), and its wall time (µs).
    var writerCPUMicroseconds = 0
    var writerMicroseconds = 0
}

/// Appends `records` one at a time with `followers` blocked followers: the rate, and what the
/// followers and the writer spent.
func appendRun(directory: String, followers: Int, records: Int, onlyTheLast: Bool = false) throws -> AppendRun {
    let path = directory + "/throughput.mrec"
    unlink(path)
    let writer = try RecordTable<Stamp>.create(path: path, capacity: records + 16, durability: .none)
    var children: [Child] = []
    for _ in 0..<followers {
        let child = try Child(selfPath, ["follower", path, "\(records)", onlyTheLast ? "last" : "each"])
        guard child.readLine() == "ready" else { throw CocoaError(.fileReadUnknown) }
        children.append(child)
    }
    usleep(200_000)
    let start = monotonicNanoseconds()
    let writerCPUBefore = cpuMicroseconds()
    for sequence in 0..<records { try writer.append(Stamp(sentNanoseconds: 0, sequence: UInt64(sequence))) }
    let elapsed = monotonicNanoseconds() - start
    var run = AppendRun(recordsPerSecond: Double(records) / (Double(elapsed) / 1e9))
    run.writerCPUMicroseconds = cpuMicroseconds() - writerCPUBefore
    run.writerMicroseconds = Int(elapsed / 1000)
    for child in children {
        let words = (child.readLine() ?? "").split(separator: " ")
        if words.count == 3 {
            run.followerWaits += Int(words[1]) ?? 0
            run.followerCPUMicroseconds += Int(words[2]) ?? 0
        }
        child.process.waitUntilExit()
    }
    try writer.close()
    unlink(path)
    return run
}

func microseconds(_ nanoseconds: UInt64) -> String {
    let value = Double(nanoseconds) / 1000
    return value < 10 ? String(format: "%.2f", value) : String(format: "%.0f", value)
}

func run(directory: String, spinReader: String, futexPair: String, python: String?) throws {
    let samplesPath = directory + "/latency-samples.csv"
    _ = FileManager.default.createFile(atPath: samplesPath, contents: Data("case,reader,nanoseconds\n".utf8))
    guard let samplesFile = FileHandle(forWritingAtPath: samplesPath) else { throw CocoaError(.fileWriteUnknown) }
    samplesFile.seekToEndOfFile()
    defer { try? samplesFile.close() }
    let modes = ["block", "spin", "poll", "c-spin"]
    let names = [
        "block": "blocking futex (`.block`)", "spin": "spin (`.spin`)", "poll": "the old backoff polling",
        "c-spin": "C busy-spin baseline",
    ]
    let cases: [(String, Duration, Int)] = [
        ("1 ms cadence", .milliseconds(1), 3000), ("after 100 ms idle", .milliseconds(100), 150),
    ]
    print("| case | reader | p50 µs | p99 µs | p99.9 µs | max µs | samples |")
    print("|---|---|--:|--:|--:|--:|--:|")
    for (label, interval, samples) in cases {
        for mode in modes {
            let outcome = try measure(
                directory: directory, spinReader: spinReader, mode: mode, interval: interval, samples: samples)
            let h = outcome.histogram
            saveSamples(outcome, label: label, reader: names[mode]!, to: samplesFile)
            print(
                "| \(label) | \(names[mode]!) | \(microseconds(h.valueAtPercentile(50))) | \(microseconds(h.valueAtPercentile(99))) | \(microseconds(h.valueAtPercentile(99.9))) | \(microseconds(h.max)) | \(h.totalCount) |"
            )
            fflush(nil)
        }
        let floorOutcome = try measureFutexPair(futexPair, interval: interval, samples: samples)
        saveSamples(floorOutcome, label: label, reader: "C futex pair baseline", to: samplesFile)
        let floor = floorOutcome.histogram
        print(
            "| \(label) | C futex pair baseline (FUTEX_WAIT/FUTEX_WAKE) | \(microseconds(floor.valueAtPercentile(50))) | \(microseconds(floor.valueAtPercentile(99))) | \(microseconds(floor.valueAtPercentile(99.9))) | \(microseconds(floor.max)) | \(floor.totalCount) |"
        )
        fflush(nil)
        if let python {
            let pythonOutcome = try measurePythonWriter(
                directory: directory, python: python, interval: interval, samples: samples)
            saveSamples(pythonOutcome, label: label, reader: "Python writer to a blocking reader", to: samplesFile)
            let h = pythonOutcome.histogram
            print(
                "| \(label) | blocking futex, **Python writer** | \(microseconds(h.valueAtPercentile(50))) | \(microseconds(h.valueAtPercentile(99))) | \(microseconds(h.valueAtPercentile(99.9))) | \(microseconds(h.max)) | \(h.totalCount) |"
            )
            fflush(nil)
        }
    }
    // The idle CPU of a blocked follower: it waits 10 s for one record.
    let idle = try measure(
        directory: directory, spinReader: spinReader, mode: "block", interval: .seconds(10), samples: 1)
    let idlePoll = try measure(
        directory: directory, spinReader: spinReader, mode: "poll", interval: .seconds(10), samples: 1)
    print("")
    print("| idle follower, 10 s | CPU used | share of one core |")
    print("|---|--:|--:|")
    print(
        "| blocking futex | \(idle.cpuMicroseconds) µs | \(String(format: "%.4f", Double(idle.cpuMicroseconds) / 100_000))% |"
    )
    print(
        "| old backoff polling | \(idlePoll.cpuMicroseconds) µs | \(String(format: "%.4f", Double(idlePoll.cpuMicroseconds) / 100_000))% |"
    )

    try appendRates(directory: directory, rounds: 5)
}

/// Append throughput, one record per append, with 0 and 4 followers, in interleaved rounds.
func appendRates(directory: String, rounds: Int) throws {
    // Append throughput, one record per append, with 0 and 4 blocked followers, interleaved.
    // Interleaved rounds: this VM's speed drifts by 2x over minutes, so each round compares
    // neighbours, and the ratio is the median of the rounds' ratios.
    let records = 16_000_000
    var alone: [Double] = [], followed: [Double] = [], waitingForLast: [Double] = []
    var followedRuns: [AppendRun] = []
    for _ in 0..<rounds {
        alone.append(try appendRun(directory: directory, followers: 0, records: records).recordsPerSecond)
        let run = try appendRun(directory: directory, followers: 4, records: records)
        followedRuns.append(run)
        followed.append(run.recordsPerSecond)
        waitingForLast.append(
            try appendRun(directory: directory, followers: 4, records: records, onlyTheLast: true).recordsPerSecond)
    }
    let median = { (values: [Double]) in values.sorted()[values.count / 2] }
    func ratios(_ values: [Double]) -> [Double] { zip(values, alone).map { $0 / $1 } }
    func describe(_ values: [Double]) -> String {
        let r = ratios(values)
        return
            "\(String(format: "%.1f", median(values) / 1e6)) M | \(String(format: "%.2f", median(r))) | \(String(format: "%.2f", r.min()!))–\(String(format: "%.2f", r.max()!))"
    }
    print("")
    print(
        "| appends of one record, 16 M, \(rounds) interleaved rounds | records/s (median) | ratio to no follower (median of rounds) | spread |"
    )
    print("|---|--:|--:|--:|")
    print("| no follower | \(String(format: "%.1f", median(alone) / 1e6)) M | 1.00 | |")
    print("| 4 followers, each reading every update | \(describe(followed)) |")
    print("| 4 followers asleep until the last record | \(describe(waitingForLast)) |")
    // Where the time goes with 4 followers reading every update (medians of the rounds).
    let middle = { (values: [Int]) in values.sorted()[values.count / 2] }
    print("")
    print("| 4 followers reading every update, medians of rounds | value |")
    print("|---|--:|")
    print("| the writer's wall time per run | \(middle(followedRuns.map(\.writerMicroseconds)) / 1000) ms |")
    print("| the writer's CPU time in that run | \(middle(followedRuns.map(\.writerCPUMicroseconds)) / 1000) ms |")
    print("| the followers' CPU time in that run, summed | \(middle(followedRuns.map(\.followerCPUMicroseconds)) / 1000) ms |")
    print("| waits that returned, summed over the followers | \(middle(followedRuns.map(\.followerWaits))) |")
}

switch arguments.count > 1 ? arguments[1] : "" {
case "reader": try reader(path: arguments[2], mode: arguments[3], count: Int(arguments[4])!)
case "follower": try follower(path: arguments[2], target: Int(arguments[3])!, onlyTheLast: arguments[4] == "last")
case "throughput":  // throughput DIR ROUNDS: only the append-rate rounds
    try appendRates(directory: arguments[2], rounds: Int(arguments[3])!)
case "run":
    try run(
        directory: arguments[2], spinReader: arguments[3], futexPair: arguments[4],
        python: arguments.count > 5 ? arguments[5] : nil)
default:
    FileHandle.standardError.write("usage: latency-mappedrecords run DIR SPIN_READER FUTEX_PAIR [PYTHON]\n".data(using: .utf8)!)
    exit(2)
}
