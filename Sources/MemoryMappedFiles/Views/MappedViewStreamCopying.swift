import Glibc
import Synchronization

// Copying out of a stream, and the asynchronous forms of its reads and writes: .NET's
// `Stream.CopyTo`, `CopyToAsync`, `ReadAsync` and `WriteAsync` on a `MemoryMappedViewStream`.

extension MappedViewStream {
    /// Copies the bytes from the cursor to the end into `descriptor` (a file, pipe or socket)
    /// and advances the cursor past them; .NET's `CopyTo(Stream)`. Returns the bytes copied.
    /// - Throws: the `write` error (the cursor then stands after the bytes that were written).
    @discardableResult
    public mutating func copy(to descriptor: Int32) throws(MappedFileError) -> Int {
        precondition(canRead, "MappedViewStream: cannot copy from a stream with .\(accessor.access) access")
        let start = position, count = remaining
        let written = unsafe accessor.withUnsafeMutableBytes { bytes in
            // SAFETY: start + count <= capacity; the view stays mapped for the call.
            unsafe StreamCopy.writeAll(
                descriptor, from: UInt(bitPattern: bytes.baseAddress! + start), count: count, cancelled: nil)
        }
        position = start + written.count
        if let code = written.errno { throw StreamCopy.failure(code, path: accessor.state.path) }
        return written.count
    }

    /// Copies the bytes from the cursor to the end into `destination` at its cursor, advancing
    /// both; .NET's `CopyTo(Stream)`. Returns the bytes copied.
    /// - Throws: `endOfStream`, copying nothing, if `destination` has less room than this has bytes.
    @discardableResult
    public mutating func copy(to destination: inout MappedViewStream) throws(MappedFileError) -> Int {
        precondition(canRead, "MappedViewStream: cannot copy from a stream with .\(accessor.access) access")
        let count = remaining
        guard count <= destination.remaining else { throw destination.endOfStream(count) }
        unsafe try accessor.withUnsafeMutableBytes { (source) throws(MappedFileError) in
            // SAFETY: position + count <= capacity.
            unsafe try destination.write(
                bytes: RawSpan(_unsafeBytes: UnsafeRawBufferPointer(rebasing: source[position..<position + count])))
        }
        position += count
        return count
    }

    /// ``copy(to:)-(Int32)`` for Swift concurrency; .NET's `CopyToAsync`. The writes run on a
    /// thread of their own (a pipe or socket may block for as long as its reader waits), never
    /// on one of the cooperative pool's, in chunks of 64 KiB. Cancelling the task stops it after
    /// the chunk in progress: it throws `cancelled`, and the cursor stands after the bytes written.
    @discardableResult
    public mutating func copy(to descriptor: Int32) async throws(MappedFileError) -> Int {
        precondition(canRead, "MappedViewStream: cannot copy from a stream with .\(accessor.access) access")
        try checkNotCancelled("copy(to:)")
        let start = position, count = remaining
        // SAFETY: the stream is borrowed (inout) for the whole call, so the bytes stay mapped
        // until the thread that writes them has finished (the continuation resumes after it).
        let address = unsafe accessor.withUnsafeMutableBytes { unsafe UInt(bitPattern: $0.baseAddress! + start) }
        let flag = StreamCopy.CancellationFlag()
        let written = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<(count: Int, errno: Int32?), Never>) in
                runOnNewThread {
                    continuation.resume(
                        returning: StreamCopy.writeAll(descriptor, from: address, count: count, cancelled: flag))
                }
            }
        } onCancel: {
            flag.cancel()
        }
        position = start + written.count
        if let code = written.errno { throw StreamCopy.failure(code, path: accessor.state.path) }
        if written.count < count && flag.isCancelled {
            throw MappedFileError(
                .cancelled, operation: "copy(to:)", path: accessor.state.path,
                message: "the task was cancelled after \(written.count) of \(count) bytes")
        }
        return written.count
    }

    /// ``read(into:)`` for Swift concurrency; .NET's `ReadAsync`. Like .NET's, it completes at
    /// once: the bytes are already in memory (only a page fault of a file view can wait for the disk).
    /// - Throws: `cancelled`, reading nothing, if the task was cancelled before the call (.NET
    ///   throws `OperationCanceledException` for a token cancelled before the call).
    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) async throws(MappedFileError) -> Int {
        try checkNotCancelled("read(into:)")
        let readNow: (inout MappedViewStream) -> Int = { unsafe $0.read(into: buffer) }  // the synchronous one
        return readNow(&self)
    }

    /// ``write(bytes:)`` for Swift concurrency; .NET's `WriteAsync`. It completes at once, as .NET's does.
    /// - Throws: `cancelled`, writing nothing, if the task was cancelled before the call; and
    ///   what the synchronous write throws.
    public mutating func write(bytes: RawSpan) async throws(MappedFileError) {
        try checkNotCancelled("write(bytes:)")
        let writeNow: (inout MappedViewStream, RawSpan) throws(MappedFileError) -> Void = { try $0.write(bytes: $1) }
        try writeNow(&self, bytes)
    }

    /// Throws `cancelled` if the current task was cancelled: an async call checks on entry.
    private func checkNotCancelled(_ operation: String) throws(MappedFileError) {
        guard Task.isCancelled else { return }
        throw MappedFileError(
            .cancelled, operation: operation, path: accessor.state.path,
            message: "the task was cancelled before the call; nothing was done")
    }
}

/// The write loop behind the copies.
enum StreamCopy {
    /// Set by a task's cancellation handler; read by the copying thread between chunks.
    final class CancellationFlag: Sendable {
        private let state = Atomic<Bool>(false)
        func cancel() { state.store(true, ordering: .releasing) }
        var isCancelled: Bool { state.load(ordering: .acquiring) }
    }

    static let chunk = 1 << 20

    /// Writes `count` bytes from `address` to `descriptor`, retrying after EINTR and short
    /// writes; stops early at an error or a cancellation. Returns the bytes written and the errno.
    /// With a cancellation flag it waits for the descriptor to take data in 10 ms slices, checking
    /// the flag between them, and writes at most 64 KiB at a time; a write already started into a
    /// pipe that nobody drains still waits for its reader.
    static func writeAll(
        _ descriptor: Int32, from address: UInt, count: Int, cancelled: CancellationFlag?
    ) -> (count: Int, errno: Int32?) {
        // SAFETY: the caller keeps [address, address + count) mapped for the call.
        let base = unsafe UnsafeRawPointer(bitPattern: address)
        let step = cancelled == nil ? chunk : 64 << 10
        var done = 0
        while done < count {
            if let cancelled {
                while system_poll_writable(descriptor, 10) == 0 {
                    if cancelled.isCancelled { return (done, nil) }
                }
                if cancelled.isCancelled { return (done, nil) }
            }
            let result = unsafe system_write(descriptor, base! + done, min(step, count - done))
            if result < 0 {
                if lastErrno == EINTR { continue }
                return (done, lastErrno)
            }
            done += result
        }
        return (done, nil)
    }

    static func failure(_ code: Int32, path: String?) -> MappedFileError {
        // A descriptor that is not open (or not writable) is the caller's mistake, as a bad index is.
        precondition(code != EBADF, "MappedViewStream.copy(to:): the descriptor is not open for writing")
        return MappedFileError.system("write", errno: code, operation: "copy(to:)", path: path)
    }
}
