// Every system call the module makes, as a one-line wrapper. The few that the table and
// registry layers make too are `package`, so that the package has one wrapper for each (and
// one fault-injection hook: a registry's posix_fallocate fails under the same injection).
//
// Nothing else in the module calls Glibc for I/O or memory mapping directly;
// keeping them here gives one place to audit, and one place to inject faults.
// Wrappers return the raw result; `lastErrno` reads errno right after a failure.

import CMappedShims
import Glibc

/// The calling thread's errno. Read it immediately after the failing call.
@usableFromInline
package var lastErrno: Int32 { Glibc.errno }

internal func system_open(_ path: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    unsafe open(path, flags, mode)
}

package func system_close(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}

package func system_fstat(_ descriptor: Int32, _ status: inout stat) -> Int32 {
    unsafe fstat(descriptor, &status)
}

internal func system_ftruncate(_ descriptor: Int32, _ length: off_t) -> Int32 {
    if let injected = injectedFailure(.ftruncate) { errno = injected; return -1 }
    return ftruncate(descriptor, length)
}

/// Returns 0 or an errno value (posix_fallocate does not set errno).
package func system_posix_fallocate(_ descriptor: Int32, _ offset: off_t, _ length: off_t) -> Int32 {
    if let injected = injectedFailure(.posixFallocate) { return injected }
    return posix_fallocate(descriptor, offset, length)
}

internal func system_fsync(_ descriptor: Int32) -> Int32 {
    if let injected = injectedFailure(.fsync) { errno = injected; return -1 }
    return fsync(descriptor)
}

internal func system_fchmod(_ descriptor: Int32, _ mode: mode_t) -> Int32 {
    fchmod(descriptor, mode)
}

internal func system_access(_ path: UnsafePointer<CChar>, _ mode: Int32) -> Int32 {
    unsafe access(path, mode)
}

internal func system_read(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    unsafe read(descriptor, buffer, count)
}

internal func system_write(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    unsafe write(descriptor, buffer, count)
}

internal func system_pwrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int, _ offset: off_t) -> Int {
    unsafe pwrite(descriptor, buffer, count, offset)
}

/// sync_file_range(2), SYNC_FILE_RANGE_WRITE: starts writeback of a range; does not wait.
internal func system_start_writeback(_ descriptor: Int32, _ offset: Int, _ length: Int) -> Int32 {
    cmapped_start_writeback(descriptor, Int64(offset), Int64(length))
}

internal func system_unlink(_ path: UnsafePointer<CChar>) -> Int32 {
    unsafe unlink(path)
}

internal func system_rename(_ oldPath: UnsafePointer<CChar>, _ newPath: UnsafePointer<CChar>) -> Int32 {
    unsafe rename(oldPath, newPath)
}

package func system_getpid() -> pid_t {
    getpid()
}

internal func system_kill(_ process: pid_t, _ signal: Int32) -> Int32 {
    kill(process, signal)
}

