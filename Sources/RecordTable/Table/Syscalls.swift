// The few system calls this module makes itself; mapping and file I/O go through MemoryMappedFiles.

import Glibc
import MemoryMappedFiles

/// Sleeps for `microseconds`.
func sleepMicroseconds(_ microseconds: Int) {
    var request = timespec(tv_sec: microseconds / 1_000_000, tv_nsec: (microseconds % 1_000_000) * 1000)
    var remaining = timespec()
    while unsafe nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

/// A monotonic clock in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    unsafe clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// Whether `path` is a symbolic link (lstat); false if it cannot be read.
func system_isSymbolicLink(_ path: String) -> Bool {
    var status = stat()
    return unsafe lstat(path, &status) == 0 && status.st_mode & S_IFMT == S_IFLNK
}

/// realpath(3): the path with every symbolic link resolved, or nil (errno says why).
func system_realpath(_ path: String) -> String? {
    guard let resolved = unsafe realpath(path, nil) else { return nil }
    defer { unsafe free(resolved) }
    return unsafe String(cString: resolved)
}

// MARK: The doorbell (Doorbell.swift): System V shared memory and membarrier(2)

func system_dup_cloexec(_ descriptor: Int32) -> Int32 { fcntl(descriptor, F_DUPFD_CLOEXEC, 0) }
func system_shmget_private(_ size: Int, _ flags: Int32) -> Int32 { shmget(IPC_PRIVATE, size, flags) }
func system_shmat(_ identifier: Int32, _ flags: Int32) -> UnsafeMutableRawPointer? {
    unsafe shmat(identifier, nil, flags)
}
func system_shmdt(_ address: UnsafeRawPointer) -> Int32 { unsafe shmdt(address) }
func system_shmctl(_ identifier: Int32, _ command: Int32, _ status: inout shmid_ds) -> Int32 {
    unsafe shmctl(identifier, command, &status)
}
func system_membarrier_register() -> Int32 { ProcessBarrier.registerForGlobal() }
func system_membarrier_global() -> Int32 { ProcessBarrier.global() }

/// Tests only (debug builds): a process whose `MAPPED_RECORDS_CRASH_AT` names a point kills
/// itself there with SIGKILL, so that a test can stop a writer at a chosen step (a step of a
/// series' roll, an appender holding the appender lock). Nothing in release builds.
enum CrashPoint {
    static func reached(_ name: String) {
        #if MAPPED_RECORDS_FAULT_INJECTION
        if system_getenv("MAPPED_RECORDS_CRASH_AT") == name { _ = kill(getpid(), SIGKILL) }
        #endif
    }
}
