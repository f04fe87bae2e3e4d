import Glibc
import MemoryMappedFiles
import Synchronization
import TestSupport
import Testing

/// A count that two tasks share.
final class Counter: Sendable {
    private let state = Mutex((count: 0, finished: false))
    var value: Int { state.withLock { $0.count } }
    var isFinished: Bool { state.withLock { $0.finished } }
    func add(_ amount: Int) { state.withLock { $0.count += amount } }
    func finish() { state.withLock { $0.finished = true } }
}

@Suite("Streams: copy(to:) and async I/O; maps handed to child processes", .timeLimit(.minutes(3)))
struct StreamCopyAndInheritanceTests {
    let directory = TemporaryDirectory()

    /// An anonymous map of `count` bytes holding 0, 1, 2, … (mod 251).
    static func patterned(_ count: Int) throws -> MemoryMappedFile {
        let map = try MemoryMappedFile.createAnonymous(capacity: count)
        let view = try map.makeViewAccessor()
        view.withUnsafeMutableBytes { bytes in
            for index in 0..<count { bytes[index] = UInt8(index % 251) }
        }
        return map
    }

    @Test("copy(to: descriptor) writes from the cursor to the end and advances the cursor")
    func copyToDescriptor() throws {
        let map = try Self.patterned(3 << 20)
        var stream = try map.makeViewStream()
        stream.position = 100
        let path = directory.file("copy")
        let file = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
        #expect(try stream.copy(to: file) == (3 << 20) - 100)
        close(file)
        #expect(stream.position == 3 << 20)
        let copied = readWholeFile(path)
        #expect(copied.count == (3 << 20) - 100)
        #expect(copied.enumerated().allSatisfy { $0.element == UInt8(($0.offset + 100) % 251) })
        #expect(try stream.copy(to: file) == 0)  // at the end: nothing to copy, the descriptor is not touched
    }

    @Test("copy(to: stream) copies everything or, without room, nothing")
    func copyToStream() throws {
        let source = try Self.patterned(1000)
        let roomy = try MemoryMappedFile.createAnonymous(capacity: 2000)
        let cramped = try MemoryMappedFile.createAnonymous(capacity: 500)
        var from = try source.makeViewStream()
        var into = try roomy.makeViewStream()
        into.position = 10
        #expect(try from.copy(to: &into) == 1000)
        #expect(from.position == 1000 && into.position == 1010)
        #expect(try roomy.makeViewAccessor().read(UInt8.self, at: 10 + 250) == 250 % 251)
        from.position = 0
        var small = try cramped.makeViewStream()
        let error = mappedError { try from.copy(to: &small) }
        #expect(error?.code == .endOfStream)
        #expect(from.position == 0 && small.position == 0)
        #expect(try cramped.makeViewAccessor().read(UInt64.self, at: 0) == 0)
    }

    @Test("async read, write and copy; cancelling a copy stops it between chunks")
    func asyncStreams() async throws {
        let map = try Self.patterned(64 << 20)
        var stream = try map.makeViewStream()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        defer { buffer.deallocate() }
        let read = try await stream.read(into: buffer)
        #expect(read == 8 && Array(buffer) == [0, 1, 2, 3, 4, 5, 6, 7])
        try await stream.write(bytes: [UInt8]([9, 9]).span.bytes)
        #expect(stream.position == 10)

        // A reader that drains the pipe slowly: 64 KiB a millisecond, so 64 MiB would take a second.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        let received = Counter()
        // The drain runs on a thread of its own: a blocking loop on the cooperative pool would
        // starve the copy's task while the rest of the suite keeps the other threads busy.
        runOnNewThread {
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
                if count <= 0 { break }
                received.add(count)
                usleep(1000)
            }
            received.finish()
        }
        let copying = Task { () async -> (Int, MappedFileError.Code?) in
            let source = try! MemoryMappedFile.createAnonymous(capacity: 64 << 20)
            var stream = try! source.makeViewStream()
            do throws(MappedFileError) {
                _ = try await stream.copy(to: writeEnd)
                return (stream.position, nil)
            } catch {
                return (stream.position, error.code)
            }
        }
        // Cancel once the copy is under way. Under the full suite on 2 cores the copying task can
        // wait 90 s for a thread of the cooperative pool (seen in a clean-clone run), so the wait
        // is bounded only by the suite's time limit.
        while received.value < 1 << 20 { try await Task.sleep(for: .milliseconds(5)) }
        let cancelled = ContinuousClock.now
        copying.cancel()
        let (position, code) = await copying.value
        #expect(ContinuousClock.now - cancelled < .milliseconds(500))
        #expect(code == .cancelled)
        #expect(position >= 1 << 20 && position < 64 << 20)
        close(writeEnd)
        while !received.isFinished { try await Task.sleep(for: .milliseconds(5)) }
        #expect(received.value == position)  // the cursor stands after exactly what was written
        close(readEnd)
    }

    @Test("spawnChild hands the map to a child, which adopts it with the parent's access")
    func spawnChildAdopts() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        var view = try map.makeViewAccessor()
        view.write(UInt64(42), at: 8)
        let inheritedByDefault = map.isInheritable
        #expect(!inheritedByDefault)  // close-on-exec unless asked
        let pid = try map.spawnChild(executable: helperPath, arguments: ["adopt-inherited", "8", "42", "43"])
        var status: Int32 = 0
        #expect(waitpid(pid, &status, 0) == pid)
        #expect(status == 0, "the child exited with status \(status >> 8)")
        #expect(view.read(UInt64.self, at: 8) == 43)
        let inheritedAfterSpawn = map.isInheritable
        #expect(!inheritedAfterSpawn)  // spawnChild passed a copy; the map's own descriptor stays private
        // A child without a handed-over map finds none.
        #expect(run(helper("adopt-inherited-none")).0 == .exited(0))
    }

    @Test("setInheritable lets any child process inherit the descriptor; by default none does")
    func inheritableDescriptor() throws {
        let map = try MemoryMappedFile.createAnonymous(capacity: 4096)
        let number = "\(map.fileDescriptor)"
        #expect(run(helper("descriptor-write", number, "0", "7")).0 == .exited(3))  // not inherited
        try map.setInheritable(true)
        let inheritable = map.isInheritable
        #expect(inheritable)
        #expect(run(helper("descriptor-write", number, "0", "7")).0 == .exited(0))
        #expect(try map.makeViewAccessor().read(UInt64.self, at: 0) == 7)
        try map.setInheritable(false)
        let inheritableAgain = map.isInheritable
        #expect(!inheritableAgain)
    }
}
