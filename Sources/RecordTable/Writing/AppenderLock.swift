// The appender lock of a table that several processes append to (docs/FORMAT.md, "Several
// appenders"): a word in the live area, taken with one compare-and-exchange when it is free, and a
// byte-range lock per appender that tells the others whether the word's holder still lives.
//
// The word (u64, live area + 40): bits 0–31 the holder's token (0: free), bits 32–63 a count of
// acquisitions. Each appender picks a token t (1 ... 2^31 − 1) when it opens the table and holds an
// OFD write lock on byte 2^40 + t for as long as it has the table open; the kernel releases that
// lock when it dies. So a waiter that finds the word held by a token whose byte no one locks knows
// the holder died, and takes the word over with a compare-and-exchange of the whole word it saw:
// the acquisition count makes that exchange fail if the word changed hands meanwhile, even to an
// appender that drew the same token.
//
// Taking it: compare-and-exchange a free word (token 0) to (token, count + 1). Held by another: spin
// for up to 20 µs, then check the holder's token lock, then count itself in the waiter word (u64,
// live area + 48) and sleep on the word's low half (a futex) for at most 10 ms, and start over.
// Releasing: compare-and-exchange the token to 0, keeping the count (a full barrier), then wake
// every sleeper if the waiter word is not 0. A waiter counts itself before it sleeps and the
// kernel compares the word with the value it saw, so a release between the two is not missed.
//
// Why not an OFD lock on a byte, taken and released per append: the pair of `fcntl` calls costs
// 2.1 µs on the machine of docs/PERFORMANCE.md, against a few nanoseconds for an uncontended
// compare-and-exchange, and a waiter for an OFD lock is woken by the kernel's lock code in tens
// of microseconds. The OFD lock stays where it is cheap: once per appender, to say it lives.

import Glibc
import MemoryMappedFiles

enum AppenderLock {
    static let wordOffset = TableFormat.liveOffset + 40
    static let waitersOffset = TableFormat.liveOffset + 48
    /// Appender `t` holds an OFD write lock on byte `tokenBase + t` while it has the table open.
    static let tokenBase = 1 << 40
    static let largestToken: UInt32 = 0x7FFF_FFFF
    static let spinNanoseconds: UInt64 = 20_000
    static let sleepSlice = Duration.milliseconds(10)

    static func tokenBytes(_ token: UInt32) -> Range<Int> { tokenBase + Int(token)..<tokenBase + Int(token) + 1 }

    /// Draws a token and takes its byte lock on `map`: the appender's sign of life.
    static func chooseToken(_ map: borrowing MemoryMappedFile) throws(MappedFileError) -> UInt32 {
        while true {
            let token = UInt32.random(in: 1...largestToken)
            if try map.tryLock(bytes: tokenBytes(token)) { return token }
        }
    }

    /// Whether the appender that drew `token` still has the table open (asked on `descriptor`).
    static func holderIsAlive(_ token: UInt32, descriptor: Int32) -> Bool {
        // A failing fcntl is taken for a living holder: waiting longer is safe, taking over is not.
        MemoryMappedFile.isLockedElsewhere(descriptor: descriptor, bytes: tokenBytes(token)) ?? true
    }

    /// Takes the lock for `token`, in the mapping whose byte 0 is `base`.
    static func acquire(base: UnsafeMutableRawPointer, token: UInt32, descriptor: Int32) {
        let word = unsafe base + wordOffset
        let start = monotonicNanoseconds()
        var spins = 0
        while true {
            let current = unsafe SharedAtomics.loadAcquire(word)
            let holder = UInt32(truncatingIfNeeded: current)
            if holder == 0 {
                if unsafe SharedAtomics.compareExchange(word, expected: current, desired: taken(current, by: token))
                    == current
                {
                    return
                }
                continue
            }
            precondition(holder != token, "AppenderLock: taken twice by one appender")
            spins &+= 1
            SharedAtomics.spinPause()
            if spins & 63 != 0 || monotonicNanoseconds() &- start < spinNanoseconds { continue }
            if !holderIsAlive(holder, descriptor: descriptor) {
                // The holder died holding it: what it left is safe to take over (docs/FORMAT.md).
                if unsafe SharedAtomics.compareExchange(word, expected: current, desired: taken(current, by: token))
                    == current
                {
                    return
                }
                continue
            }
            unsafe addWaiter(base, 1)
            _ = unsafe SharedWord.wait(
                UnsafePointer(word.assumingMemoryBound(to: UInt32.self)), whileEqualTo: holder, timeout: sleepSlice)
            unsafe addWaiter(base, -1)
        }
    }

    /// Releases the lock `token` holds, and wakes sleepers if there are any.
    static func release(base: UnsafeMutableRawPointer, token: UInt32) {
        let word = unsafe base + wordOffset
        var current = unsafe SharedAtomics.loadAcquire(word)
        while true {
            // Only this appender changes a word it holds (no one takes over from the living).
            precondition(
                UInt32(truncatingIfNeeded: current) == token,
                "AppenderLock: released by an appender that does not hold it")
            let found = unsafe SharedAtomics.compareExchange(word, expected: current, desired: current & ~0xFFFF_FFFF)
            if found == current { break }
            current = found
        }
        if unsafe SharedAtomics.loadAcquire(base + waitersOffset) != 0 {
            unsafe SharedWord.wake(UnsafePointer(word.assumingMemoryBound(to: UInt32.self)))
            // Let the woken appender run before this one takes the lock again: without it, the
            // releaser's next append usually wins and the sleeper sleeps again.
            sched_yield()
        }
    }

    static func taken(_ current: UInt64, by token: UInt32) -> UInt64 {
        (current >> 32 &+ 1) << 32 | UInt64(token)
    }

    static func addWaiter(_ base: UnsafeMutableRawPointer, _ delta: Int64) {
        let waiters = unsafe base + waitersOffset
        var current = unsafe SharedAtomics.loadAcquire(waiters)
        while true {
            let found = unsafe SharedAtomics.compareExchange(
                waiters, expected: current, desired: current &+ UInt64(bitPattern: delta))
            if found == current { return }
            current = found
        }
    }
}
