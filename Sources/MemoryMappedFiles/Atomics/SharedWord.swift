import CMappedShims
import Glibc
import Synchronization

// Waiting on a 32-bit word of shared memory, across processes: a futex (futex(2)). The kernel
// keys a shared futex on the page (the file and offset), so every process that maps the same
// bytes waits on the same word, whatever its access: a read-only view can wait and wake.

extension MappedViewAccessor {
    /// Loads the `UInt32` at `offset` atomically, with acquire ordering. Unlike the typed reads,
    /// atomics may run on several threads at once.
    /// - Precondition: `offset` is 4-byte aligned in memory and inside the view.
    public func atomicLoad(_ type: UInt32.Type, at offset: Int) -> UInt32 {
        checkRead(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: checked to lie inside the mapping and aligned for a 4-byte atomic.
        return unsafe cmapped_load_acquire_u32(base + offset)
    }

    /// Stores a `UInt32` at `offset` atomically, with release ordering.
    /// - Precondition: `offset` is 4-byte aligned in memory and inside a writable view.
    public func atomicStore(_ value: UInt32, at offset: Int) {
        checkWrite(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: checked to lie inside a writable mapping and aligned for a 4-byte atomic.
        unsafe cmapped_store_release_u32(base + offset, value)
    }

    /// Replaces the `UInt32` at `offset` with `desired` if it equals `expected`, atomically
    /// (sequentially consistent); returns the value it found, which equals `expected` on success.
    /// - Precondition: `offset` is 4-byte aligned in memory and inside a writable view.
    public func compareExchange(_ expected: UInt32, _ desired: UInt32, at offset: Int) -> UInt32 {
        checkWrite(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: checked to lie inside a writable mapping and aligned for a 4-byte atomic.
        return unsafe cmapped_compare_exchange_u32(base + offset, expected, desired)
    }

    /// Sleeps while the `UInt32` at `offset` equals `expected`, until another thread or process
    /// wakes the word (``wakeWaiters(onWordAt:count:)``), or `timeout` passes (nil: no limit).
    ///
    /// The comparison and the sleep are one atomic step in the kernel, so a wake-up sent after
    /// the word changed is never lost. Wake-ups can also be spurious: re-check the condition you
    /// wait for, and wait again. Works in views of any access, for files and shared memory.
    /// - Returns: false if the timeout passed; true otherwise (woken, the word differed, or a
    ///   signal interrupted the sleep).
    /// - Precondition: `offset` is 4-byte aligned in memory and inside the view.
    public func waitForWake(onWordAt offset: Int, whileEqualTo expected: UInt32, timeout: Duration?) -> Bool {
        checkRead(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: checked to lie inside the mapping and aligned; the kernel only reads the word.
        let word = unsafe UnsafePointer((base + offset).assumingMemoryBound(to: UInt32.self))
        return unsafe SharedWord.wait(word, whileEqualTo: expected, timeout: timeout)
    }

    /// The same wait, for Swift concurrency: the sleep happens on a thread of its own, never on
    /// one of the cooperative pool's. Cancelling the task ends the wait within microseconds
    /// (it wakes every waiter on the word, which the others see as a spurious wake-up).
    /// - Returns: false if the timeout passed; true otherwise (including cancellation).
    public func waitForWake(onWordAt offset: Int, whileEqualTo expected: UInt32, timeout: Duration?) async -> Bool {
        checkRead(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: the view is borrowed for the whole call, so the word stays mapped until the
        // thread that sleeps on it has returned (the continuation resumes only after that).
        let address = unsafe UInt(bitPattern: base + offset)
        return await SharedWord.waitOnOwnThread(address: address, whileEqualTo: expected, timeout: timeout)
    }

    /// Wakes up to `count` threads, in any process, that wait on the `UInt32` at `offset`;
    /// returns how many it woke. One system call.
    /// - Precondition: `offset` is 4-byte aligned in memory and inside the view.
    @discardableResult
    public func wakeWaiters(onWordAt offset: Int, count: Int = Int.max) -> Int {
        checkRead(offset, 4)
        checkWordAlignment(offset)
        // SAFETY: checked to lie inside the mapping and aligned; the kernel does not touch the word.
        return unsafe SharedWord.wake(UnsafePointer((base + offset).assumingMemoryBound(to: UInt32.self)), count: count)
    }

    private func checkWordAlignment(_ offset: Int) {
        unsafe precondition(
            (Int(bitPattern: base) + offset) & 3 == 0,
            "MappedViewAccessor: atomic access at offset \(offset) is not 4-byte aligned")
    }
}

/// The futex calls behind ``MappedViewAccessor/waitForWake(onWordAt:whileEqualTo:timeout:)``, for
/// words this library maps by other means (the table's doorbell). Not for general use: the
/// caller guarantees that the word stays mapped for the duration of each call.
package enum SharedWord {
    /// Sleeps while `*word == expected`, at most `timeout`; false if the timeout passed.
    package static func wait(_ word: UnsafePointer<UInt32>, whileEqualTo expected: UInt32, timeout: Duration?) -> Bool {
        let nanoseconds = timeout.map(nanosecondsClamped) ?? -1
        if unsafe system_futex_wait(word, expected, nanoseconds) == 0 { return true }
        switch lastErrno {
        case ETIMEDOUT: return false
        case EAGAIN, EINTR: return true
        case let code:
            // EFAULT or EINVAL: the word is not mapped or not aligned, which only a bug can cause.
            preconditionFailure("SharedWord: futex wait failed with errno \(code)")
        }
    }

    /// Wakes up to `count` waiters on `word`; returns how many.
    @discardableResult
    package static func wake(_ word: UnsafePointer<UInt32>, count: Int = Int.max) -> Int {
        let woken = unsafe system_futex_wake(word, Int32(clamping: count))
        precondition(woken >= 0, "SharedWord: futex wake failed with errno \(lastErrno)")
        return Int(woken)
    }

    /// ``wait(_:whileEqualTo:timeout:)`` for Swift concurrency, on a thread of its own (the word
    /// is given as an address, since a pointer cannot cross to that thread); cancelling the task
    /// wakes every waiter on the word. The caller keeps the word mapped until this returns.
    package static func waitOnOwnThread(address: UInt, whileEqualTo expected: UInt32, timeout: Duration?) async -> Bool
    {
        // SAFETY: `address` stays mapped until this function returns (the caller's borrow), and
        // the thread's last use of it is before it resumes the continuation.
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                runOnNewThread {
                    unsafe continuation.resume(
                        returning: wait(
                            UnsafePointer<UInt32>(bitPattern: address)!, whileEqualTo: expected, timeout: timeout))
                }
            }
        } onCancel: {
            unsafe wake(UnsafePointer<UInt32>(bitPattern: address)!)
        }
    }
}

/// `duration` in nanoseconds, at least 0, at most Int64.max.
func nanosecondsClamped(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
    return overflow ? Int64.max : whole.addingReportingOverflow(attoseconds / 1_000_000_000).partialValue
}

/// Starts `body` on a new, detached thread: blocking calls that must not hold a thread of the
/// cooperative pool. Trapping if the system cannot make a thread is .NET's behaviour too.
package func runOnNewThread(_ body: @escaping @Sendable () -> Void) {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let argument = unsafe Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    let status = unsafe system_pthread_create(
        &thread,
        { argument in
            let box = unsafe Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            box.body()
            return nil
        }, unsafe argument)
    precondition(status == 0, "runOnNewThread: pthread_create failed with \(status)")
    _ = system_pthread_detach(thread)
}
