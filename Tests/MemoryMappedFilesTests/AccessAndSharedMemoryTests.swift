import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@Suite("Access rights and copy-on-write")
struct AccessTests {
    let directory = TemporaryDirectory()

    @Test("a view may not have more access than its map")
    func viewAccessIsLimitedByMap() throws {
        let path = directory.file("data")
        writeFile(path, Array(repeating: 0, count: 4096))
        for mapAccess in [MemoryMappedFileAccess.read, .readWrite, .copyOnWrite, .readExecute, .readWriteExecute] {
            let map = try MemoryMappedFile.createFromFile(path: path, access: mapAccess)
            for viewAccess in MemoryMappedFileAccess.allCases {
                let error = mappedError { try map.makeViewAccessor(access: viewAccess) }
                if mapAccess.allowsView(viewAccess) {
                    #expect(error == nil, "\(viewAccess) view of a \(mapAccess) map: \(String(describing: error))")
                } else {
                    #expect(error?.code == .invalidAccess, "\(viewAccess) view of a \(mapAccess) map")
                }
            }
        }
        #expect(MemoryMappedFileAccess.read.allowsView(.readWrite) == false)
        #expect(MemoryMappedFileAccess.readWrite.allowsView(.copyOnWrite))
    }

    @Test("copy-on-write changes reach neither the file, nor other views, nor other processes")
    func copyOnWriteStaysPrivate() throws {
        let path = directory.file("cow")
        writeFile(path, Array(repeating: 0, count: 8192))
        let map = try MemoryMappedFile.createFromFile(path: path, access: .readWrite)
        var privateView = try map.makeViewAccessor(access: .copyOnWrite)
        let sharedView = try map.makeViewAccessor(access: .read)
        privateView.write(UInt64(99), at: 16)
        #expect(privateView.read(UInt64.self, at: 16) == 99)
        #expect(sharedView.read(UInt64.self, at: 16) == 0)
        try privateView.flush()
        try privateView.close()
        #expect(preadUInt64(path, offset: 16) == 0)
        let (end, output) = run(helper("read", path, "16"))
        #expect(end == .exited(0))
        #expect(output == "0")

        // A map opened copy-on-write opens the file read-only, so even a read-only file works.
        #expect(chmod(path, 0o444) == 0)
        let cowMap = try MemoryMappedFile.createFromFile(path: path, access: .copyOnWrite)
        var cowView = try cowMap.makeViewAccessor()
        cowView.write(UInt8(1), at: 0)
        #expect(cowView.read(UInt8.self, at: 0) == 1)
        #expect(preadBytes(path, offset: 0, count: 1) == [0])
    }

    @Test("execute access maps the file with PROT_EXEC")
    func executeAccess() throws {
        let path = directory.file("code")
        writeFile(path, Array(repeating: 0xC3, count: 4096))
        let map = try MemoryMappedFile.createFromFile(path: path, access: .readExecute)
        let view = try map.makeViewAccessor()
        #expect(view.read(UInt8.self, at: 0) == 0xC3)
        let canWrite = view.canWrite
        #expect(!canWrite)
        let start = view.withUnsafeMutableBytes { UInt(bitPattern: $0.baseAddress) }
        let (_, maps) = run(["/bin/cat", "/proc/\(getpid())/maps"])
        let line = maps.split(separator: "\n").first { $0.hasPrefix(String(start, radix: 16) + "-") }
        #expect(line?.split(separator: " ")[1] == "r-xs")
    }

    @Test("writing through a read-only view traps with a clear message")
    func writeToReadOnlyViewTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
            var view = try map.makeViewAccessor(access: .read)
            view.write(UInt8(1), at: 0)
        }
        expectTrapMessage(result, "cannot write to a view with .read access")
    }

    @Test("reading through a write-only view traps")
    func readFromWriteOnlyViewTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            // Write-only memory is refused (.NET refuses it too); a write-only view of a map is not.
            let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
            var view = try map.makeViewAccessor(access: .write)
            view.write(UInt8(1), at: 0)
            _ = view.read(UInt8.self, at: 0)
        }
        expectTrapMessage(result, "cannot read from a view with .write access")
    }
}

