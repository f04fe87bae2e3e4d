import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@Suite("Persisted maps: modes, capacity and errors")
struct PersistedMapTests {
    let directory = TemporaryDirectory()

    @Test("open maps an existing file at its size, and writes reach the file")
    func openExisting() throws {
        let path = directory.file("data")
        writeFile(path, Array(repeating: 7, count: 10_000))
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .open)
        #expect(map.capacity == 10_000)
        #expect(map.kind == .file(path: path))
        var view = try map.makeViewAccessor()
        #expect(view.read(UInt8.self, at: 9_999) == 7)
        view.write(UInt32(0xDEAD_BEEF), at: 5_000)
        try view.close()
        #expect(preadBytes(path, offset: 5_000, count: 4) == [0xEF, 0xBE, 0xAD, 0xDE])
    }

    @Test("open on a missing file is notFound and creates nothing")
    func openMissing() {
        let path = directory.file("missing")
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: .open) }
        #expect(error?.code == .notFound)
        #expect(error?.path == path)
        #expect(error?.systemCall == "open")
        #expect(error?.errno == ENOENT)
        #expect(error?.description.contains("the file does not exist") == true)
        #expect(!fileExists(path))
    }

    @Test("createNew creates a file of the capacity, and refuses an existing one")
    func createNew() throws {
        let path = directory.file("new")
        let map = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 8192)
        #expect(map.capacity == 8192)
        #expect(fileStatus(path)?.st_size == 8192)
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 8192) }
        #expect(error?.code == .alreadyExists)
    }

    @Test("growth allocates blocks with posix_fallocate, not a sparse ftruncate")
    func growthAllocatesBlocks() throws {
        let path = directory.file("grown")
        let capacity = 4 << 20
        _ = try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: capacity)
        let status = try #require(fileStatus(path))
        #expect(status.st_size == capacity)
        #expect(Int(status.st_blocks) * 512 >= capacity)
    }

    @Test("create empties an existing file; truncate does too and needs a capacity")
    func createAndTruncate() throws {
        let path = directory.file("replaced")
        writeFile(path, Array(repeating: 9, count: 100))
        var map = try MemoryMappedFile.createFromFile(path: path, mode: .create, capacity: 4096)
        var view = try map.makeViewAccessor()
        #expect(view.read(UInt8.self, at: 0) == 0)
        try view.close()
        try map.close()

        writeFile(path, Array(repeating: 9, count: 100))
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: .truncate) }
        #expect(error?.code == .invalidCapacity)
        map = try MemoryMappedFile.createFromFile(path: path, mode: .truncate, capacity: 512)
        view = try map.makeViewAccessor()
        #expect(view.capacity == 512)
        #expect(view.read(UInt64.self, at: 0) == 0)
    }

    @Test("openOrCreate creates a missing file and opens an existing one")
    func openOrCreate() throws {
        let path = directory.file("either")
        var map = try MemoryMappedFile.createFromFile(path: path, mode: .openOrCreate, capacity: 4096)
        var view = try map.makeViewAccessor()
        view.write(UInt64(42), at: 8)
        try view.close()
        try map.close()
        map = try MemoryMappedFile.createFromFile(path: path, mode: .openOrCreate, capacity: 0)
        #expect(map.capacity == 4096)
        let again = try map.makeViewAccessor()
        #expect(again.read(UInt64.self, at: 8) == 42)
    }

    @Test("capacity rules: smaller than the file, empty file with 0, negative")
    func capacityRules() {
        let path = directory.file("sized")
        writeFile(path, Array(repeating: 1, count: 1000))
        let smaller = mappedError { try MemoryMappedFile.createFromFile(path: path, capacity: 999) }
        #expect(smaller?.code == .invalidCapacity)
        #expect(smaller?.message.contains("smaller than the file's size 1000") == true)

        let empty = directory.file("empty")
        writeFile(empty, [])
        let emptyError = mappedError { try MemoryMappedFile.createFromFile(path: empty) }
        #expect(emptyError?.code == .invalidCapacity)
        #expect(emptyError?.message.contains("empty") == true)

        #expect(mappedError { try MemoryMappedFile.createFromFile(path: path, capacity: -1) }?.code == .invalidCapacity)
        let readOnlyGrowth = mappedError {
            try MemoryMappedFile.createFromFile(path: path, capacity: 2000, access: .read)
        }
        #expect(readOnlyGrowth?.code == .invalidCapacity)
        #expect(fileStatus(path)?.st_size == 1000)
    }

    @Test("a failed createNew removes the file it created")
    func failedCreateRemovesFile() {
        let path = directory.file("never")
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 0) }
        #expect(error?.code == .invalidCapacity)
        #expect(!fileExists(path))
    }

    @Test("a directory is isDirectory, with read and with readWrite access")
    func directoryIsRefused() {
        for access in [MemoryMappedFileAccess.read, .readWrite] {
            let error = mappedError { try MemoryMappedFile.createFromFile(path: directory.path, access: access) }
            #expect(error?.code == .isDirectory)
        }
    }

    @Test("a FIFO is notRegularFile")
    func fifoIsRefused() {
        let path = directory.file("fifo")
        #expect(mkfifo(path, 0o600) == 0)
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, access: .read) }
        #expect(error?.code == .notRegularFile || error?.code == .permissionDenied)
    }

    @Test("a missing directory in the path is notFound with its own message")
    func missingDirectory() {
        let error = mappedError {
            try MemoryMappedFile.createFromFile(path: directory.file("no/such/file"), mode: .createNew, capacity: 10)
        }
        #expect(error?.code == .notFound)
        #expect(error?.message == "its directory does not exist")
    }

    @Test("modes that change the file need write access; files cannot be write-only")
    func accessAndModeCombinations() {
        let path = directory.file("combo")
        for access in [MemoryMappedFileAccess.read, .copyOnWrite, .readExecute] {
            for mode in [MemoryMappedFile.FileMode.create, .createNew, .truncate] {
                let error = mappedError {
                    try MemoryMappedFile.createFromFile(path: path, mode: mode, capacity: 10, access: access)
                }
                #expect(error?.code == .invalidAccess, "\(mode) with \(access)")
            }
        }
        #expect(
            mappedError {
                try MemoryMappedFile.createFromFile(path: path, mode: .createNew, capacity: 10, access: .write)
            }?.code == .invalidAccess)
        #expect(!fileExists(path))
    }

    @Test("a file owned by another user with mode 0644 maps read-only, and refuses readWrite")
    func readOnlyFileOfAnotherUser() throws {
        let path = directory.file("theirs")
        writeFile(path, [5, 6, 7, 8])
        if isRoot {
            // The helper drops to uid 65534, for whom this root-owned 0644 file is someone else's.
            #expect(chmod(directory.path, 0o755) == 0)
            let (readEnd, readOutput) = run(helper("open-as-nobody", path, "read"))
            #expect(readEnd == .exited(0))
            #expect(readOutput == "ok 5")
            let (writeEnd, writeOutput) = run(helper("open-as-nobody", path, "readWrite"))
            #expect(writeEnd == .exited(3))
            #expect(writeOutput == "error permissionDenied")
        } else {
            #expect(chmod(path, 0o444) == 0)
            let map = try MemoryMappedFile.createFromFile(path: path, access: .read)
            #expect(try map.makeViewAccessor().read(UInt8.self, at: 0) == 5)
            #expect(
                mappedError { try MemoryMappedFile.createFromFile(path: path, access: .readWrite) }?.code
                    == .permissionDenied)
        }
    }

    @Test("growing on a full file system is noSpace, leaves the old size, and never SIGBUS")
    func noSpaceOnSmallTmpfs() throws {
        withSmallFileSystem(in: directory, size: "1m") { mountPoint in
            let path = mountPoint + "/data"
            writeFile(path, Array(repeating: 3, count: 4096))
            let error = mappedError { try MemoryMappedFile.createFromFile(path: path, capacity: 8 << 20) }
            #expect(error?.code == .noSpace)
            // Refused before allocating: the file system's free space is checked first.
            #expect(error?.systemCall == nil && error?.message.contains("free") == true, "\(String(describing: error))")
            #expect(fileStatus(path)?.st_size == 4096)
            #expect(preadBytes(path, offset: 4095, count: 1) == [3])

            let newPath = mountPoint + "/new"
            #expect(
                mappedError { try MemoryMappedFile.createFromFile(path: newPath, mode: .createNew, capacity: 8 << 20) }?
                    .code == .noSpace)
            #expect(!fileExists(newPath))
        }
    }

    @Test("errors describe the operation, path, system call and errno")
    func errorDescription() {
        let path = directory.file("absent")
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path) }
        #expect(
            error?.description
                == "createFromFile '\(path)': the file does not exist (open: No such file or directory, errno 2)")
    }
}
