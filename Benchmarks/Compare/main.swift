// The MappedRecords side of `make compare` (Benchmarks/compare/run.sh).
//
//   compare-mappedrecords run DIR N RUNS          the table and the raw accessor, one JSON line per run
//   compare-mappedrecords readers DIR READERS SECONDS   readers scanning while a writer appends
//   compare-mappedrecords registry DIR NAMES      openExisting latency with NAMES registered names
//   compare-mappedrecords probe DIR N             random reads: raw pointer, checked pointer, table[i]
//   compare-mappedrecords open-probe DIR N        open to first read: raw, accessor, table
//
// The record and the measurements are those of Benchmarks/compare/peers.c.
import Glibc
import MappedRegistry
import MemoryMappedFiles
import RecordTable
import Synchronization

@MappedRecord
struct Point {
    var id: Int64
    var x: Double
    var y: Double
    var flags: Int32
    var pad: Int32
}

let indexCount = 10_000_000

/// Scans of small tables repeat until they cover 16 M records, as in peers.c.
func scanRepeats(_ n: Int) -> Int { max(1, 16_777_216 / n) }
let openRepeats = 200

func now() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

func report(
    _ system: String, _ operation: String, _ records: Int, _ run: Int, _ seconds: Double, _ ops: Int, _ check: Double
) {
    print(
        "{\"system\":\"\(system)\",\"op\":\"\(operation)\",\"records\":\(records),\"run\":\(run),\"seconds\":\(seconds),\"ops\":\(ops),\"check\":\(check)}"
    )
    fflush(nil)
}

/// Writes `path` back and drops it from the page cache, so that the mapping that measures it
/// faults its pages in as the C and numpy sides do (Benchmarks/compare/run.sh).
func dropFromPageCache(_ path: String) {
    let descriptor = open(path, O_RDWR)
    precondition(descriptor >= 0 && fsync(descriptor) == 0, "cannot sync \(path)")
    _ = posix_fadvise(descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED))
    close(descriptor)
}

/// A whole file read into memory.
func readWhole<T: BitwiseCopyable>(_ path: String, as: T.Type) -> [T] {
    let map = try! MemoryMappedFile.createFromFile(path: path, mode: .open, access: .read)
    let view = try! map.makeViewAccessor()
    let result = view.readArray(of: T.self, count: view.capacity / MemoryLayout<T>.stride, at: 0)
    try! view.close()
    try! map.close()
    return result
}

/// Sums x with four accumulators, as the C baseline does: the limit is the memory, not one add chain.
@inline(__always)
func sumX(_ records: Span<Point>) -> Double {
    var (a, b, c, d) = (0.0, 0.0, 0.0, 0.0)
    var i = 0
    let end = records.count & ~3
    while i < end {
        a += records[i].x; b += records[i + 1].x; c += records[i + 2].x; d += records[i + 3].x
        i += 4
    }
    while i < records.count { a += records[i].x; i += 1 }
    return (a + b) + (c + d)
}

func runTable(_ directory: String, _ n: Int, _ runs: Int, _ source: [Point], _ index: [UInt32]) throws {
    let system = "MappedRecords table"
    let path = "\(directory)/mappedrecords-\(n).mrec"
    for run in 0...runs {  // run 0 warms up and is not reported
        unlink(path)
        let start = now()
        let table = try RecordTable<Point>.create(path: path, capacity: n, durability: .none)
        try table.append(contentsOf: source.span)
        try table.commit()
        try table.close()
        if run > 0 { report(system, "bulk load", n, run, now() - start, n, 0) }
    }
    dropFromPageCache(path)
    let table = try RecordTable<Point>.open(path: path, access: .readWrite, durability: .none)
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for _ in 0..<scanRepeats(n) { sum += try table.withRecords { sumX($0) } }
        if run > 0 { report(system, "scan", n, run, now() - start, n * scanRepeats(n), sum) }
    }
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for i in index { sum += table[Int(i)].x }
        if run > 0 { report(system, "random read", n, run, now() - start, indexCount, sum) }
    }
    for run in 0...runs {
        let start = now()
        for i in index { table[Int(i)].x += 1 }
        if run > 0 { report(system, "random update", n, run, now() - start, indexCount, table[0].x) }
    }
    try table.close()
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for _ in 0..<openRepeats {
            let reader = try RecordTable<Point>.open(path: path, access: .readOnly)
            sum += reader[0].x
            try reader.close()
        }
        if run > 0 { report(system, "open to first read", n, run, now() - start, openRepeats, sum) }
    }
}

