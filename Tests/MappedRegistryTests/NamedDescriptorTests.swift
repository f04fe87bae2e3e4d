import Glibc
import MappedRegistry
import MemoryMappedFiles
import TestSupport
import Testing

/// A named map over a descriptor the caller opened: .NET's CreateFromFile(FileStream, mapName, …).
@Suite("Named maps over an open descriptor", .timeLimit(.minutes(3)))
struct NamedDescriptorTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }

    @Test("a descriptor's file is published by name; another process writes through the name")
    func publishDescriptor() throws {
        let registry = try Registry.open(directory: registryPath)
        let path = directory.file("data")
        writeFile(path, [UInt8](repeating: 0, count: 100), mode: 0o600)
        let descriptor = open(path, O_RDWR | O_CLOEXEC)
        let named = try MemoryMappedFile.adoptDescriptor(
            descriptor, capacity: 8192, name: "by-descriptor", registry: registry)
        #expect(fcntl(descriptor, F_GETFD) == -1)  // taken over and closed (leaveOpen: false)
        #expect(fileStatus(path)?.st_size == 8192)  // the capacity grew the file
        let (end, _) = run(helper("named-write", registryPath, "by-descriptor", "4096", "77"))
        #expect(end == .exited(0))
        #expect(try named.makeViewAccessor().read(UInt64.self, at: 4096) == 77)
        #expect(preadUInt64(path, offset: 4096) == 77)
        try named.close()

        let kept = open(path, O_RDWR | O_CLOEXEC)
        let again = try MemoryMappedFile.adoptDescriptor(kept, leaveOpen: true, name: "kept", registry: registry)
        #expect(fcntl(kept, F_GETFD) >= 0)  // leaveOpen: the caller's descriptor stays open
        close(kept)
        try again.close()
    }

    @Test("a memfd or a deleted file has no path to share: notShareable")
    func unshareable() throws {
        let registry = try Registry.open(directory: registryPath)
        let anonymous = try MemoryMappedFile.createAnonymous(capacity: 4096)  // a memfd
        let memory = dup(anonymous.fileDescriptor)
        #expect(
            registryError { try MemoryMappedFile.adoptDescriptor(memory, name: "memfd", registry: registry) }?.code
                == .notShareable)
        let path = directory.file("gone")
        writeFile(path, [1, 2, 3])
        let deleted = open(path, O_RDWR | O_CLOEXEC)
        unlink(path)
        let error = registryError { try MemoryMappedFile.adoptDescriptor(deleted, name: "gone", registry: registry) }
        #expect(error?.code == .notShareable)
        #expect(error?.message.contains("another process could not open it") == true)
        #expect(
            registryError { try MemoryMappedFile.openExisting(name: "gone", registry: registry) }?.code == .notFound)
    }
}
