// The few system calls this module makes itself; mapping and file I/O go through MemoryMappedFiles.

import Glibc

/// The 16 bytes of this boot's identifier (/proc/sys/kernel/random/boot_id), or 16 zero
/// bytes if it cannot be read. A new boot, after a power loss or a kernel crash, has a new one.
func readBootIdentifier() -> [UInt8] {
    let descriptor = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return [UInt8](repeating: 0, count: 16) }
    defer { _ = close(descriptor) }
    var text = [UInt8](repeating: 0, count: 64)
    let length = text.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
    let hexDigits = text.prefix(max(0, length)).compactMap { byte -> UInt8? in
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
    guard hexDigits.count == 32 else { return [UInt8](repeating: 0, count: 16) }
    return (0..<16).map { hexDigits[2 * $0] << 4 | hexDigits[2 * $0 + 1] }
}

/// Sleeps for `microseconds`.
func sleepMicroseconds(_ microseconds: Int) {
    var request = timespec(tv_sec: microseconds / 1_000_000, tv_nsec: (microseconds % 1_000_000) * 1000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) == -1 && errno == EINTR { request = remaining }
}

/// A monotonic clock in nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