func runAccessor(_ directory: String, _ n: Int, _ runs: Int, _ source: [Point], _ index: [UInt32]) throws {
    let system = "MappedRecords accessor"
    let path = "\(directory)/accessor-\(n)"
    let size = n * 32
    for run in 0...runs {
        unlink(path)
        let start = now()
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: size)
        var view = try map.makeViewAccessor()
        view.write(contentsOf: source.span, at: 0)
        try view.close(flush: false)
        try map.close(flush: false)
        if run > 0 { report(system, "bulk load", n, run, now() - start, n, 0) }
    }
    dropFromPageCache(path)
    let map = try MemoryMappedFile.createFromFile(path: path, mode: .open)
    var view = try map.makeViewAccessor()
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for _ in 0..<scanRepeats(n) { sum += sumX(view.elements(of: Point.self, count: n)) }
        if run > 0 { report(system, "scan", n, run, now() - start, n * scanRepeats(n), sum) }
    }
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for i in index { sum += view.read(Double.self, at: Int(i) &* 32 &+ 8) }
        if run > 0 { report(system, "random read", n, run, now() - start, indexCount, sum) }
    }
    for run in 0...runs {
        let start = now()
        for i in index {
            let offset = Int(i) &* 32 &+ 8
            view.write(view.read(Double.self, at: offset) + 1, at: offset)
        }
        if run > 0 { report(system, "random update", n, run, now() - start, indexCount, view.read(Double.self, at: 8)) }
    }
    try view.close(flush: false)
    try map.close(flush: false)
    for run in 0...runs {
        let start = now()
        var sum = 0.0
        for _ in 0..<openRepeats {
            let reader = try MemoryMappedFile.createFromFile(path: path, mode: .open, access: .read)
            let first = try reader.makeViewAccessor()
            sum += first.read(Double.self, at: 8)
            try first.close()
            try reader.close()
        }
        if run > 0 { report(system, "open to first read", n, run, now() - start, openRepeats, sum) }
    }
}

// MARK: - Multi-process scaling

/// Starts this executable with `arguments`; returns its pid.
func spawnSelf(_ arguments: [String]) -> pid_t {
    let executable = "/proc/self/exe"
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, executable, nil, nil, argv, environ) == 0 else { fatalError("posix_spawn failed") }
    return pid
}

func waitFor(_ pid: pid_t) {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { fatalError("child \(pid) failed with status \(status)") }
}

/// One writer appends batches of 1000 for `seconds` while `readers` processes rescan the whole
/// table again and again; each prints what it did, and this sums it up.
func runReaders(_ directory: String, _ readers: Int, _ seconds: Double) throws {
    let path = "\(directory)/scaling.mrec"
    unlink(path)
    let table = try RecordTable<Point>.create(path: path, durability: .none)
    try table.append(
        contentsOf: (0..<1_000_000).map { Point(id: Int64($0), x: Double($0) * 0.5, y: 0, flags: 0, pad: 0) })
    try table.commit()
    try table.close()
    let writer = spawnSelf(["scale-writer", path, String(seconds)])
    let pids = (0..<readers).map { _ in spawnSelf(["scale-reader", path, String(seconds)]) }
    waitFor(writer)
    pids.forEach(waitFor)
}

func scaleWriter(_ path: String, _ seconds: Double) throws {
    let table = try RecordTable<Point>.open(path: path, access: .readWrite, durability: .none)
    var batch = [Point](repeating: Point(id: 0, x: 1, y: 0, flags: 0, pad: 0), count: 1000)
    let start = now()
    var appended = 0
    while now() - start < seconds {
        for i in batch.indices { batch[i].id = Int64(table.count + i) }
        try table.append(contentsOf: batch.span)
        appended += batch.count
    }
    let elapsed = now() - start
    try table.commit()
    try table.close()
    print("{\"role\":\"writer\",\"records\":\(appended),\"seconds\":\(elapsed)}")
}

func scaleReader(_ path: String, _ seconds: Double) throws {
    let table = try RecordTable<Point>.open(path: path, access: .readOnly)
    let start = now()
    var scanned = 0, sum = 0.0
    while now() - start < seconds {
        try table.refresh()
        sum += try table.withRecords { sumX($0) }
        scanned += table.count
    }
    let elapsed = now() - start
    print("{\"role\":\"reader\",\"records\":\(scanned),\"seconds\":\(elapsed),\"check\":\(sum)}")
    fflush(nil)
}

