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
    }

    /// An iterator that yields counts that differ from the table's count when `updates()` was called.
    public func makeAsyncIterator() -> Iterator {
        Iterator(watcher: Watcher(descriptor: descriptor, path: path, bootIdentifier: bootIdentifier), last: startCount)
    }

    /// Yields each new count.
    public struct Iterator: AsyncIteratorProtocol {
        fileprivate let watcher: Watcher
        fileprivate var last: Int

        /// The next count that differs from the last one, or nil once the task is cancelled.
        public mutating func next(
            isolation actor: isolated (any Actor)? = #isolation
        ) async throws(RecordTableError) -> Int? {
            var backoff = Duration.microseconds(25)
            while !Task.isCancelled {
                let (seen, count) = try watcher.read()
                if count != last {
                    last = count
                    return count
                }
                let sleep = watcher.prepareSleep(seen: seen, target: last + 1, backoff: &backoff)
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

    /// An iterator's own map of the table's first page.
    fileprivate final class Watcher: @unchecked Sendable {
        // SAFETY (Sendable): one iterator uses it, from one task at a time.
        private var map: MemoryMappedFile?
        private var view: MappedViewAccessor?
        private var failure: RecordTableError?
        private let path: String
        private let bootIdentifier: [UInt8]
        private let listener: DoorbellListener

        init(descriptor: SharedDescriptor, path: String, bootIdentifier: [UInt8]) {
            self.path = path
            self.bootIdentifier = bootIdentifier
            listener = DoorbellListener(forTableOn: descriptor.rawValue)
            let duplicate = system_dup_cloexec(descriptor.rawValue)
            do throws(MappedFileError) {
                guard duplicate >= 0 else {
                    throw MappedFileError(
                        .tooManyOpenFiles, operation: "updates", path: path, systemCall: "fcntl(F_DUPFD_CLOEXEC)",
                        errno: lastErrno, message: "could not duplicate the table's descriptor")
                }
                let map = try MemoryMappedFile.adoptDescriptor(duplicate, access: .read)
                view = try map.makeViewAccessor(offset: 0, length: TableFormat.pageSize, access: .read)
                self.map = Optional(map)
            } catch {
                failure = RecordTableError(error, operation: "updates", path: path)
            }
        }

        /// The live word and the count readers should use (docs/FORMAT.md, "Which count to use").
        /// One fstat first, so that a truncated file is an error here and never a SIGBUS.
        func read() throws(RecordTableError) -> (seen: UInt64, count: Int) {
            if let failure { throw failure }
            let file: (capacity: Int, isLinked: Bool)
            do {
                file = try map!.refreshCapacityAndLinks()
            } catch {
                throw RecordTableError(error, operation: "updates", path: path)
            }
            guard file.isLinked else {
                throw RecordTableError(
                    .replaced, operation: "updates", path: path,
                    message: "another file took this table's path; open it again to follow the new one")
            }
            let seen = view!.atomicLoad(UInt64.self, at: TableFormat.liveCountOffset)
            guard let published = RecordWaiting.publishedCount(view!, bootIdentifier: bootIdentifier) else {
                throw RecordTableError(
                    .corrupt, operation: "updates", path: path, message: "neither commit slot is valid")
            }
            return (seen, published.count)
        }

        /// Registers with the doorbell; returns the word's address, its expected value and the longest sleep.
        func prepareSleep(
            seen: UInt64, target: Int, backoff: inout Duration
        ) -> (address: UInt, expected: UInt32, limit: Duration) {
            let sleep = RecordWaiting.prepareSleep(
                view!, seen: seen, target: target, listener: listener, bootIdentifier: bootIdentifier, remaining: .max,
                backoff: &backoff)
            // SAFETY: the view stays mapped as long as this watcher, which the iterator holds while it sleeps.
            let address = unsafe view!.withUnsafeMutableBytes {
                unsafe UInt(bitPattern: $0.baseAddress! + TableFormat.liveCountOffset)
            }
            return (address, sleep.expected, sleep.limit)
        }
    }
}
