// Test-only fault injection, SQLite style: make the Nth call of a system call fail, once or
// from then on, and watch sync points. Compiled only with MAPPED_RECORDS_FAULT_INJECTION,
// which Package.swift defines for debug builds (the tests); release builds have none of it.

#if MAPPED_RECORDS_FAULT_INJECTION
import Glibc

/// Failures injected into this thread's system calls, for tests (docs/RELIABILITY.md).
///
/// Plans are per thread: tests running in parallel on other threads are not affected.
package enum FaultInjection {
    /// The calls that can be made to fail.
    package enum Call: Int, CaseIterable, Sendable, CustomStringConvertible {
        case posixFallocate, ftruncate, msync, fsync, mmap, lmdbCommit

        /// The call's name.
        package var description: String {
            ["posix_fallocate", "ftruncate", "msync", "fsync", "mmap", "mdb_txn_commit"][rawValue]
        }
    }

    /// What to fail: the `failAt`-th call (counting from 1) of `call`, and every later one if
    /// `persistent`; with `errno`.
    package struct Plan: Sendable {
        /// The system call to fail.
        package var call: Call
        /// Which call fails first, counting from 1.
        package var failAt: Int
        /// Whether every later call fails too.
        package var persistent: Bool
        /// The errno the failures report.
        package var errno: Int32

        /// Creates a plan.
        package init(call: Call, failAt: Int, persistent: Bool, errno: Int32 = EIO) {
            self.call = call
            self.failAt = failAt
            self.persistent = persistent
            self.errno = errno
        }
    }

    /// One thread's state.
    final class State {
        var counts = [Int](repeating: 0, count: Call.allCases.count)
        var plan: Plan?
        var failures = 0
        var syncObserver: ((_ path: String, _ range: Range<Int>?) -> Void)?
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        unsafe pthread_key_create(&key) { pointer in
            if let pointer = unsafe pointer { unsafe Unmanaged<State>.fromOpaque(pointer).release() }
        }
        return key
    }()

    private static var state: State {
        if let pointer = unsafe pthread_getspecific(key) {
            return unsafe Unmanaged<State>.fromOpaque(pointer).takeUnretainedValue()
        }
        let state = State()
        unsafe pthread_setspecific(key, Unmanaged.passRetained(state).toOpaque())
        return state
    }

    /// Runs `body` with `plan` armed on this thread (or none, to count calls); returns how many
    /// times each call was made and how many failures were injected.
    package static func run<Result>(
        _ plan: Plan?, _ body: () throws -> Result
    ) rethrows -> (result: Result, counts: [Call: Int], failures: Int) {
        let state = self.state
        state.counts = [Int](repeating: 0, count: Call.allCases.count)
        state.plan = plan
        state.failures = 0
        defer { state.plan = nil }
        let result = try body()
        var counts: [Call: Int] = [:]
        for call in Call.allCases { counts[call] = state.counts[call.rawValue] }
        return (result, counts, state.failures)
    }

    /// Calls `observer` at every sync point of this thread (msync of a file's range, fsync of a
    /// file: `range` nil), before the call. Pass nil to stop.
    package static func observeSyncs(_ observer: ((_ path: String, _ range: Range<Int>?) -> Void)?) {
        state.syncObserver = observer
    }

    /// Counts a call; the errno to fail it with, or nil to let it run. The registry's LMDB
    /// commit calls it too.
    package static func injectedFailure(_ call: Call) -> Int32? {
        let state = self.state
        state.counts[call.rawValue] += 1
        guard let plan = state.plan, plan.call == call else { return nil }
        let count = state.counts[call.rawValue]
        guard count == plan.failAt || (plan.persistent && count > plan.failAt) else { return nil }
        state.failures += 1
        return plan.errno
    }

    /// Reports a sync point to this thread's observer.
    static func willSync(path: String?, range: Range<Int>?) {
        guard let path, let observer = state.syncObserver else { return }
        observer(path, range)
    }
}
#endif
