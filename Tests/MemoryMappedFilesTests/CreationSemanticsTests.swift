import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

/// Issue #17: creation semantics that .NET's own tests check.
@Suite("creation semantics as .NET has them")
struct CreationSemanticsTests {
    let directory = TemporaryDirectory()

    @Test("copy-on-write views of .read and .readExecute maps work, and their writes stay private")
    func copyOnWriteOfReadOnlyMaps() throws {
        let path = directory.file("shared.data")
        writeFile(path, Array(repeating: 5, count: 4096))
        for access in [MemoryMappedFileAccess.read, .readExecute] {
            let map = try MemoryMappedFile.createFromFile(path: path, access: access)
            var view = try map.makeViewAccessor(access: .copyOnWrite)
            view.write(UInt8(9), at: 0)
            #expect(view.read(UInt8.self, at: 0) == 9)
            #expect(preadBytes(path, offset: 0, count: 1) == [5], "a private write reached the file (map .\(access))")
            try view.close()
            try map.close()
        }
        #expect(MemoryMappedFileAccess.read.allowsView(.copyOnWrite))
        #expect(!MemoryMappedFileAccess.read.allowsView(.readWrite))
    }

    @Test("write-only memory and unknown option bits are refused, as .NET refuses them")
    func refusals() {
        #expect(
            mappedError { try MemoryMappedFile.createAnonymous(capacity: 4096, access: .write) }?.code == .invalidAccess
        )
        let unknown = MemoryMappedFileOptions(rawValue: 1 << 5)
        let error = mappedError { try MemoryMappedFile.createAnonymous(capacity: 4096, options: unknown) }
        #expect(error?.code == .invalidAccess && error?.message == "unknown option bits 0x20")
        let name = "mapped-records-test-options-\(getpid())"
        #expect(
            mappedError { try MemoryMappedFile.createSharedMemory(systemName: name, capacity: 4096, options: unknown) }?
                .code == .invalidAccess)
        #expect(!fileExists("/dev/shm/" + name))
    }

    @Test(
        "adoptDescriptor: a capacity grows an empty file, a pipe is notRegularFile, write-only is refused, leaveOpen leaves it open"
    )
    func adoptDescriptor() throws {
        let path = directory.file("adopted.data")
        let raw = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        #expect(raw >= 0)
        let map = try MemoryMappedFile.adoptDescriptor(raw, capacity: 8192, leaveOpen: true)
        #expect(map.capacity == 8192 && fileStatus(path)?.st_size == 8192)
        try map.close()
        #expect(fcntl(raw, F_GETFD) >= 0, "the descriptor was closed although leaveOpen was true")
        let owned = try MemoryMappedFile.adoptDescriptor(raw)
        try owned.close()
        #expect(fcntl(raw, F_GETFD) == -1, "the map did not close the descriptor it owned")

        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        #expect(
            mappedError { try MemoryMappedFile.adoptDescriptor(pipeEnds[0], leaveOpen: true) }?.code == .notRegularFile)
        let other = open(path, O_RDWR | O_CLOEXEC)
        #expect(
            mappedError { try MemoryMappedFile.adoptDescriptor(other, access: .write, leaveOpen: true) }?.code
                == .invalidAccess)
        close(other)
        close(pipeEnds[0])
        close(pipeEnds[1])
    }
}