/// The names in a directory (without "." and ".."); empty if it cannot be read.
internal func directoryNames(_ path: String) -> [String] {
    guard let stream = unsafe opendir(path) else { return [] }
    defer { unsafe closedir(stream) }
    var names: [String] = []
    while let entry = unsafe readdir(stream) {
        let name = unsafe withUnsafeBytes(of: entry.pointee.d_name) {
            unsafe String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// Whether a process with this id runs (signal 0 reaches it, or it exists but is another user's).
internal func processIsAlive(_ process: pid_t) -> Bool {
    system_kill(process, 0) == 0 || lastErrno == EPERM
}

internal func system_linkat(
    _ oldDirectory: Int32, _ oldPath: UnsafePointer<CChar>, _ newDirectory: Int32, _ newPath: UnsafePointer<CChar>,
    _ flags: Int32
) -> Int32 {
    unsafe linkat(oldDirectory, oldPath, newDirectory, newPath, flags)
}

internal func system_fstatvfs(_ descriptor: Int32, _ status: inout statvfs) -> Int32 {
    unsafe fstatvfs(descriptor, &status)
}

/// fstatfs(2)'s file-system type, or -1.
internal func system_filesystem_type(_ descriptor: Int32) -> Int {
    cmapped_filesystem_type(descriptor)
}

internal func system_getrlimit(_ resource: __rlimit_resource_t, _ limit: inout rlimit) -> Int32 {
    unsafe getrlimit(resource, &limit)
}

package func system_geteuid() -> uid_t {
    geteuid()
}

internal func system_mmap(
    _ length: Int, _ protection: Int32, _ flags: Int32, _ descriptor: Int32, _ offset: off_t
) -> UnsafeMutableRawPointer? {
    if let injected = injectedFailure(.mmap) { errno = injected; return nil }
    let address = unsafe mmap(nil, length, protection, flags, descriptor, offset)
    return unsafe address == MAP_FAILED ? nil : address
}

internal func system_munmap(_ address: UnsafeMutableRawPointer, _ length: Int) -> Int32 {
    unsafe munmap(address, length)
}

internal func system_madvise(_ address: UnsafeMutableRawPointer, _ length: Int, _ advice: Int32) -> Int32 {
    unsafe madvise(address, length, advice)
}

internal func system_msync(_ address: UnsafeMutableRawPointer, _ length: Int, _ flags: Int32) -> Int32 {
    if let injected = injectedFailure(.msync) { errno = injected; return -1 }
    return unsafe msync(address, length, flags)
}

internal func system_shm_open(_ name: UnsafePointer<CChar>, _ flags: Int32, _ mode: mode_t) -> Int32 {
    unsafe shm_open(name, flags, mode)
}

internal func system_shm_unlink(_ name: UnsafePointer<CChar>) -> Int32 {
    unsafe shm_unlink(name)
}

internal func system_memfd_create(_ name: UnsafePointer<CChar>, closeOnExec: Bool) -> Int32 {
    unsafe cmapped_memfd_create(name, closeOnExec ? cmapped_MFD_CLOEXEC : 0)
}

/// fcntl(2) with an open-file-description lock command (F_OFD_SETLK or F_OFD_GETLK).
internal func system_fcntl_lock(_ descriptor: Int32, getting: Bool, _ lock: inout flock) -> Int32 {
    unsafe fcntl(descriptor, getting ? cmapped_F_OFD_GETLK : cmapped_F_OFD_SETLK, &lock)
}

internal func system_sysconf(_ name: Int32) -> Int {
    sysconf(name)
}

/// Calls `body` again while it fails with EINTR; returns its result.
internal func retryingOnInterrupt(_ body: () -> Int32) -> Int32 {
    while true {
        let result = body()
        if result != -1 || lastErrno != EINTR { return result }
    }
}

/// The errno a test has asked this call to fail with (FaultInjection.swift); always nil in
/// builds without fault injection, where it compiles away.
@inline(__always)
internal func injectedFailure(_ call: @autoclosure () -> FaultInjectionCall) -> Int32? {
    #if MAPPED_RECORDS_FAULT_INJECTION
    return FaultInjection.injectedFailure(call())
    #else
    return nil
    #endif
}

#if MAPPED_RECORDS_FAULT_INJECTION
typealias FaultInjectionCall = FaultInjection.Call
#else
/// The calls fault injection knows; only a name in builds without it.
enum FaultInjectionCall { case posixFallocate, ftruncate, msync, fsync, mmap }
#endif

// MARK: Waiting on shared words (SharedWord.swift)

/// futex(2) FUTEX_WAIT on a shared word; a negative timeout waits without limit.
internal func system_futex_wait(
    _ address: UnsafePointer<UInt32>, _ expected: UInt32, _ timeoutNanoseconds: Int64
) -> Int32 {
    unsafe cmapped_futex_wait(address, expected, timeoutNanoseconds)
}

/// futex(2) FUTEX_WAKE on a shared word.
internal func system_futex_wake(_ address: UnsafePointer<UInt32>, _ count: Int32) -> Int32 {
    unsafe cmapped_futex_wake(address, count)
}

internal func system_pthread_create(
    _ thread: inout pthread_t, _ body: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    unsafe pthread_create(&thread, nil, body, argument)
}

internal func system_pthread_detach(_ thread: pthread_t) -> Int32 { pthread_detach(thread) }

// MARK: Copies and child processes (MappedViewStreamCopying.swift, Inheritance.swift)

internal func system_poll_writable(_ descriptor: Int32, _ milliseconds: Int32) -> Int32 {
    var entry = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
    return unsafe poll(&entry, 1, milliseconds)
}

internal func system_fcntl_getfd(_ descriptor: Int32) -> Int32 { fcntl(descriptor, F_GETFD) }
internal func system_fcntl_getfl(_ descriptor: Int32) -> Int32 { fcntl(descriptor, F_GETFL) }
internal func system_flock(_ descriptor: Int32, _ operation: Int32) -> Int32 {
    retryingOnInterrupt { flock(descriptor, operation) }
}
internal func system_fcntl_setfd(_ descriptor: Int32, _ flags: Int32) -> Int32 { fcntl(descriptor, F_SETFD, flags) }

internal func system_posix_spawn(
    _ pid: inout pid_t, _ path: String, _ actions: inout posix_spawn_file_actions_t,
    _ arguments: [UnsafeMutablePointer<CChar>?], _ environment: [UnsafeMutablePointer<CChar>?]
) -> Int32 {
    unsafe posix_spawn(&pid, path, &actions, nil, arguments, environment)
}

package func system_getenv(_ name: String) -> String? { unsafe getenv(name).map { unsafe String(cString: $0) } }
internal func system_unsetenv(_ name: String) -> Int32 { unsafe unsetenv(name) }

// MARK: File identity and ownership (MemoryMappedFile+Identity.swift)

internal func system_stat(_ path: UnsafePointer<CChar>, _ status: inout stat) -> Int32 {
    unsafe stat(path, &status)
}

internal func system_fchown(_ descriptor: Int32, _ owner: uid_t, _ group: gid_t) -> Int32 {
    fchown(descriptor, owner, group)
}

internal func system_flistxattr(_ descriptor: Int32, _ names: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int {
    unsafe cmapped_flistxattr(descriptor, names, size)
}

internal func system_fgetxattr(
    _ descriptor: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeMutableRawPointer?, _ size: Int
) -> Int {
    unsafe cmapped_fgetxattr(descriptor, name, value, size)
}

internal func system_fsetxattr(
    _ descriptor: Int32, _ name: UnsafePointer<CChar>, _ value: UnsafeRawPointer?, _ size: Int
) -> Int32 {
    unsafe cmapped_fsetxattr(descriptor, name, value, size)
}
