import Glibc
import TestSupport
import Testing

@testable import MemoryMappedFiles

// Issue #28: the last gaps that .NET's own tests found, each checked as .NET's test does.

@Suite("The last .NET conformance gaps", .timeLimit(.minutes(3)))
struct DotNetConformanceTests {
    let directory = TemporaryDirectory()

    func file(_ name: String, bytes: Int = 8192) -> String {
        let path = directory.file(name)
        writeFile(path, Array(repeating: 7, count: bytes))
        return path
    }

    @Test("adoptDescriptor refuses an access its descriptor was not opened for, and leaves it open")
    func adoptedAccessMatchesTheOpenMode() throws {
        let path = file("modes.data")
        let readOnly = open(path, O_RDONLY | O_CLOEXEC)
        let writeOnly = open(path, O_WRONLY | O_CLOEXEC)
        defer {
            close(readOnly)
            close(writeOnly)
        }
        for access in [MemoryMappedFileAccess.readWrite, .readWriteExecute] {
            let error = mappedError { try MemoryMappedFile.adoptDescriptor(readOnly, access: access) }
            #expect(error?.code == .permissionDenied && error?.message.contains("read-only") == true, "\(access)")
        }
        for access in [MemoryMappedFileAccess.read, .copyOnWrite, .readExecute, .readWrite] {
            let error = mappedError { try MemoryMappedFile.adoptDescriptor(writeOnly, access: access) }
            #expect(error?.code == .permissionDenied && error?.message.contains("write-only") == true, "\(access)")
        }
        // Refused calls leave the caller's descriptors open, leaveOpen or not.
        #expect(fcntl(readOnly, F_GETFD) >= 0 && fcntl(writeOnly, F_GETFD) >= 0)
        // What the descriptor allows still works.
        for access in [MemoryMappedFileAccess.read, .copyOnWrite, .readExecute] {
            let map = try MemoryMappedFile.adoptDescriptor(readOnly, access: access, leaveOpen: true)
            #expect(try map.makeViewAccessor().read(UInt8.self, at: 0) == 7)
            try map.close()
        }
    }

    @Test("adoptDescriptor refuses a capacity below the file's size, as createFromFile does")
    func adoptedCapacityBelowTheSize() throws {
        let path = file("sized.data", bytes: 8192)
        let raw = open(path, O_RDWR | O_CLOEXEC)
        defer { close(raw) }
        let adopted = mappedError { try MemoryMappedFile.adoptDescriptor(raw, capacity: 4096, leaveOpen: true) }
        let byPath = mappedError { try MemoryMappedFile.createFromFile(path: path, capacity: 4096) }
        #expect(adopted?.code == .invalidCapacity && byPath?.code == .invalidCapacity)
        #expect(try MemoryMappedFile.adoptDescriptor(raw, capacity: 8192, leaveOpen: true).capacity == 8192)
    }

    @Test("an inherited-map variable naming descriptor 0, 1 or 2 is refused and never closes it")
    func inheritedStandardDescriptors() {
        for number in 0...2 {
            let (end, output) = run(
                helper("adopt-inherited-stdio"),
                environment: ["\(MemoryMappedFile.inheritedMapVariable)=\(number) read"])
            #expect(
                end == .exited(0) && output == "refused invalidAccess; stdout still open", "fd \(number): \(output)")
        }
    }

    @Test("copy(to: stream) out of a write-only stream traps, as copy(to: descriptor) does")
    func copyFromAWriteOnlyStreamTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
            var source = try map.makeViewStream(access: .write)
            var destination = try map.makeViewStream()
            try source.copy(to: &destination)
        }
        expectTrapMessage(result, "cannot copy from a stream with .write access")
    }

    @Test("async read, write and copy of a task cancelled before the call throw cancelled and do nothing")
    func preCancelledAsyncCalls() async throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            var stream = try map.makeViewStream()
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16, alignment: 8)
            defer { buffer.deallocate() }
            let read = await Result { () async throws(MappedFileError) in try await stream.read(into: buffer) }
            let bytes: [UInt8] = [1, 2, 3]
            let written = await Result { () async throws(MappedFileError) in
                try await stream.write(bytes: bytes.span.bytes)
            }
            let pipeEnds = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
            defer { pipeEnds.deallocate() }
            _ = pipe(pipeEnds)
            let copied = await Result { () async throws(MappedFileError) in try await stream.copy(to: pipeEnds[1]) }
            close(pipeEnds[0])
            close(pipeEnds[1])
            return ([read.error?.code, written.error?.code, copied.error?.code], stream.position)
        }
        let (codes, position) = try await task.value
        #expect(codes == [.cancelled, .cancelled, .cancelled])
        #expect(position == 0)
        #expect(try map.makeViewAccessor().read(UInt8.self, at: 0) == 0, "a cancelled write wrote")
    }

    @Test("MappedViewStream has pointerOffset, as its accessor does")
    func streamPointerOffset() throws {
        let path = file("offsets.data", bytes: 3 * 4096)
        let map = try MemoryMappedFile.createFromFile(path: path)
        for offset in [0, 1, 4095, 4096, 5000] {
            let stream = try map.makeViewStream(offset: offset, length: 100)
            let accessor = try map.makeViewAccessor(offset: offset, length: 100)
            #expect(stream.pointerOffset == offset % 4096 && stream.pointerOffset == accessor.pointerOffset)
        }
    }

    @Test("a file another process holds with FileShare.None (flock LOCK_EX) is not mapped; a map blocks that lock")
    func exclusiveSharingIsHonoured() throws {
        let path = file("exclusive.data")
        // `flock` holds LOCK_EX while its command runs, as .NET's FileShare.None does.
        let holder = ChildProcess(["/usr/bin/flock", "-x", path, "/bin/sh", "-c", "echo held; read line"])
        #expect(holder.readLine() == "held")
        let error = mappedError { try MemoryMappedFile.createFromFile(path: path, access: .read) }
        #expect(error?.code == .permissionDenied && error?.message.contains("FileShare.None") == true)
        holder.writeLine("")
        #expect(holder.wait() == .exited(0))
        let map = try MemoryMappedFile.createFromFile(path: path, access: .read)
        let (end, _) = run(["/usr/bin/flock", "-x", "-n", path, "/bin/true"])
        #expect(end == .exited(1), "an exclusive lock was granted beside an open map")
        try map.close()
        #expect(run(["/usr/bin/flock", "-x", "-n", path, "/bin/true"]).0 == .exited(0))
    }
}

extension Result {
    /// The result of an async call with a typed error.
    init(_ body: () async throws(Failure) -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }

    var error: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
