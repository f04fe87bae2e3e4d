// A second process for the tests: each command does one thing to a map and
// reports on stdout. Exit codes: 0 done, 1 expectation failed, 2 usage, 3 library error.

import Dispatch
import Glibc
import MappedRegistry
import MemoryMappedFiles
import NamedTables
import RecordTable
import TestSupport

func say(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(STDOUT_FILENO, $0, strlen($0)) }
}

func fail(_ line: String, code: Int32) -> Never {
    let text = line + "\n"
    _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    exit(code)
}

func readLineFromParent() -> String? { readLine(strippingNewline: true) }

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail("usage: mapped-test-helper COMMAND ARGS…", code: 2) }
func argument(_ index: Int) -> String {
    guard index + 1 < arguments.count else { fail("\(command): missing argument \(index + 1)", code: 2) }
    return arguments[index + 1]
}
func integer(_ index: Int) -> Int {
    guard let value = Int(argument(index)) else { fail("\(command): argument \(index + 1) is not a number", code: 2) }
    return value
}

func accessNamed(_ name: String) -> MemoryMappedFileAccess {
    switch name {
    case "read": return .read
    case "readWrite": return .readWrite
    case "copyOnWrite": return .copyOnWrite
    default: fail("unknown access \(name)", code: 2)
    }
}

/// A map and view stored where no deinit runs: a deliberate leak.
nonisolated(unsafe) var leakedMaps: [UnsafeMutablePointer<MemoryMappedFile>] = []
nonisolated(unsafe) var leakedViews: [UnsafeMutablePointer<MappedViewAccessor>] = []

func durabilityNamed(_ name: String) -> Durability {
    switch name {
    case "none": return .none
    case "batch": return .batch
    case "everyAppend": return .everyAppend
    default: fail("unknown durability \(name)", code: 2)
    }
}

/// Opens the Sample table at `path` for writing, creating it if it is missing.
func openSampleWriter(_ path: String, durability: Durability) throws(RecordTableError) -> RecordTable<Sample> {
    do {
        return try RecordTable<Sample>.open(
            path: path, access: .readWrite, durability: durability, waitForWriter: .seconds(10))
    } catch  where error.code == .notFound {
        return try RecordTable<Sample>.create(path: path, durability: durability)
    }
}

/// A schema from its text, or a usage failure.
func schemaNamed(_ text: String) throws(RecordTableError) -> RecordSchema {
    do { return try RecordSchema(parsing: text) } catch { fail("bad schema \(text): \(error)", code: 2) }
}

