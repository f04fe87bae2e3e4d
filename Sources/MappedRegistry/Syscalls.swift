// The few system calls the registry makes itself; maps, locks and shared memory go
// through MemoryMappedFiles.

import Glibc

func system_mkdir(_ path: String, _ mode: mode_t) -> Int32 { mkdir(path, mode) }
func system_stat(_ path: String, _ status: inout stat) -> Int32 { stat(path, &status) }
func system_getuid() -> uid_t { getuid() }
func system_getpid() -> pid_t { getpid() }
func system_getenv(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
var lastErrno: Int32 { Glibc.errno }

/// Real time in nanoseconds since 1970.
func realtimeNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// The current directory, for making paths absolute.
func currentDirectory() -> String {
    var buffer = [CChar](repeating: 0, count: 4096)
    guard getcwd(&buffer, buffer.count) != nil else { return "." }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