// MARK: - Registry scaling

/// Registers `count` names and holds them until stdin closes. The measured name ("target-0") is
/// a region of `regions`; fillers are small shared-memory maps, each its own object: regions of
/// one shared file would put thousands of `flock`s on that file, whose list the kernel walks on
/// every new one (registering 100,000 of them took this harness over ten minutes).
func holdNames(_ directory: String, _ prefix: String, _ count: Int) throws {
    final class Held {
        var value: NamedMemoryMappedFile?; init(_ value: consuming NamedMemoryMappedFile) { self.value = consume value }
    }
    let registry = try Registry.open(directory: directory + "/registry")
    var held: [Held] = []
    for i in 0..<count {
        held.append(
            Held(
                prefix == "target"
                    ? try MemoryMappedFile.createFromFile(
                        path: directory + "/regions", access: .read, name: "\(prefix)-\(i)", regionOffset: 0,
                        regionLength: 64, registry: registry)
                    : try MemoryMappedFile.createNew(name: "\(prefix)-\(i)", capacity: 4096, registry: registry)))
    }
    print("ready \(held.count)")
    fflush(nil)
    var byte: UInt8 = 0
    while read(STDIN_FILENO, &byte, 1) > 0 {}
}

/// Spawns this program as `hold-names DIR PREFIX COUNT`, which holds its names until its
/// standard input closes; returns its pid and the pipe that keeps it alive.
func spawnHolder(_ directory: String, _ prefix: String, _ count: Int) -> (pid: pid_t, input: Int32) {
    var toChild: [Int32] = [-1, -1], fromChild: [Int32] = [-1, -1]
    guard pipe(&toChild) == 0, pipe(&fromChild) == 0 else { fatalError("pipe") }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawn_file_actions_adddup2(&actions, toChild[0], STDIN_FILENO)
    posix_spawn_file_actions_adddup2(&actions, fromChild[1], STDOUT_FILENO)
    for end in toChild + fromChild { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    let words: [String] = ["/proc/self/exe", "hold-names", directory, prefix, String(count)]
    let argv = words.map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, "/proc/self/exe", &actions, nil, argv, environ) == 0 else { fatalError("posix_spawn") }
    posix_spawn_file_actions_destroy(&actions)
    close(toChild[0]); close(fromChild[1])
    var line = [UInt8](repeating: 0, count: 64)
    _ = read(fromChild[0], &line, 64)  // "ready N"
    close(fromChild[0])
    return (pid, toChild[1])
}

/// openExisting + close of one name that another process holds, with `total` names registered
/// (by filler processes of up to 8000 names each, since each name holds a mapping), beside the
/// baseline the issue sets: a raw open, fstat, mmap, munmap and close of the same file, in
/// alternation in the same loop.
func runRegistry(_ directory: String, _ total: Int) throws {
    let registryDirectory = directory + "/registry"
    _ = system("rm -rf '\(registryDirectory)'")
    let regionsPath = directory + "/regions"
    let regions = try MemoryMappedFile.createFromFile(path: regionsPath, mode: .openOrCreate, capacity: 64_000)
    try regions.close()
    let registry = try Registry.open(directory: registryDirectory)
    // The measured name is held by another process, as a name one looks up usually is.
    var holders = [spawnHolder(directory, "target", 1)]
    var remaining = total - 1, part = 0
    let fillStart = now()
    while remaining > 0 {
        let count = min(8000, remaining)
        holders.append(spawnHolder(directory, "filler\(part)", count))
        remaining -= count
        part += 1
    }
    let fillSeconds = now() - fillStart
    let entries = try registry.entries().count
    var samples: [Double] = [], raw: [Double] = []
    var sink = 0
    for _ in 0..<2000 {
        var start = now()
        let descriptor = open(regionsPath, O_RDONLY | O_CLOEXEC)
        var status = stat()
        fstat(descriptor, &status)
        let base = mmap(nil, Int(status.st_size), PROT_READ, MAP_SHARED, descriptor, 0)!
        sink &+= Int(bitPattern: base) & 1
        munmap(base, Int(status.st_size))
        close(descriptor)
        raw.append(now() - start)
        start = now()
        let opened = try MemoryMappedFile.openExisting(name: "target-0", access: .read, registry: registry)
        try opened.close()
        samples.append(now() - start)
    }
    samples.sort()
    raw.sort()
    let median = samples[samples.count / 2], rawMedian = raw[raw.count / 2]
    print(
        "{\"names\":\(entries),\"median\":\(median),\"p10\":\(samples[samples.count / 10]),\"p90\":\(samples[samples.count * 9 / 10]),\"raw\":\(rawMedian),\"fill_seconds\":\(fillSeconds),\"sink\":\(sink & 1)}"
    )
    for holder in holders { close(holder.input); waitFor(holder.pid) }
}