func tableCommand() throws(RecordTableError) -> Bool {
    switch command {
    case "table-writer":  // table-writer PATH COUNT DURABILITY: append COUNT samples, "ack N" after each
        let table = try openSampleWriter(argument(0), durability: durabilityNamed(argument(2)))
        say("open \(table.count)")
        for _ in 0..<integer(1) {
            try table.append(Sample(id: Int64(table.count)))
            say("ack \(table.count)")
        }
        let written = table.count
        try table.close()
        say("done \(written)")

    case "table-append-for":  // table-append-for PATH SECONDS: append batches of 1 to 64 until the time is up
        let table = try openSampleWriter(argument(0), durability: .none)
        say("open \(table.count)")
        let deadline = ContinuousClock.now + .seconds(integer(1))
        var generator = SystemRandomNumberGenerator()
        while ContinuousClock.now < deadline {
            let start = table.count
            let batch = (0..<Int.random(in: 1...64, using: &generator)).map { Sample(id: Int64(start + $0)) }
            try table.append(contentsOf: batch)
        }
        let written = table.count
        try table.close()
        say("done \(written)")

    case "table-reader":  // table-reader PATH SECONDS: follow the table, checking every record once
        var opened: RecordTable<Sample>?
        let deadline = ContinuousClock.now + .seconds(integer(1))
        while opened == nil {
            do {
                opened = try RecordTable<Sample>.open(path: argument(0), access: .readOnly)
            } catch  where error.code == .notFound || error.code == .notATable {
                guard ContinuousClock.now < deadline else { fail("the table never appeared", code: 1) }
                usleep(1000)
            }
        }
        let table = opened!
        say("reading")
        var checked = 0, refreshes = 0
        while ContinuousClock.now < deadline {
            let count = try table.refresh()
            guard count >= checked else { fail("bad: the count went back from \(checked) to \(count)", code: 1) }
            for index in checked..<count where !table[index].isValid(at: index) {
                fail("bad: record \(index) is torn or wrong: \(table[index])", code: 1)
            }
            if count == checked { usleep(200) }  // nothing new: do not spin
            checked = count
            refreshes += 1
        }
        say("ok \(checked) \(refreshes)")

    case "table-create-many":  // table-create-many DIR N: create Sample tables t0 … tN-1, one after another
        let padding = String(repeating: "x", count: 60_000)  // a header of many pages: slow to write
        for index in 0..<integer(1) {
            let table = try RecordTable<Sample>.create(
                path: argument(0) + "/t\(index).mrec", capacity: 4096, metadata: ["pad": padding])
            try table.append(Sample(id: 0))
            try table.close()
        }
        say("created")

    case "table-migrate":  // table-migrate PATH SCHEMA: migrate in place by field names, then report
        let report = try TableMigration.migrate(path: argument(0), to: try schemaNamed(argument(1)))
        say("migrated \(report.records)")

    // table-append-waiting PATH N: say "opening", wait up to 20 s for the writer lock, append N samples
    case "table-append-waiting":
        say("opening")
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readWrite, waitForWriter: .seconds(20))
        for _ in 0..<integer(1) { try table.append(Sample(id: Int64(table.count))) }
        try table.commit()
        let count = table.count
        try table.close()
        say("appended \(count)")

    // table-migrate-then-append PATH N: an app's start-up: migrate to Sample, then append N
    case "table-migrate-then-append":
        say("starting")
        let report = try RecordTable<Sample>.migrate(path: argument(0), waitForWriter: .seconds(20))
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readWrite, waitForWriter: .seconds(20))
        for _ in 0..<integer(1) { try table.append(Sample(id: Int64(table.count))) }
        try table.commit()
        let count = table.count
        try table.close()
        say("\(report.migrated ? "migrated" : "found it migrated"), appended \(count)")

    // migrate-as-nobody PATH: as uid 65534, migrate the table to Sample; report the error code
    case "migrate-as-nobody":
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        do {
            let report = try RecordTable<Sample>.migrate(path: argument(0))
            say("migrated \(report.records)")
        } catch {
            say("refused \(error.code): \(error.message)")
        }

    // append-as-nobody PATH: as uid 65534, open the Sample table for writing and append one record
    case "append-as-nobody":
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readWrite)
        try table.append(Sample(id: Int64(table.count)))
        try table.close()
        say("appended")

    case "updates-between":  // updates-between PATH: what an updates() iterator holds between two next() calls
        let writer = try RecordTable<Sample>.create(path: argument(0))
        let reader = try RecordTable<Sample>.open(path: argument(0))
        let updates = try reader.updates()
        let before = (MappingDiagnostics.openMapCount, MappingDiagnostics.openViewCount)
        try writer.append(Sample(id: 0))
        let finished = DispatchSemaphore(value: 0)
        Task {
            var iterator = updates.makeAsyncIterator()
            do {
                let count = try await iterator.next()
                let maps = MappingDiagnostics.openMapCount - before.0
                let views = MappingDiagnostics.openViewCount - before.1
                say("count \(count ?? -1), held maps \(maps) views \(views)")
            } catch {
                say("error \(error)")
            }
            withExtendedLifetime(iterator) {}
            finished.signal()
        }
        finished.wait()
        try reader.close()
        try writer.close()

    case "table-follow-replaced":  // table-follow-replaced PATH SECONDS: follow until the file is replaced
        let table = try DynamicRecordTable.open(path: argument(0))
        say("following \(table.count)")
        let deadline = ContinuousClock.now + .seconds(integer(1))
        while ContinuousClock.now < deadline {
            do {
                _ = try table.waitForRecords(beyond: table.count, timeout: .milliseconds(20))
            } catch  where error.code == .replaced {
                say("replaced")
                return true
            }
        }
        say("never told")

    case "table-wait":  // table-wait PATH KNOWN TIMEOUT_MS STRATEGY [nobody]: wait once, report the count and when
        if arguments.count > 5 && argument(4) == "nobody" {
            guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        }
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readOnly)
        let strategy: WaitStrategy = argument(3) == "spin" ? .spin : .block
        say("waiting")
        let count = try table.waitForRecords(beyond: integer(1), timeout: .milliseconds(integer(2)), strategy: strategy)
        say("count \(count) at \(monotonicNanoseconds()) writer \(try table.writerIsActive() ? "active" : "gone")")

    // table-append-hold PATH: open for writing; each line "N" appends N records; killed or EOF ends it
    case "table-append-hold":
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readWrite)
        say("writing \(table.count)")
        while let line = readLineFromParent(), let n = Int(line) {
            for _ in 0..<n { try table.append(Sample(id: Int64(table.count))) }
            say("appended \(table.count)")
        }
        try table.close()

    case "journal-append":
        // journal-append PATH WRITER TOTAL DURABILITY: as a shared appender, append this writer's
        // records TOTAL of them in all, resuming after the last one the table holds, in batches of
        // 1 to 64 each followed by commit(); after each commit, store the count acknowledged in
        // PATH.ackWRITER (8 bytes), then pause up to 2 ms (so that a test under load still kills it 50 times before it ends). Says "done N" at the end.
        let path = argument(0), writer = integer(1), total = integer(2)
        let journal = try RecordTable<JournalEntry>.open(
            path: path, access: .sharedAppend, durability: durabilityNamed(argument(3)), waitForWriter: .seconds(10))
        var next = 0
        try journal.refresh()
        for entry in journal where Int(entry.writer) == writer { next = max(next, Int(entry.sequence) + 1) }
        let ackFile = open(path + ".ack\(writer)", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        guard ackFile >= 0 else { fail("journal-append: cannot open the ack file", code: 3) }
        var generator = SystemRandomNumberGenerator()
        while next < total {
            let size = min(total - next, Int.random(in: 1...64, using: &generator))
            try journal.append(
                contentsOf: (0..<size).map { JournalEntry(writer: writer, sequence: next + $0, batchSize: size) })
            try journal.commit()
            next += size
            var acknowledged = Int64(next)
            _ = pwrite(ackFile, &acknowledged, 8, 0)
            usleep(UInt32.random(in: 0...2_000, using: &generator))
        }
        try journal.close()
        say("done \(next)")

    case "series-append":
        // series-append DIR TOTAL ROLL RETENTION ACCESS: append Samples with ids following the
        // last one in the series, in batches of 1 to 20, committing each and saying "ack ID"
        // (the last id committed), until id TOTAL - 1; then "done". Crashes where
        // MAPPED_RECORDS_CRASH_AT says (debug builds).
        let series = try TableSeries<Sample>.open(
            directory: argument(0), access: argument(4) == "shared" ? .sharedAppend : .readWrite,
            roll: seriesRoll(argument(2)), retention: seriesRetention(argument(3)), durability: .none)
        var next = try lastSampleID(in: series).map { Int($0) + 1 } ?? 0
        let total = integer(1)
        var generator = SystemRandomNumberGenerator()
        while next < total {
            let size = min(total - next, Int.random(in: 1...20, using: &generator))
            try series.append(contentsOf: (0..<size).map { Sample(id: Int64(next + $0)) })
            try series.commit()
            next += size
            say("ack \(next - 1)")
        }
        try series.close()
        say("done")

    case "journal-series":
        // journal-series DIR WRITER TOTAL ROLL: journal-append's records, to a series, as one of
        // several shared appenders that roll it.
        let series = try TableSeries<JournalEntry>.open(
            directory: argument(0), access: .sharedAppend, roll: seriesRoll(argument(3)), durability: .none)
        let writer = integer(1), total = integer(2)
        var next = 0
        var generator = SystemRandomNumberGenerator()
        while next < total {
            let size = min(total - next, Int.random(in: 1...64, using: &generator))
            try series.append(
                contentsOf: (0..<size).map { JournalEntry(writer: writer, sequence: next + $0, batchSize: size) })
            if Bool.random(using: &generator) { try series.commit() }
            next += size
        }
        try series.close()
        say("done \(next)")

    case "series-follow":
        // series-follow DIR TOTAL SECONDS: follow the series from its start until TOTAL records
        // were seen, checking that the ids are 0, 1, 2, … exactly once; "ok N FILES" or "bad …".
        let series = try TableSeries<Sample>.open(directory: argument(0))
        let total = integer(1)
        let deadline = ContinuousClock.now + .seconds(integer(2))
        var position = SeriesPosition(file: 1, index: 0)
        var seen = 0
        var files = Set<Int>()
        say("following")
        while seen < total && ContinuousClock.now < deadline {
            _ = try series.waitForRecords(beyond: position, timeout: .milliseconds(200))
            files.insert(position.file)
            for sample in try series.read(from: &position) {
                guard sample == Sample(id: Int64(seen)) else {
                    fail("bad: record \(seen) is \(sample.id) at \(position)", code: 1)
                }
                seen += 1
            }
        }
        say(seen == total ? "ok \(seen) \(files.count)" : "bad: saw \(seen) of \(total) records")

    case "table-hold-appender":  // table-hold-appender PATH: hold a shared appender's lock until a line arrives
        let table = try RecordTable<Sample>.open(path: argument(0), access: .sharedAppend)
        say("appending")
        _ = readLineFromParent()
        try table.close()

    case "table-hold-writer":  // table-hold-writer PATH: hold the writer lock until a line arrives
        let table = try RecordTable<Sample>.open(path: argument(0), access: .readWrite)
        say("writing")
        _ = readLineFromParent()
        try table.close()

    default:
        return false
    }
    return true
}

