// What a holder is: a byte-range lock the kernel releases when its process dies, and the
// membership of one name that releases itself.

import Glibc
import MemoryMappedFiles
import Synchronization

/// A process's holder lock: an open file description of `holders.lock` with one byte locked.
/// The process dying releases the lock, and with it every name the process held.
final class HolderLock: Sendable {
    let id: UInt64
    let file: MemoryMappedFile

    init(id: UInt64, file: consuming MemoryMappedFile) {
        self.id = id
        self.file = file
    }
}

/// A holder's membership of a name: released (with the last-close duty if it is the last)
/// when closed or deinitialized.
final class Membership: @unchecked Sendable {
    // SAFETY (Sendable): `isReleased` is guarded by the owner being ~Copyable or a class used
    // from one thread; release is idempotent.
    let registry: Registry
    let name: String
    let holder: HolderLock
    private var isReleased = false

    init(registry: Registry, name: String, holder: HolderLock) {
        self.registry = registry
        self.name = name
        self.holder = holder
    }

    func release() throws(RegistryError) {
        guard !isReleased else { return }
        isReleased = true
        try registry.release(name, holder: holder.id)
    }

    deinit { try? release() }
}
