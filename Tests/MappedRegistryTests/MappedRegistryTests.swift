import Glibc
import MemoryMappedFiles
import NamedTables
import RecordTable
import TestSupport
import Testing

@testable import MappedRegistry

/// Runs `body` and returns the RecordTableError it throws, or nil.
func tableError<R>(_ body: () throws -> R) -> RecordTableError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error as? RecordTableError
    }
}

/// Runs `body` and returns the RegistryError it throws, or nil.
func registryError<R: ~Copyable>(
    _ body: () throws -> R, sourceLocation: SourceLocation = #_sourceLocation
) -> RegistryError? {
    do {
        _ = try body()
        return nil
    } catch let error as RegistryError {
        return error
    } catch {
        Issue.record("expected a RegistryError, got \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// A registry directory whose LMDB data file for this boot is 16 KiB of garbage.
func makeDamagedRegistry(at directory: String) {
    #expect(mkdir(directory, 0o700) == 0)
    let bootDirectory =
        directory + "/" + Registry.bootDirectoryName
    #expect(mkdir(bootDirectory, 0o700) == 0)
    writeFile(bootDirectory + "/data.mdb", Array(repeating: 0x5A, count: 16384), mode: 0o600)
}

@Suite("Registry: named maps, regions and mutexes across real processes", .timeLimit(.minutes(3)))
final class MappedRegistryTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }
    func registry() throws -> Registry { try Registry.open(directory: registryPath) }

    // Helpers that exit or die still holding names leave shared memory for the next operation
    // on the name; collect it before the directory goes, so /dev/shm stays clean.
    deinit { _ = try? Registry.open(directory: registryPath).collectGarbage() }

    @Test("the seed's Process A, B and C, as three processes, print True, False, True")
    func seedThreeProcesses() throws {
        let environment = ["MAPPED_REGISTRY=\(registryPath)"]
        let processA = ChildProcess([builtExecutable("seed-process-a")], environment: environment)
        #expect(processA.readLine() == "Start Process B and press ENTER to continue.")
        let (endB, outputB) = run([builtExecutable("seed-process-b")], environment: environment)
        #expect(endB == .exited(0) && outputB.isEmpty, "\(outputB)")
        processA.writeLine("")
        #expect(processA.readLine() == "Start Process C and press ENTER to continue.")
        let (endC, outputC) = run([builtExecutable("seed-process-c")], environment: environment)
        #expect(endC == .exited(0) && outputC.isEmpty, "\(outputC)")
        processA.writeLine("")
        #expect(processA.readAll() == "Process A says: True\nProcess B says: False\nProcess C says: True")
        #expect(processA.wait() == .exited(0))
        // Process A was the last holder: the names and the memory are gone.
        #expect(try registry().entries().isEmpty)
        let (_, afterwards) = run([builtExecutable("seed-process-b")], environment: environment)
        #expect(afterwards == "Memory-mapped file does not exist. Run Process A first.")
    }

    @Test("createNew, openExisting in another process, and the last close unlinks and removes the name")
    func lifecycle() throws {
        let registry = try registry()
        let map = try MemoryMappedFile.createNew(name: "shared", capacity: 4096, registry: registry)
        let object = map.map.path!
        #expect(fileExists(object))
        #expect(fileStatus(object).map { $0.st_mode & 0o777 } == 0o600)
        let (end, output) = run(helper("named-write", registryPath, "shared", "64", "777"))
        #expect(end == .exited(0) && output == "region 0 4096")
        let value = try map.makeViewAccessor().read(UInt64.self, at: 64)
        #expect(value == 777)
        let entry = try #require(try registry.entry(named: "shared"))
        #expect(
            entry.kind == .sharedMemory && registry.holders(of: entry).handlesInThisProcess == 1 && entry.length == 4096
        )
        try map.close()
        #expect(!fileExists(object))
        #expect(try registry.entry(named: "shared") == nil)
        #expect(
            registryError { try MemoryMappedFile.openExisting(name: "shared", registry: registry) }?.code == .notFound)
    }

    @Test("names: duplicates, bad names, wrong kinds")
    func names() throws {
        let registry = try registry()
        let first = try MemoryMappedFile.createNew(name: "once", capacity: 100, registry: registry)
        #expect(
            registryError { try MemoryMappedFile.createNew(name: "once", capacity: 100, registry: registry) }?.code
                == .nameExists)
        let second = try MemoryMappedFile.createOrOpen(name: "once", capacity: 100, registry: registry)
        #expect(second.map.path == first.map.path)
        for bad in ["", "nul\u{0}", String(repeating: "n", count: Registry.maximumNameLength + 1)] {
            #expect(
                registryError { try MemoryMappedFile.createNew(name: bad, capacity: 1, registry: registry) }?.code
                    == .invalidName)
        }
        #expect(
            registryError { try MemoryMappedFile.openExisting(name: "never", registry: registry) }?.code == .notFound)
        let mutex = try NamedMutex(name: "lock", registry: registry)
        #expect(mutex.createdNew)
        #expect(
            registryError { try MemoryMappedFile.openExisting(name: "lock", registry: registry) }?.code == .wrongKind)
        #expect(registryError { try NamedMutex.openExisting(name: "once", registry: registry) }?.code == .wrongKind)
    }

    @Test("a holder killed with -9 is noticed by the next operation on the name and by collectGarbage")
    func crashRecovery() throws {
        let registry = try registry()
        let holder = ChildProcess(helper("named-hold", registryPath, "orphan", "8192"))
        let object = String(holder.readLine()?.dropFirst("holding ".count) ?? "")
        #expect(fileExists(object))
        kill(holder.pid, SIGKILL)
        #expect(holder.wait() == .signaled(SIGKILL))
        let entry = try #require(try registry.entry(named: "orphan"))
        #expect(registry.holders(of: entry).isHeld == false)
        let report = try registry.collectGarbage()
        #expect(report.deadHolders == 1 && report.removedNames == ["orphan"])
        #expect(!fileExists(object))

        // Crash again; this time createNew on the name itself cleans up.
        let second = ChildProcess(helper("named-hold", registryPath, "orphan", "8192"))
        let secondObject = String(second.readLine()?.dropFirst("holding ".count) ?? "")
        kill(second.pid, SIGKILL)
        second.wait()
        let fresh = try MemoryMappedFile.createNew(name: "orphan", capacity: 100, registry: registry)
        #expect(!fileExists(secondObject))
        #expect(fresh.capacity == 100)
    }

    @Test(
        "the seed's persisted example: createFromFile(name: \"ImgA\") and openExisting(\"ImgA\") in another process, as a region"
    )
    func persistedRegion() throws {
        let registry = try registry()
        let path = directory.file("ExtremelyLargeImage.data")
        let image = try MemoryMappedFile.createFromFile(
            path: path, mode: .createNew, capacity: 1 << 20, name: "ImgA", regionOffset: 4096, regionLength: 8192,
            registry: registry)
        let (end, output) = run(helper("named-write", registryPath, "ImgA", "8", "4242"))
        #expect(end == .exited(0) && output == "region 4096 8192")
        let value = try image.makeViewAccessor().read(UInt64.self, at: 8)
        #expect(value == 4242)
        try image.close()  // the last close syncs the file and removes the name
        #expect(preadUInt64(path, offset: 4096 + 8) == 4242)
        #expect(try registry.entry(named: "ImgA") == nil)
    }

    @Test("a record table published by name is opened by name; the name goes with the publisher")
    func publishedTable() throws {
        let registry = try registry()
        let table = try RecordTable<Sample>.create(path: directory.file("published.mrec"))
        try table.append(contentsOf: (0..<10).map { Sample(id: Int64($0)) })
        try table.publish(as: "samples", registry: registry)  // as the README writes it: no handle to keep
        #expect(table.publishedNames == ["samples"])
        let reader = try RecordTable<Sample>.open(name: "samples", registry: registry)
        #expect(reader.count == 10 && reader[9].isValid(at: 9))
        try table.close()  // the name goes with the table
        let error = tableError { try RecordTable<Sample>.open(name: "samples", registry: registry) }
        #expect(error?.code == .notFound)

        // Withdrawn early, explicitly; and a name that outlives any handle, explicitly.
        let again = try RecordTable<Sample>.open(path: directory.file("published.mrec"))
        try again.publish(as: "early", registry: registry)
        try again.withdrawPublication("early")
        #expect(tableError { try RecordTable<Sample>.open(name: "early", registry: registry) }?.code == .notFound)
        let standalone = try TablePublication(
            publishing: directory.file("published.mrec"), as: "standalone", registry: registry)
        try again.close()
        #expect(try RecordTable<Sample>.open(name: "standalone", registry: registry).count == 10)
        try standalone.close()
    }

    @Test("a name whose backing file was deleted is backingObjectMissing")
    func deletedBackingFile() throws {
        let registry = try registry()
        let path = directory.file("gone.data")
        let map = try MemoryMappedFile.createFromFile(
            path: path, mode: .createNew, capacity: 4096, name: "gone", registry: registry)
        unlink(path)
        let (end, output) = run(helper("named-write", registryPath, "gone", "0", "1"))
        #expect(end == .exited(3) && output == "error backingObjectMissing")
        try map.close()
    }

    @Test("createOrOpen is atomic: 8 racing processes all get the same memory")
    func createOrOpenRace() throws {
        let holders = (0..<8).map { _ in ChildProcess(helper("named-hold", registryPath, "race", "4096")) }
        let objects = Set(holders.map { $0.readLine() ?? "none" })
        #expect(objects.count == 1 && objects.first?.hasPrefix("holding /dev/shm/") == true, "\(objects)")
        for holder in holders { holder.writeLine("close") }
        for holder in holders { #expect(holder.readLine() == "closed"); holder.wait() }
        #expect(try registry().entries().isEmpty)
        #expect(!fileExists(String(objects.first!.dropFirst("holding ".count))))
    }

    @Test("1,000 owner deaths by SIGKILL: each is reported as owner-died, with no hang")
    func abandonedMutex() throws {
        let registry = try registry()
        let keeper = try NamedMutex(name: "abandoned", registry: registry)  // keeps the name alive throughout
        var ownerDied = 0
        for round in 0..<1000 {
            let owner = ChildProcess(helper("mutex-hold", registryPath, "abandoned"))
            let how = owner.readLine()
            if round > 0 && how == "acquiredAfterOwnerDied" { ownerDied += 1 }
            if round == 0 { #expect(how == "acquired") }
            kill(owner.pid, SIGKILL)
            owner.wait()
        }
        #expect(ownerDied == 999)
        #expect(try keeper.lock(timeout: .seconds(5)) == .acquiredAfterOwnerDied)
        try keeper.unlock()
        #expect(try keeper.tryLock() == .acquired)
        try keeper.unlock()
    }

    @Test("mutual exclusion: 8 processes × 20,000 locked increments of a plain counter are exact")
    func mutualExclusion() throws {
        let registry = try registry()
        let counter = try MemoryMappedFile.createOrOpen(name: "counter", capacity: 4096, registry: registry)
        let workers = (0..<8).map { _ in
            ChildProcess(helper("mutex-count", registryPath, "counter-lock", "counter", "20000"))
        }
        for worker in workers { #expect(worker.readLine() == "ready") }
        for worker in workers { worker.writeLine("go") }
        for worker in workers {
            #expect(worker.readLine() == "done")
            #expect(worker.wait() == .exited(0))
        }
        #expect(try counter.makeViewAccessor().read(UInt64.self, at: 0) == 160_000)
    }

    @Test("mutex: tryLock, timeout, withLock, initiallyOwned")
    func mutexBasics() throws {
        let registry = try registry()
        let mutex = try NamedMutex(name: "basic", initiallyOwned: true, registry: registry)
        let holder = ChildProcess(helper("mutex-hold", registryPath, "basic"))
        usleep(100_000)  // the child blocks: we own the mutex
        try mutex.unlock()
        #expect(holder.readLine() == "acquired")
        #expect(try mutex.tryLock() == nil)
        let started = ContinuousClock.now
        #expect(try mutex.lock(timeout: .milliseconds(200)) == nil)
        #expect(ContinuousClock.now - started >= .milliseconds(190))
        holder.writeLine("release")  // the child exits holding it
        #expect(holder.wait() == .exited(0))
        #expect(try mutex.withLock { $0 } == .acquiredAfterOwnerDied)
        #expect(try mutex.withLock { $0 } == .acquired)
    }

    @Test("bad registries: a directory others can write, and damaged LMDB files")
    func badRegistries() throws {
        let open = directory.file("open")
        #expect(mkdir(open, 0o777) == 0 && chmod(open, 0o777) == 0)
        #expect(registryError { try Registry.open(directory: open) }?.code == .permissionDenied)

        let damaged = directory.file("damaged")
        makeDamagedRegistry(at: damaged)
        let error = registryError { try Registry.open(directory: damaged) }
        #expect(error?.code == .corrupt, "\(String(describing: error))")

        let notDirectory = directory.file("plain-file")
        writeFile(notDirectory, [1])
        #expect(registryError { try Registry.open(directory: notDirectory) }?.code == .permissionDenied)
    }

    @Test("another user cannot open a registry: permissionDenied")
    func anotherUser() throws {
        _ = try registry()
        guard isRoot else {
            print("skipped: needs root to act as another user")
            return
        }
        #expect(chmod(directory.path, 0o755) == 0)  // let uid 65534 reach the registry itself
        let (end, output) = run(helper("registry-as-nobody", registryPath))
        #expect(end == .exited(3))
        #expect(output == "error permissionDenied")
    }

    @Test("a full LMDB map grows, and the transaction runs again")
    func mapFull() throws {
        let registry = try Registry.open(directory: directory.file("small-registry"), initialMapSize: 64 << 10)
        let value = [UInt8](repeating: 7, count: 2000)
        for index in 0..<500 {  // about 1 MB of values in a 64 KiB map
            try registry.environment.write { transaction throws(RegistryError) in
                try transaction.put(Array("key-\(index)".utf8), value)
            }
        }
        let count = try registry.environment.read { transaction throws(RegistryError) in try transaction.all().count }
        #expect(count == 500)
        let size = Int(fileStatus(registry.bootDirectory + "/data.mdb")?.st_size ?? 0)
        #expect(size > 64 << 10, "data.mdb has \(size) bytes: the map never grew")
    }

    @Test("unlocking a mutex this thread does not own is a thrown error (another process can forge it), not a trap")
    func unlockByNonOwnerThrows() throws {
        let mutex = try NamedMutex(name: "not-mine", registry: try registry())
        let error = registryError { try mutex.unlock() }
        #expect(error?.code == .corrupt && error?.message.contains("this thread does not own the mutex") == true)
    }

    @Test(
        "stress: 8 processes × 500 random operations with kill -9s; then 0 stale holders, 0 leaked objects, 0 lost bytes"
    )
    func churn() throws {
        let registry = try registry()
        let file = directory.file("churn.data")
        writeFile(file, Array(repeating: 0, count: 8 * 500))
        var persisted: [Int] = []
        var crashes = 0
        var workerPIDs: [pid_t] = []
        // Objects already there (from other runs, whose PIDs may be reused) do not count.
        let objectsBefore = Set(run(["/bin/ls", "/dev/shm"]).1.split(separator: "\n"))
        for worker in 0..<8 {
            // A worker that kills itself is restarted after the iteration it died in.
            var finished = false, start = 0
            while !finished {
                let process = ChildProcess(
                    helper("registry-churn", registryPath, String(worker), "500", file, String(start)))
                workerPIDs.append(process.pid)
                while let line = process.readLine() {
                    if line.hasPrefix("persisted ") { persisted.append(Int(line.dropFirst(10))!) }
                    if line.hasPrefix("crashing ") {
                        crashes += 1
                        start = Int(line.dropFirst(9))! + 1
                    }
                    if line == "finished" { finished = true }
                }
                let end = process.wait()
                #expect(end == .exited(0) || end == .signaled(SIGKILL), "worker \(worker): \(end)")
            }
        }
        try registry.collectGarbage()
        let stale = try registry.entries().map(\.name)
        #expect(stale.isEmpty, "stale names: \(stale)")
        // Shared-memory objects are named after the process that created them.
        let (_, objects) = run(["/bin/ls", "/dev/shm"])
        let leaked = objects.split(separator: "\n").filter { object in
            !objectsBefore.contains(object) && workerPIDs.contains { object.hasPrefix("mapped-records.\($0).") }
        }
        #expect(leaked.isEmpty, "leaked shared-memory objects: \(leaked)")
        let written = preadBytes(file, offset: 0, count: 8 * 500)
        let lost = persisted.filter { written[$0] != 1 }
        #expect(lost.isEmpty, "lost persisted bytes at \(lost.prefix(10))")
        print(
            "churn: 8 workers × 500 iterations, \(crashes) kill -9s, \(persisted.count) persisted bytes, \(lost.count) lost, 0 stale names"
        )
    }
}