func registryCommand() throws(RegistryError) -> Bool {
    switch command {
    case "named-write":  // named-write DIR NAME OFFSET VALUE: open by name, write a UInt64 in the region, close
        let registry = try Registry.open(directory: argument(0))
        let map = try MemoryMappedFile.openExisting(name: argument(1), registry: registry)
        var view = try map.makeViewAccessor()
        view.write(UInt64(integer(3)), at: integer(2))
        say("region \(map.regionOffset) \(map.regionLength)")

    case "registry-as-nobody":  // registry-as-nobody DIR: drop to uid 65534, then open the registry
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        _ = try Registry.open(directory: argument(0))
        say("opened")

    // table-publish-hold DIR PATH NAME: publish the table read-only, close it, hold the name until a line
    case "table-publish-hold":
        let registry = try Registry.open(directory: argument(0))
        let publication = try TablePublication(publishing: argument(1), as: argument(2), registry: registry)
        say("published")
        _ = readLineFromParent()
        try publication.close()

    case "registry-open":  // registry-open DIR: open (create) the registry
        _ = try Registry.open(directory: argument(0))
        say("opened")

    case "publish-as-nobody":  // publish-as-nobody DIR NAME FILE: as uid 65534, publish FILE read-only, wait for a line
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        let registry = try Registry.open(directory: argument(0))
        let named = try MemoryMappedFile.createFromFile(
            path: argument(2), access: .read, name: argument(1), registry: registry)
        say("published")
        _ = readLineFromParent()
        try named.close()

    case "symlink-as-nobody":  // symlink-as-nobody TARGET LINK: as uid 65534, plant a symbolic link
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        guard symlink(argument(0), argument(1)) == 0 else { fail("symlink failed: \(errno)", code: 1) }
        say("planted")

    case "named-hold":  // named-hold DIR NAME CAPACITY: createOrOpen, report the object, wait for a line
        let registry = try Registry.open(directory: argument(0))
        let map = try MemoryMappedFile.createOrOpen(name: argument(1), capacity: integer(2), registry: registry)
        say("holding \(map.map.path ?? "?")")
        _ = readLineFromParent()
        try map.close()
        say("closed")

    case "named-open-close":  // named-open-close DIR NAME N VALUE: N × (openExisting, read the UInt64 at 0, close)
        let registry = try Registry.open(directory: argument(0))
        var opened = 0, notFound = 0, wrong = 0
        for _ in 0..<integer(2) {
            do throws(RegistryError) {
                let map = try MemoryMappedFile.openExisting(name: argument(1), registry: registry)
                let view = try map.makeViewAccessor()
                if view.read(UInt64.self, at: 0) != UInt64(integer(3)) { wrong += 1 }
                try? view.close()
                try map.close()
                opened += 1
            } catch  where error.code == .notFound {
                notFound += 1
            }
        }
        say("opened \(opened) notFound \(notFound) wrong \(wrong)")

    case "event-wait":  // event-wait DIR NAME TIMEOUT_MS: open the named event, wait once, report, then close
        let registry = try Registry.open(directory: argument(0))
        let event = try NamedEvent.openExisting(name: argument(1), registry: registry)
        say("waiting")
        say(event.wait(timeout: .milliseconds(integer(2))) ? "signaled" : "timed out")
        try event.close()

    case "event-set":  // event-set DIR NAME: open the named event, set it, close
        let registry = try Registry.open(directory: argument(0))
        let event = try NamedEvent.openExisting(name: argument(1), registry: registry)
        event.set()
        try event.close()
        say("set")

    case "mutex-hold":  // mutex-hold DIR NAME: lock the named mutex, report how, wait to be killed
        let registry = try Registry.open(directory: argument(0))
        let mutex = try NamedMutex(name: argument(1), registry: registry)
        say(try mutex.lock() == .acquired ? "acquired" : "acquiredAfterOwnerDied")
        _ = readLineFromParent()

    case "mutex-count":  // mutex-count DIR MUTEX MAP N: N locked increments of a plain counter
        let registry = try Registry.open(directory: argument(0))
        let mutex = try NamedMutex(name: argument(1), registry: registry)
        let map = try MemoryMappedFile.createOrOpen(name: argument(2), capacity: 4096, registry: registry)
        var view = try map.makeViewAccessor()
        say("ready")
        _ = readLineFromParent()
        for _ in 0..<integer(3) {
            try mutex.lock()
            view.write(view.read(UInt64.self, at: 0) + 1, at: 0)  // not atomic: only the mutex makes this exact
            try mutex.unlock()
        }
        say("done")

    // registry-churn DIR WORKER ITERATIONS FILE START: random named-map operations, sometimes kill -9 itself
    case "registry-churn":
        let registry = try Registry.open(directory: argument(0))
        let worker = integer(1), iterations = integer(2)
        var generator = SystemRandomNumberGenerator()
        for iteration in integer(4)..<iterations {
            let name = "churn-\(Int.random(in: 0..<4, using: &generator))"
            switch Int.random(in: 0..<10, using: &generator) {
            case 0..<4:
                let map = try MemoryMappedFile.createOrOpen(name: name, capacity: 4096, registry: registry)
                var view = try map.makeViewAccessor()
                view.write(UInt8(truncatingIfNeeded: iteration), at: worker)
                try map.close()
            case 4..<7:
                do {
                    let map = try MemoryMappedFile.openExisting(name: name, registry: registry)
                    _ = try map.makeViewAccessor().read(UInt8.self, at: worker)
                    try map.close()
                } catch  where error.code == .notFound {}
            case 7..<9:
                // A persisted byte, written through a named map of the shared file, then closed.
                let map = try MemoryMappedFile.createFromFile(
                    path: argument(3), name: "churn-file-\(worker)", registry: registry)
                var view = try map.makeViewAccessor()
                view.write(UInt8(1), at: worker * iterations + iteration)
                try map.close()
                say("persisted \(worker * iterations + iteration)")
            default:
                if Int.random(in: 0..<8, using: &generator) == 0 {
                    // Crash while holding a name.
                    let map = try MemoryMappedFile.createOrOpen(name: name, capacity: 4096, registry: registry)
                    say("crashing \(iteration)")
                    kill(getpid(), SIGKILL)
                    _ = consume map
                }
            }
        }
        say("finished")

    default:
        return false
    }
    return true
}

