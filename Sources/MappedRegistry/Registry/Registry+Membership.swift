// A handle's hold on a name, released when it closes or is deinitialized.

import Glibc
import MemoryMappedFiles
import Synchronization

/// One handle's hold on a name (its entry's slot): released, with the last-close duty if it was
/// the last anywhere, when closed or deinitialized.
final class Membership: @unchecked Sendable {
    // SAFETY (Sendable): `isReleased` is guarded by the owner being ~Copyable or a class used
    // from one thread; release is idempotent.
    let registry: Registry
    let name: String
    let slot: UInt64
    private var isReleased = false

    init(registry: Registry, name: String, slot: UInt64) {
        self.registry = registry
        self.name = name
        self.slot = slot
    }

    func release() throws(RegistryError) {
        guard !isReleased else { return }
        isReleased = true
        try registry.release(name, slot: slot)
    }

    deinit { try? release() }
}
