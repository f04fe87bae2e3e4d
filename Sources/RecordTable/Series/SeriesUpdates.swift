import MemoryMappedFiles
import Synchronization

/// The positions just past the newest records of a series, each time more arrive:
/// `for try await end in series.updates(from: position)`. Made by
/// ``TableSeries/updates(from:)``.
///
/// It follows the series as ``TableSeries/waitForRecords(beyond:timeout:strategy:)`` does,
/// across sealed files, on threads of its own, never on one of the cooperative pool's; it looks
/// for cancellation every 100 ms. It yields positions only: read the records with
/// ``TableSeries/read(from:maxCount:)`` on the series' own task.
public struct SeriesUpdates: AsyncSequence, Sendable {
    /// A position just past the newest records.
    public typealias Element = SeriesPosition
    /// What following can fail with: `fellBehind`, or an error of a file.
    public typealias Failure = RecordTableError

    let start: SeriesPosition
    let follower: Follower

    /// An iterator that follows the series from the start position.
    public func makeAsyncIterator() -> Iterator { Iterator(follower: follower, last: start) }

    /// Follows the series; each `next()` returns when records arrive past the last position.
    public struct Iterator: AsyncIteratorProtocol {
        let follower: Follower
        var last: SeriesPosition

        /// The position past the newest records, once there are records past the last one
        /// returned; nil when the task is cancelled.
        public mutating func next(
            isolation actor: isolated (any Actor)? = #isolation
        ) async throws(RecordTableError) -> SeriesPosition? {
            while !Task.isCancelled {
                let end = try await follower.wait(beyond: last, timeout: .milliseconds(100)).get()
                let moved = end != last
                last = end
                // A move to the next file's start is no new record.
                if moved && end.index > 0 { return end }
            }
            return nil
        }

        /// See ``next(isolation:)``.
        public mutating func next() async throws(RecordTableError) -> SeriesPosition? {
            try await next(isolation: nil)
        }
    }

    /// The sequence's reader of the series: its iterators wait in turn, each wait on a thread
    /// of its own.
    final class Follower: Sendable {
        // The series handle is not Sendable; the mutex lets one thread at a time use it.
        private let series: Mutex<any SeriesWaiting>

        init(_ series: sending any SeriesWaiting) {
            self.series = Mutex(series)
        }

        func wait(beyond position: SeriesPosition, timeout: Duration) async -> Result<SeriesPosition, RecordTableError>
        {
            await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<SeriesPosition, RecordTableError>, Never>) in
                runOnNewThread {
                    let result = self.series.withLock { series in
                        Result { () throws(RecordTableError) in
                            try series.waitForRecords(beyond: position, timeout: timeout, strategy: .block)
                        }
                    }
                    continuation.resume(returning: result)
                }
            }
        }
    }
}

/// What a follower of a series does, without its record type.
protocol SeriesWaiting: AnyObject {
    func waitForRecords(
        beyond position: SeriesPosition, timeout: Duration, strategy: WaitStrategy
    ) throws(RecordTableError) -> SeriesPosition
}
