import Glibc
import MemoryMappedFiles

/// A table's record count, each time another process changes it; from ``RecordTable/updates()``.
///
/// It is `Sendable`: it holds only a duplicate of the table's descriptor. Each iterator maps the
/// file's first page for itself and sleeps on the live word from a thread of its own, so a task
/// that follows a table never blocks a thread of the cooperative pool. Cancelling the task ends
/// the iteration (`next()` returns nil) within microseconds. A sleeping iterator wakes when the
/// count grows; a count that only fell (`removeLast`) is seen at its next wake-up, within a second.
public struct TableUpdates: AsyncSequence, Sendable {
    /// A count of committed, readable records.
    public typealias Element = Int
    /// Errors end the sequence: `truncated`, `replaced`, or a system error.
    public typealias Failure = RecordTableError

    fileprivate let descriptor: SharedDescriptor
    private let path: String
    private let bootIdentifier: [UInt8]
    private let startCount: Int
    private let dataOffset: Int
    private let stride: Int

    /// Owns the duplicate descriptor that iterators map.
    fileprivate final class SharedDescriptor: Sendable {
        let rawValue: Int32
        init(_ rawValue: Int32) { self.rawValue = rawValue }
        deinit { _ = system_close(rawValue) }
    }

    init(storage: TableStorage) throws(RecordTableError) {
        descriptor = SharedDescriptor(try storage.duplicateDescriptor())
        path = storage.path
        bootIdentifier = storage.bootIdentifier
        startCount = unsafe storage.count
        dataOffset = storage.header.dataOffset
        stride = storage.header.schema.stride
    }

    /// An iterator that yields counts that differ from the table's count when `updates()` was called.
    public func makeAsyncIterator() -> Iterator {
        Iterator(
            watcher: Watcher(
                descriptor: descriptor, path: path, bootIdentifier: bootIdentifier, dataOffset: dataOffset,
                stride: stride),
            last: startCount)
    }

    /// Yields each new count.
    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let watcher: Watcher
        fileprivate var last: Int

        /// The next count that differs from the last one, or nil once the task is cancelled.
        ///
        /// The table's first page is mapped for the time of this call only, so an iterator
        /// that is dropped (a loop left with `break`), or never called again, holds no mapping.
        public mutating func next(
            isolation actor: isolated (any Actor)? = #isolation
        ) async throws(RecordTableError) -> Int? {
            var page = try watcher.mapFirstPage()
            var backoff = Duration.microseconds(25)
            while !Task.isCancelled {
                let (seen, count) = try page.read()
                if count != last {
                    last = count
                    return count
                }
                let sleep = page.prepareSleep(seen: seen, target: last.saturatingSuccessor, backoff: &backoff)
                _ = await SharedWord.waitOnOwnThread(
                    address: sleep.address, whileEqualTo: sleep.expected, timeout: sleep.limit)
            }
            return nil
        }

        /// See ``next(isolation:)``.
        public mutating func next() async throws(RecordTableError) -> Int? {
            try await next(isolation: nil)
        }
    }

    /// What an iterator keeps between calls: the shared descriptor, and how to read the count.
    fileprivate final class Watcher: @unchecked Sendable {
        // SAFETY (Sendable): one iterator uses it, from one task at a time; the listener is
        // the only mutable part.
        private let descriptor: SharedDescriptor
        private let path: String
        private let bootIdentifier: [UInt8]
        private let listener: DoorbellListener
        private let dataOffset: Int
        private let stride: Int

        init(descriptor: SharedDescriptor, path: String, bootIdentifier: [UInt8], dataOffset: Int, stride: Int) {
            self.descriptor = descriptor
            self.path = path
            self.bootIdentifier = bootIdentifier
            self.dataOffset = dataOffset
            self.stride = stride
            listener = DoorbellListener(forTableOn: descriptor.rawValue)
        }

        /// The table's first page, mapped read-only through the shared descriptor (left open).
        func mapFirstPage() throws(RecordTableError) -> FirstPage {
            do throws(MappedFileError) {
                let map = try MemoryMappedFile.adoptDescriptor(descriptor.rawValue, access: .read, leaveOpen: true)
                let view = try map.makeViewAccessor(offset: 0, length: TableFormat.pageSize, access: .read)
                return FirstPage(
                    map: map, view: view, path: path, bootIdentifier: bootIdentifier, listener: listener,
                    dataOffset: dataOffset, stride: stride)
            } catch {
                throw RecordTableError(error, operation: "updates", path: path)
            }
        }
    }

    /// The first page of the table, mapped for one `next()` call.
    fileprivate struct FirstPage: ~Copyable {
        var map: MemoryMappedFile
        let view: MappedViewAccessor
        let path: String
        let bootIdentifier: [UInt8]
        let listener: DoorbellListener
        /// Where records start, and their stride: the capacity from the file's size.
        let dataOffset: Int
        let stride: Int

        /// The live word and the count readers should use (docs/FORMAT.md, "Which count to use").
        /// One fstat first, so that a truncated file is an error here and never a SIGBUS.
        mutating func read() throws(RecordTableError) -> (seen: UInt64, count: Int) {
            // The live word and the slots first, the file's size after them (docs/FORMAT.md).
            let seen = view.atomicLoad(UInt64.self, at: TableFormat.liveCountOffset)
            let inputs = RecordWaiting.countInputs(view, bootIdentifier: bootIdentifier)
            let file: (capacity: Int, isLinked: Bool)
            do {
                file = try map.refreshCapacityAndLinks()
            } catch {
                throw RecordTableError(error, operation: "updates", path: path)
            }
            guard file.isLinked else {
                throw RecordTableError(
                    .replaced, operation: "updates", path: path,
                    message: "another file took this table's path; open it again to follow the new one")
            }
            // The count rule over what was read before the size: a live count past the file
            // falls back to the commit point, as refresh() and open do.
            let capacity = Swift.max(0, file.capacity - dataOffset) / stride
            switch TableFormat.chooseCount(
                liveWord: inputs.liveWord, commitPoint: inputs.commitPoint, capacity: capacity)
            {
            case .count(let count): return (seen, count)
            case .noCommitPoint:
                throw RecordTableError(
                    .corrupt, operation: "updates", path: path, message: "neither commit slot is valid")
            case .pastTheEnd(let count):
                throw RecordTableError(
                    .corrupt, operation: "updates", path: path,
                    message: "the count \(count) points past the end of the file (room for \(capacity) records)")
            }
        }

        /// Registers with the doorbell; returns the word's address, its expected value and the longest sleep.
        func prepareSleep(
            seen: UInt64, target: Int, backoff: inout Duration
        ) -> (address: UInt, expected: UInt32, limit: Duration) {
            let sleep = RecordWaiting.prepareSleep(
                view, seen: seen, target: target, listener: listener, bootIdentifier: bootIdentifier, remaining: .max,
                backoff: &backoff)
            // SAFETY: the view stays mapped until next() returns, after its last sleep.
            let address = unsafe view.withUnsafeMutableBytes {
                unsafe UInt(bitPattern: $0.baseAddress! + TableFormat.liveCountOffset)
            }
            return (address, sleep.expected, sleep.limit)
        }
    }
}
