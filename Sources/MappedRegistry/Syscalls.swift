// The few system calls the registry makes itself; maps, locks and shared memory go
// through MemoryMappedFiles, whose package wrappers (system_close, system_fstat,
// system_posix_fallocate, system_getpid, system_geteuid, lastErrno) it uses too.

import Glibc

func system_mkdirat(_ directory: Int32, _ path: String, _ mode: mode_t) -> Int32 {
    unsafe mkdirat(directory, path, mode)
}
func system_openat(_ directory: Int32, _ path: String, _ flags: Int32, _ mode: mode_t) -> Int32 {
    unsafe openat(directory, path, flags, mode)
}
func system_access(_ path: String, _ mode: Int32) -> Int32 { unsafe access(path, mode) }
func system_getenv(_ name: String) -> String? { unsafe getenv(name).map { unsafe String(cString: $0) } }

/// Real time in nanoseconds since 1970.
func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    unsafe clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The current directory, for making paths absolute.
func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    guard unsafe getcwd(&buffer, buffer.count) != nil else { return "." }
    return unsafe buffer.withUnsafeBufferPointer { unsafe String(cString: $0.baseAddress!) }
}

func system_stat(_ path: String, _ status: inout stat) -> Int32 { unsafe stat(path, &status) }
/// The target of a symbolic link (such as /proc/self/fd/N), or nil.
func system_readlink(_ path: String) -> String? {
    var buffer = [CChar](repeating: 0, count: 4097)
    let length = unsafe readlink(path, &buffer, 4096)
    guard length > 0 else { return nil }
    return unsafe buffer.withUnsafeBufferPointer {
        unsafe String(decoding: UnsafeRawBufferPointer($0).prefix(length), as: UTF8.self)
    }
}