// MARK: - Probe: which part of table[i] costs what (issue #18)

@inline(never)
func probeRaw(_ base: UnsafeRawPointer, _ indices: [Int]) -> Double {
    var sum = 0.0
    for index in indices { sum += base.load(fromByteOffset: index &* 32 &+ 8, as: Double.self) }
    return sum
}

@inline(never)
func probeRawChecked(_ base: UnsafeRawPointer, _ count: Int, _ indices: [Int]) -> Double {
    var sum = 0.0
    for index in indices {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: count))
        sum += base.load(fromByteOffset: index &* 32 &+ 8, as: Double.self)
    }
    return sum
}

@inline(never)
func probeTable(_ table: RecordTable<Point>, _ indices: [Int]) -> Double {
    var sum = 0.0
    for index in indices { sum += table[index].x }
    return sum
}

@inline(never)
func probeTableUnchecked(_ table: RecordTable<Point>, _ indices: [Int]) -> Double {
    var sum = 0.0
    for index in indices { sum += unsafe table[unchecked: index].x }
    return sum
}

@inline(never)
func probeTableUncheckedUpdate(_ table: RecordTable<Point>, _ indices: [Int]) -> Double {
    for index in indices { unsafe table[unchecked: index].x += 1 }
    return 0
}

@inline(never)
func probeRawUpdate(_ base: UnsafeMutableRawPointer, _ indices: [Int]) -> Double {
    for index in indices {
        let address = base + (index &* 32 &+ 8)
        address.storeBytes(of: address.load(as: Double.self) + 1, as: Double.self)
    }
    return 0
}

@inline(never)
func probeRawCheckedUpdate(_ base: UnsafeMutableRawPointer, _ count: Int, _ indices: [Int]) -> Double {
    for index in indices {
        precondition(UInt(bitPattern: index) < UInt(bitPattern: count))
        let address = base + (index &* 32 &+ 8)
        address.storeBytes(of: address.load(as: Double.self) + 1, as: Double.self)
    }
    return 0
}

/// The raw update loop as the table's must be: its three words of state (base, window start,
/// window span) are loaded again after every store, which might have changed them.
@inline(never)
func probeRawReloadUpdate(_ state: UnsafeMutablePointer<Int>, _ indices: [Int]) -> Double {
    for index in indices {
        let base = UnsafeMutableRawPointer(bitPattern: state[0])!
        precondition(UInt(bitPattern: index &- state[1]) < UInt(bitPattern: state[2]))
        let address = base + (index &* 32 &+ 8)
        address.storeBytes(of: address.load(as: Double.self) + 1, as: Double.self)
    }
    return 0
}

@inline(never)
func probeMutableRecordsUpdate(_ table: RecordTable<Point>, _ indices: [Int]) -> Double {
    table.withMutableRecords { records in
        for index in indices { records[index].x += 1 }
    }
    return 0
}

@inline(never)
func probeAppend(_ table: RecordTable<Point>, _ count: Int) throws {
    for index in 0..<count { try table.append(Point(id: Int64(index), x: 1, y: 2, flags: 0, pad: 0)) }
}

/// The raw append: store the record, then the count with release ordering (as a reader in
/// another process needs it).
@inline(never)
func probeRawAppend(_ base: UnsafeMutableRawPointer, _ published: PublishedCount, _ count: Int) {
    for index in 0..<count {
        (base + index &* 32).storeBytes(
            of: Point(id: Int64(index), x: 1, y: 2, flags: 0, pad: 0), as: Point.self)
        published.value.store(index + 1, ordering: .releasing)
    }
}

/// The raw append's published count.
final class PublishedCount: Sendable {
    let value = Atomic<Int>(0)
}

@inline(never)
func probeTableUpdate(_ table: RecordTable<Point>, _ indices: [Int]) -> Double {
    for index in indices { table[index].x += 1 }
    return 0
}

@inline(never)
func probeAccessorUpdate(_ view: inout MappedViewAccessor, _ indices: [Int]) -> Double {
    for index in indices {
        let offset = 4096 &+ index &* 32 &+ 8
        view.write(view.read(Double.self, at: offset) + 1, at: offset)
    }
    return 0
}

