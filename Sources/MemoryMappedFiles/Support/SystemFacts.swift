// Facts about the running system that every layer reads once: the page size, and this boot's
// identifier.

import Glibc
import Synchronization

/// The memory page size of this system; .NET's `Environment.SystemPageSize`.
public let systemPageSize: Int = system_sysconf(Int32(_SC_PAGESIZE))

/// This boot's identifier: the 16 bytes of `/proc/sys/kernel/random/boot_id`, or 16 zero bytes
/// if it cannot be read. Every boot (so every power loss or kernel crash) gets a new one, which
/// tells data that only a running system keeps apart from data on disk.
package let systemBootIdentifier: [UInt8] = {
    let descriptor = unsafe system_open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC, 0)
    guard descriptor >= 0 else { return [UInt8](repeating: 0, count: 16) }
    defer { _ = system_close(descriptor) }
    var text = [UInt8](repeating: 0, count: 64)
    let length = unsafe text.withUnsafeMutableBytes { unsafe system_read(descriptor, $0.baseAddress!, $0.count) }
    let digits = text.prefix(max(0, length)).compactMap { byte -> UInt8? in
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
    guard digits.count == 32 else { return [UInt8](repeating: 0, count: 16) }
    return (0..<16).map { digits[2 * $0] << 4 | digits[2 * $0 + 1] }
}()