@Suite("Non-persisted maps: anonymous, shared memory, inherited")
struct NonPersistedTests {
    @Test("anonymous memory is shared by views and with a forked child")
    func anonymousAcrossFork() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 1 << 20)
        var first = try map.makeViewAccessor()
        let second = try map.makeViewAccessor(offset: 4096)
        first.write(UInt64(5), at: 4096)
        #expect(second.read(UInt64.self, at: 0) == 5)

        let address = first.withUnsafeMutableBytes { $0.baseAddress! }
        let child = fork()
        if child == 0 {
            // SAFETY: only a store and _exit between fork and exit: no locks, no allocation.
            address.storeBytes(of: 77, toByteOffset: 8192, as: UInt64.self)
            _exit(0)
        }
        var status: Int32 = 0
        waitpid(child, &status, 0)
        #expect(status == 0)
        #expect(second.read(UInt64.self, at: 4096) == 77)
    }

    @Test("without delayAllocatePages memory is committed at creation; with it, on first touch")
    func delayAllocatePages() throws {
        let capacity = 8 << 20
        let committed = try MemoryMappedFile.createAnonymous(capacity: capacity)
        var status = stat()
        #expect(fstat(committed.fileDescriptor, &status) == 0)
        #expect(Int(status.st_blocks) * 512 >= capacity)

        let delayed = try MemoryMappedFile.createAnonymous(capacity: capacity, options: .delayAllocatePages)
        #expect(fstat(delayed.fileDescriptor, &status) == 0)
        #expect(status.st_blocks == 0)
        var view = try delayed.makeViewAccessor()
        view.write(UInt8(1), at: 3 << 20)
        #expect(fstat(delayed.fileDescriptor, &status) == 0)
        #expect(Int(status.st_blocks) * 512 == systemPageSize)
    }

    @Test("a shared-memory object is found by name from another process, then removed")
    func sharedMemoryByName() throws {
        let name = "mapped-records-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let map = try MemoryMappedFile.createSharedMemory(systemName: name, mode: .createNew, capacity: 10_000)
        defer { try? MemoryMappedFile.removeSharedMemory(systemName: name) }
        #expect(map.capacity == 10_000)
        #expect(try map.permissions() == .ownerReadWrite)
        #expect(
            mappedError { try MemoryMappedFile.createSharedMemory(systemName: name, mode: .createNew, capacity: 10) }?
                .code == .alreadyExists)

        let (end, _) = run(helper("shm-write", name, "24", "31337"))
        #expect(end == .exited(0))
        let view = try map.makeViewAccessor()
        #expect(view.read(UInt64.self, at: 24) == 31337)

        let opened = try MemoryMappedFile.openSharedMemory(systemName: name, access: .read)
        #expect(opened.capacity == 10_000)
        try map.setPermissions([.ownerRead, .ownerWrite, .groupRead])
        #expect(try opened.permissions().rawValue == 0o640)

        try MemoryMappedFile.removeSharedMemory(systemName: name)
        #expect(view.read(UInt64.self, at: 24) == 31337)
        #expect(mappedError { try MemoryMappedFile.openSharedMemory(systemName: name) }?.code == .notFound)
        #expect(mappedError { try MemoryMappedFile.removeSharedMemory(systemName: name) }?.code == .notFound)
    }

    @Test("openOrCreate grows a smaller object and opens an equal one")
    func sharedMemoryOpenOrCreate() throws {
        let name = "mapped-records-test-grow-\(getpid())"
        defer { try? MemoryMappedFile.removeSharedMemory(systemName: name) }
        let first = try MemoryMappedFile.createSharedMemory(systemName: name, mode: .openOrCreate, capacity: 4096)
        let second = try MemoryMappedFile.createSharedMemory(systemName: name, mode: .openOrCreate, capacity: 8192)
        #expect(first.capacity == 4096)
        #expect(second.capacity == 8192)
        let third = try MemoryMappedFile.createSharedMemory(systemName: name, mode: .openOrCreate, capacity: 100)
        #expect(third.capacity == 8192)
    }

    @Test(
        "bad shared-memory names are invalidName",
        arguments: ["", "a/b", "nul\u{0}inside", String(repeating: "x", count: 256)])
    func badNames(name: String) {
        let error = mappedError { try MemoryMappedFile.createSharedMemory(systemName: name, capacity: 10) }
        #expect(error?.code == .invalidName)
    }

    @Test("a descriptor inherited by a child process maps the same memory")
    func inheritedDescriptor() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        let (end, _) = run(helper("descriptor-write", "3", "40", "2024"), inherit: map.fileDescriptor)
        #expect(end == .exited(0))
        #expect(try map.makeViewAccessor().read(UInt64.self, at: 40) == 2024)
    }

    @Test("zero capacity is invalid for anonymous and new shared memory")
    func zeroCapacity() {
        #expect(mappedError { try MemoryMappedFile.createAnonymous(capacity: 0) }?.code == .invalidCapacity)
        let name = "mapped-records-test-zero-\(getpid())"
        #expect(
            mappedError { try MemoryMappedFile.createSharedMemory(systemName: name, capacity: 0) }?.code
                == .invalidCapacity)
        #expect(mappedError { try MemoryMappedFile.openSharedMemory(systemName: name) }?.code == .notFound)
    }
}