do throws(RegistryError) {
    if try registryCommand() { exit(0) }
} catch {
    say("error \(error.code.rawValue)")
    fail(error.description, code: 3)
}

do throws(RecordTableError) {
    if try tableCommand() { exit(0) }
} catch {
    say("error \(error.code.rawValue)")
    fail(error.description, code: 3)
}

do throws(MappedFileError) {
    switch command {
    case "write":  // write PATH OFFSET VALUE: one UInt64 through a view of the file
        let map = try MemoryMappedFile.createFromFile(path: argument(0))
        var view = try map.makeViewAccessor()
        view.write(UInt64(integer(2)), at: integer(1))
        try view.close()

    case "read":  // read PATH OFFSET: print the UInt64 there
        let map = try MemoryMappedFile.createFromFile(path: argument(0), access: .read)
        let view = try map.makeViewAccessor()
        say(String(view.read(UInt64.self, at: integer(1))))

    case "wait-for":  // wait-for PATH OFFSET VALUE: map once, then watch the mapping for VALUE
        let map = try MemoryMappedFile.createFromFile(path: argument(0), access: .read)
        let view = try map.makeViewAccessor()
        say("mapped")
        let expected = UInt64(integer(2))
        for _ in 0..<10_000 {
            if view.read(UInt64.self, at: integer(1)) == expected { say("seen"); exit(0) }
            usleep(1_000)
        }
        fail("value \(expected) never appeared", code: 1)

    case "hold":  // hold PATH OFFSET: map the file, wait for a line, then touch OFFSET
        let map = try MemoryMappedFile.createFromFile(path: argument(0), access: .read)
        let view = try map.makeViewAccessor()
        say("mapped")
        _ = readLineFromParent()
        say("byte \(view.read(UInt8.self, at: integer(1)))")

    case "shm-write":  // shm-write NAME OFFSET VALUE
        let map = try MemoryMappedFile.openSharedMemory(systemName: argument(0))
        var view = try map.makeViewAccessor()
        view.write(UInt64(integer(2)), at: integer(1))

    case "adopt-inherited":  // adopt-inherited OFFSET EXPECTED NEW: the map spawnChild handed over; check, then write
        guard let map = try MemoryMappedFile.adoptInherited() else { fail("no inherited map", code: 1) }
        var view = try map.makeViewAccessor()
        guard view.read(UInt64.self, at: integer(0)) == UInt64(integer(1)) else {
            fail("the inherited map holds something else", code: 1)
        }
        guard map.access == .readWrite, !map.isInheritable || map.fileDescriptor == MemoryMappedFile.inheritedDescriptor
        else {
            fail("wrong access", code: 1)
        }
        view.write(UInt64(integer(2)), at: integer(0))

    // adopt-inherited-stdio: the variable names 0, 1 or 2; it must be refused, stdout kept
    case "adopt-inherited-stdio":
        do {
            _ = try MemoryMappedFile.adoptInherited()
            say("adopted a standard descriptor")
        } catch {
            say("refused \(error.code); stdout still open")
        }

    case "adopt-inherited-none":  // adopt-inherited-none: a process started without a map finds none
        guard try MemoryMappedFile.adoptInherited() == nil else { fail("found a map", code: 1) }

    case "descriptor-write":  // descriptor-write FD OFFSET VALUE: map an inherited descriptor
        let map = try MemoryMappedFile.adoptDescriptor(Int32(integer(0)))
        var view = try map.makeViewAccessor()
        view.write(UInt64(integer(2)), at: integer(1))

    case "open-as-nobody":  // open-as-nobody PATH ACCESS: drop to uid 65534, then map
        guard setgid(65534) == 0, setuid(65534) == 0 else { fail("cannot drop privileges", code: 2) }
        let map = try MemoryMappedFile.createFromFile(path: argument(0), access: accessNamed(argument(1)))
        let view = try map.makeViewAccessor()
        say("ok \(view.read(UInt8.self, at: 0))")

    case "grow-past-fsize-limit":  // grow-past-fsize-limit PATH: cap file sizes at 1 MiB, then create 8 MiB
        var limit = rlimit(rlim_cur: 1 << 20, rlim_max: 1 << 20)
        guard setrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 else {
            fail("setrlimit failed", code: 2)
        }
        _ = try MemoryMappedFile.createFromFile(path: argument(0), mode: .createNew, capacity: 8 << 20)
        say("created")

    case "map-limited":  // map-limited PATH: cap the address space at 1 GiB, then map all of PATH
        var limit = rlimit(rlim_cur: 1 << 30, rlim_max: 1 << 30)
        guard setrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &limit) == 0 else { fail("setrlimit failed", code: 2) }
        let map = try MemoryMappedFile.createFromFile(path: argument(0), access: .read)
        let view = try map.makeViewAccessor()
        say("mapped \(view.capacity)")

    case "lock-and-wait":  // lock-and-wait PATH: take the lock on byte 0, report, wait for a line
        let map = try MemoryMappedFile.createFromFile(path: argument(0))
        say(try map.tryLock(bytes: 0..<1) ? "locked" : "busy")
        _ = readLineFromParent()

    case "leak":  // leak: keep a map and a view open at exit
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        let view = try map.makeViewAccessor()
        let mapBox = UnsafeMutablePointer<MemoryMappedFile>.allocate(capacity: 1)
        mapBox.initialize(to: map)
        let viewBox = UnsafeMutablePointer<MappedViewAccessor>.allocate(capacity: 1)
        viewBox.initialize(to: view)
        leakedMaps.append(mapBox)
        leakedViews.append(viewBox)
        say("leaked")

    default:
        fail("unknown command \(command)", code: 2)
    }
} catch {
    say("error \(error.code.rawValue)")
    fail(error.description, code: 3)
}