/// A new table of `n` records at `path`, for a probe; the probe removes the file.
func makeProbeTable(_ path: String, _ n: Int) throws -> RecordTable<Point> {
    unlink(path)
    let table = try RecordTable<Point>.create(path: path, capacity: n, durability: .none)
    for index in 0..<n { try table.append(Point(id: Int64(index), x: Double(index), y: 1, flags: 0, pad: 0)) }
    return table
}

/// Prints the median and the minimum of each named series of a probe.
func printMedians(_ times: [String: [Double]], _ names: [String], unit: String) {
    for name in names {
        let sorted = times[name]!.sorted()
        print("\(name): median \(sorted[sorted.count / 2]) \(unit), min \(sorted[0]) \(unit)")
    }
}

/// Random reads of one table's memory three ways, interleaved over 15 rounds: a raw pointer, a
/// raw pointer with a bounds check, and `table[i]`; then random updates six ways: the same
/// three, a raw pointer that reloads its state after each store as the table must,
/// `withMutableRecords`, and the accessor (a view of the same file); then appends one by one
/// into pages already faulted in, against a raw loop that stores each record and publishes a
/// count. Prints the median ns per access of each.
func runProbe(_ directory: String, _ n: Int) throws {
    let path = "\(directory)/probe.mrec"
    let table = try makeProbeTable(path, n)
    defer { unlink(path) }
    var state: UInt64 = 42
    let indices = (0..<(1 << 20)).map { _ in
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        return Int(state >> 33) % n
    }
    let base = try table.withRecords { UnsafeRawPointer($0.withUnsafeBufferPointer { $0.baseAddress! }) }
    var times: [String: [Double]] = [:]
    var check = 0.0
    for _ in 0..<15 {
        for (name, body) in [
            ("raw", { probeRaw(base, indices) }), ("raw+check", { probeRawChecked(base, n, indices) }),
            ("table[i]", { probeTable(table, indices) }),
            ("table[unchecked:]", { probeTableUnchecked(table, indices) }),
        ] as [(String, () -> Double)] {
            let start = now()
            check += body()
            times[name, default: []].append((now() - start) / Double(indices.count) * 1e9)
        }
    }
    let map = try MemoryMappedFile.createFromFile(path: path, mode: .open)
    var view = try map.makeViewAccessor()
    let mutableBase = UnsafeMutableRawPointer(mutating: base)
    let reloaded = UnsafeMutablePointer<Int>.allocate(capacity: 3)
    reloaded[0] = Int(bitPattern: mutableBase)
    reloaded[1] = 0
    reloaded[2] = n
    defer { reloaded.deallocate() }
    for _ in 0..<15 {
        for name in [
            "raw update", "raw+check update", "raw reload update", "table[i] update", "table[unchecked:] update",
            "withMutableRecords update", "accessor update",
        ] {
            let start = now()
            switch name {
            case "raw update": check += probeRawUpdate(mutableBase, indices)
            case "raw+check update": check += probeRawCheckedUpdate(mutableBase, n, indices)
            case "table[i] update": check += probeTableUpdate(table, indices)
            case "table[unchecked:] update": check += probeTableUncheckedUpdate(table, indices)
            case "raw reload update": check += probeRawReloadUpdate(reloaded, indices)
            case "withMutableRecords update": check += probeMutableRecordsUpdate(table, indices)
            default: check += probeAccessorUpdate(&view, indices)
            }
            times[name, default: []].append((now() - start) / Double(indices.count) * 1e9)
        }
    }
    printMedians(
        times,
        [
            "raw", "raw+check", "table[i]", "table[unchecked:]", "raw update", "raw+check update",
            "raw reload update", "table[i] update", "table[unchecked:] update", "withMutableRecords update",
            "accessor update",
        ], unit: "ns")
    // Appends one by one into pages already faulted in (the records are removed and appended
    // again), against a raw loop that stores each record and then a count with release ordering.
    let appendPath = "\(directory)/append-probe.mrec"
    unlink(appendPath)
    defer { unlink(appendPath) }
    let appended = try RecordTable<Point>.create(path: appendPath, capacity: 1 << 20, durability: .none)
    try probeAppend(appended, 1 << 20)
    let appendBase = try appended.withRecords {
        UnsafeMutableRawPointer(mutating: $0.withUnsafeBufferPointer { $0.baseAddress! })
    }
    let published = PublishedCount()
    for _ in 0..<15 {
        try appended.removeLast(appended.count)
        var start = now()
        try probeAppend(appended, 1 << 20)
        times["append", default: []].append((now() - start) / Double(1 << 20) * 1e9)
        start = now()
        probeRawAppend(appendBase, published, 1 << 20)
        times["raw append", default: []].append((now() - start) / Double(1 << 20) * 1e9)
    }
    try appended.close()
    printMedians(times, ["raw append", "append"], unit: "ns")
    print("check \(check)")
    try view.close(flush: false)
    try map.close(flush: false)
    try table.close()
}

