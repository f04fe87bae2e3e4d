import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

/// Regression tests for issue #12, items 5, 6 and 17: arguments are validated before anything
/// destructive, oversized in-memory maps fail at once, and files can be created atomically.
@Suite("validation before destruction, room checks, atomic creation")
struct ValidationOrderTests {
    let directory = TemporaryDirectory()

    @Test(
        ".truncate and .create with capacity 0 refuse before they empty the file",
        arguments: [MemoryMappedFile.FileMode.truncate, .create])
    func emptyingModesValidateFirst(mode: MemoryMappedFile.FileMode) {
        let path = directory.file("precious-\(mode)")
        writeFile(path, Array(repeating: 42, count: 10_000))
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: mode) }
        #expect(error?.code == .invalidCapacity)
        #expect(fileStatus(path)?.st_size == 10_000, "the file was emptied by a call that failed")
        #expect(preadBytes(path, offset: 9_999, count: 1) == [42])
    }

    @Test("every mode leaves an existing file as it was when the call fails")
    func everyModeLeavesTheFileOnFailure() {
        for mode in MemoryMappedFile.FileMode.allCases where mode != .createNew {
            let path = directory.file("kept-\(mode)")
            writeFile(path, Array(repeating: 7, count: 8192))
            // A capacity below the file's size is refused in every mode that keeps the contents;
            // the emptying modes refuse read access first.
            _ = mappedError {
                try MemoryMappedFile.createFromFile(path: path, mode: mode, capacity: 4096, access: .read)
            }
            _ = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: mode, capacity: -1) }
            _ = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: mode, access: .write) }
            #expect(fileStatus(path)?.st_size == 8192, "mode .\(mode)")
            #expect(preadBytes(path, offset: 8191, count: 1) == [7], "mode .\(mode)")
        }
    }

    @Test(".create on a directory or a FIFO is refused without truncating anything")
    func createOnSpecialFiles() {
        let fifo = directory.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        #expect(
            mappedError { try MemoryMappedFile.createFromFile(path: fifo, mode: .create, capacity: 4096) }?.code
                == .notRegularFile)
        #expect(fileExists(fifo))
    }

    @Test(".openOrCreate removes only a file it created itself")
    func openOrCreateRemovesOnlyItsOwn() {
        let path = directory.file("fresh")
        #expect(
            mappedError { try MemoryMappedFile.createFromFile(path: path, mode: .openOrCreate) }?.code
                == .invalidCapacity)
        #expect(!fileExists(path))
        let empty = directory.file("someone-elses-empty-file")
        writeFile(empty, [])
        #expect(
            mappedError { try MemoryMappedFile.createFromFile(path: empty, mode: .openOrCreate) }?.code
                == .invalidCapacity)
        #expect(fileExists(empty), "an existing file was removed by a failed openOrCreate")
    }

    @Test("an in-memory map larger than the machine's memory is noSpace at once, never an OOM")
    func oversizedMemoryFailsAtOnce() {
        let huge = 1 << 46  // 64 TiB: more than any machine this runs on has
        let start = ContinuousClock.now
        let anonymous = mappedError { try MemoryMappedFile.createAnonymous(capacity: huge) }
        #expect(anonymous?.code == .noSpace, "\(String(describing: anonymous))")
        let name = "mapped-records-test-huge-\(getpid())"
        let shared = mappedError { try MemoryMappedFile.createSharedMemory(systemName: name, capacity: huge) }
        #expect(shared?.code == .noSpace, "\(String(describing: shared))")
        #expect(!fileExists("/dev/shm/" + name), "the failed object was left in /dev/shm")
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    @Test("the file-size limit (ulimit -f) is fileTooLarge before allocating, not SIGXFSZ")
    func fileSizeLimit() {
        let (end, output) = run(helper("grow-past-fsize-limit", directory.file("limited")))
        #expect(end == .exited(3), "\(output)")
        #expect(output == "error fileTooLarge")
        #expect(!fileExists(directory.file("limited")))
    }

    @Test("an unnamed file is invisible until linked, then appears whole; an existing path is never replaced")
    func unnamedFileLinksAtomically() throws {
        let path = directory.file("atomic.data")
        let map = try MemoryMappedFile.createUnnamedFile(destinedFor: path, capacity: 8192)
        var view = try map.makeViewAccessor()
        view.write(UInt64(0xFEED), at: 4096)
        #expect(!fileExists(path))
        #expect(directoryListing(directory.path) == [])
        try map.linkIntoPlace(syncingDirectory: true)
        #expect(preadUInt64(path, offset: 4096) == 0xFEED)
        try view.close()
        try map.close()

        let second = try MemoryMappedFile.createUnnamedFile(destinedFor: path, capacity: 4096)
        #expect(mappedError { try second.linkIntoPlace(syncingDirectory: false) }?.code == .alreadyExists)
        #expect(preadUInt64(path, offset: 4096) == 0xFEED, "the existing file was replaced")
        try second.close()
        #expect(directoryListing(directory.path) == ["atomic.data"], "a temporary file was left behind")
    }
}