/// A series' roll rule from its command-line form: never, records:N, bytes:N, hourly, daily.
func seriesRoll(_ text: String) -> SeriesRoll {
    let parts = text.split(separator: ":")
    switch (parts.first, parts.count == 2 ? Int(parts[1]) : nil) {
    case ("records", let n?): return .records(n)
    case ("bytes", let n?): return .bytes(n)
    case ("hourly", nil): return .hourly
    case ("daily", nil): return .daily
    case ("never", nil): return .never
    default: fail("unknown roll \(text)", code: 2)
    }
}

/// A series' retention from its command-line form: forever, files:N, age:SECONDS.
func seriesRetention(_ text: String) -> SeriesRetention {
    let parts = text.split(separator: ":")
    switch (parts.first, parts.count == 2 ? Int(parts[1]) : nil) {
    case ("files", let n?): return .files(n)
    case ("age", let n?): return .age(.seconds(n))
    case ("forever", nil): return .forever
    default: fail("unknown retention \(text)", code: 2)
    }
}

/// The id of the last Sample of the series, if it has one.
func lastSampleID(in series: TableSeries<Sample>) throws(RecordTableError) -> Int64? {
    for number in try series.fileNumbers().reversed() {
        let table = try RecordTable<Sample>.open(path: series.path(ofFile: number))
        defer { try? table.close() }
        if let last = table.last { return last.id }
    }
    return nil
}