// MARK: - Open probe: what opening a table costs beyond mmap (issue #18)

/// Open to first read three ways, interleaved over 15 rounds of 200 opens of one table file of
/// `n` records: open + fstat + mmap + load + munmap + close by hand, the accessor (a
/// `MemoryMappedFile` and one view), and `RecordTable.open`. Prints the median µs per open of
/// each. With `ONLY=raw` (or `accessor`, `table`) it runs just that one, 100,000 times, for a
/// profiler.
func runOpenProbe(_ directory: String, _ n: Int) throws {
    let path = "\(directory)/open-probe.mrec"
    try makeProbeTable(path, n).close()
    defer { unlink(path) }
    let firstRecord = 4096 + 8  // the first record's x: the header takes one page
    let systems: [(String, () throws -> Double)] = [
        (
            "raw",
            {
                let descriptor = open(path, O_RDONLY)
                var status = stat()
                fstat(descriptor, &status)
                let size = Int(status.st_size)
                let base = mmap(nil, size, PROT_READ, MAP_SHARED, descriptor, 0)!
                let value = base.load(fromByteOffset: firstRecord, as: Double.self)
                munmap(base, size)
                close(descriptor)
                return value
            }
        ),
        (
            "accessor",
            {
                let map = try MemoryMappedFile.createFromFile(path: path, mode: .open, access: .read)
                let view = try map.makeViewAccessor()
                let value = view.read(Double.self, at: firstRecord)
                try view.close()
                try map.close()
                return value
            }
        ),
        (
            "table",
            {
                let reader = try RecordTable<Point>.open(path: path, access: .readOnly)
                let value = reader[0].x
                try reader.close()
                return value
            }
        ),
    ]
    var check = 0.0
    if let only = getenv("ONLY").map({ String(cString: $0) }), let body = systems.first(where: { $0.0 == only })?.1 {
        for _ in 0..<100_000 { check += try body() }
        print("check \(check)")
        return
    }
    var times: [String: [Double]] = [:]
    for _ in 0..<15 {
        for (name, body) in systems {
            let start = now()
            for _ in 0..<200 { check += try body() }
            times[name, default: []].append((now() - start) / 200 * 1e6)
        }
    }
    printMedians(times, systems.map(\.0), unit: "µs")
    print("check \(check)")
}

// MARK: - Main

let arguments = CommandLine.arguments
do {
    switch (arguments.count > 1 ? arguments[1] : "", arguments.count) {
    case ("run", 5):
        let (directory, n, runs) = (arguments[2], Int(arguments[3])!, Int(arguments[4])!)
        let source = readWhole("\(directory)/records-\(n)", as: Point.self)
        let index = readWhole("\(directory)/indices-\(n)", as: UInt32.self)
        precondition(source.count == n && index.count == indexCount, "the data files do not match N")
        try runTable(directory, n, runs, source, index)
        try runAccessor(directory, n, runs, source, index)
    case ("readers", 5): try runReaders(arguments[2], Int(arguments[3])!, Double(arguments[4])!)
    case ("scale-writer", 4): try scaleWriter(arguments[2], Double(arguments[3])!)
    case ("scale-reader", 4): try scaleReader(arguments[2], Double(arguments[3])!)
    case ("registry", 4): try runRegistry(arguments[2], Int(arguments[3])!)
    case ("probe", 4): try runProbe(arguments[2], Int(arguments[3])!)
    case ("open-probe", 4): try runOpenProbe(arguments[2], Int(arguments[3])!)
    case ("hold-names", 5): try holdNames(arguments[2], arguments[3], Int(arguments[4])!)
    default:
        print(
            "usage: compare-mappedrecords run DIR N RUNS | readers DIR READERS SECONDS | registry DIR NAMES | probe DIR N | open-probe DIR N"
        )
        exit(2)
    }
} catch {
    print("compare-mappedrecords: \(error)")
    exit(1)
}
