// Advisory open-file-description locks on byte ranges of the file.

import Glibc

// MARK: - Locks

extension MemoryMappedFile {
    /// Takes an exclusive advisory lock on `bytes` of the file, if no other open file
    /// holds one there; returns whether it did.
    ///
    /// The lock belongs to this map's open file (an OFD lock): it is released when the map
    /// closes (even while a child process being spawned still shares the open file), or by the
    /// kernel when the process dies, even by `kill -9`. So a crashed holder
    /// never blocks the next one. Locks are advisory: they stop only others who ask.
    /// The byte range may lie past the end of the file.
    public func tryLock(bytes: Range<Int>) throws(MappedFileError) -> Bool {
        try tryLock(F_WRLCK, bytes: bytes, operation: "tryLock")
    }

    /// Takes a shared advisory lock on `bytes` of the file, if no other open file holds an
    /// exclusive one there; returns whether it did. Any number of open files may hold shared
    /// locks on the same bytes at once; an exclusive lock (``tryLock(bytes:)``) excludes them,
    /// and they exclude it. Like ``tryLock(bytes:)``, an OFD lock the kernel releases when the
    /// map closes or the process dies.
    public func tryLockShared(bytes: Range<Int>) throws(MappedFileError) -> Bool {
        try tryLock(F_RDLCK, bytes: bytes, operation: "tryLockShared")
    }

    /// `F_OFD_SETLK` of a lock of `type` (`F_WRLCK`, `F_RDLCK`); false if another open file's
    /// lock conflicts.
    private func tryLock(_ type: Int32, bytes: Range<Int>, operation: String) throws(MappedFileError) -> Bool {
        var lock = Self.lockRecord(type, bytes)
        guard system_fcntl_lock(descriptor.rawValue, getting: false, &lock) == 0 else {
            let value = lastErrno
            if value == EAGAIN || value == EACCES { return false }
            throw .system("fcntl", errno: value, operation: operation, path: state.path)
        }
        descriptor.tookLocks.store(true, ordering: .relaxed)
        return true
    }

    private static func lockRecord(_ type: Int32, _ bytes: Range<Int>) -> flock {
        var lock = flock()
        lock.l_type = Int16(type)
        lock.l_whence = Int16(SEEK_SET)
        lock.l_start = off_t(bytes.lowerBound)
        lock.l_len = off_t(bytes.count)
        return lock
    }

    /// Releases a lock this map took with ``tryLock(bytes:)`` or ``tryLockShared(bytes:)``.
    public func unlock(bytes: Range<Int>) {
        var lock = Self.lockRecord(F_UNLCK, bytes)
        // Unlocking cannot fail on a valid descriptor
        _ = system_fcntl_lock(descriptor.rawValue, getting: false, &lock)
    }

    /// Whether another open file holds a lock on `bytes` (one this map holds does not count).
    public func isLockedElsewhere(bytes: Range<Int>) throws(MappedFileError) -> Bool {
        guard let locked = Self.isLockedElsewhere(descriptor: descriptor.rawValue, bytes: bytes) else {
            throw .system("fcntl", errno: lastErrno, operation: "isLockedElsewhere", path: state.path)
        }
        return locked
    }

    /// The type of the lock another open file holds on `bytes`: `F_RDLCK` (shared), `F_WRLCK`
    /// (exclusive), or `F_UNLCK` if there is none. Locks this map holds do not count.
    package func lockTypeElsewhere(bytes: Range<Int>) throws(MappedFileError) -> Int32 {
        var lock = Self.lockRecord(F_WRLCK, bytes)
        guard system_fcntl_lock(descriptor.rawValue, getting: true, &lock) == 0 else {
            throw .system("fcntl", errno: lastErrno, operation: "lockTypeElsewhere", path: state.path)
        }
        return Int32(lock.l_type)
    }

    /// Releases every OFD lock of `descriptor`'s open file description (all of the file's bytes).
    static func releaseAllLocks(descriptor: Int32) {
        var lock = lockRecord(F_UNLCK, 0..<0)  // a length of 0 runs to the end of any file
        _ = system_fcntl_lock(descriptor, getting: false, &lock)
    }

    /// ``isLockedElsewhere(bytes:)`` on a descriptor: nil (errno set) if `fcntl` fails.
    package static func isLockedElsewhere(descriptor: Int32, bytes: Range<Int>) -> Bool? {
        var lock = Self.lockRecord(F_WRLCK, bytes)
        guard system_fcntl_lock(descriptor, getting: true, &lock) == 0 else { return nil }
        return lock.l_type != Int16(F_UNLCK)
    }
}
