// Listing names, and collecting what dead holders left behind.

import Glibc
import MemoryMappedFiles
import Synchronization

extension Registry {
    // MARK: Listing and garbage collection

    /// Every name in the registry, in name order.
    public func entries() throws(RegistryError) -> [RegistryEntry] {
        try environment.read { transaction throws(RegistryError) in
            var entries: [RegistryEntry] = []
            for pair in try transaction.all() where pair.key != Self.nextSlotKey {
                entries.append(try RegistryEntry.decode(pair.value, key: pair.key, path: directory))
            }
            return entries
        }
    }

    /// The entry for `name`, or nil.
    /// - Throws: `invalidName` for a name that no entry can have (empty, too long, NUL).
    public func entry(named name: String) throws(RegistryError) -> RegistryEntry? {
        try Self.validate(name, operation: "entry(named:)")
        return try environment.read { transaction throws(RegistryError) in
            guard let bytes = try transaction.get(Self.key(for: name)) else { return nil }
            return try RegistryEntry.decode(bytes, named: name)
        }
    }

    /// Removes every name whose holders all died without closing, doing its last-close duty.
    ///
    /// Names whose last holder is closing them at this moment are left to that holder.
    /// - Complexity: O(*n*) in the registered names, in one write transaction.
    @discardableResult
    public func collectGarbage() throws(RegistryError) -> GarbageCollection {
        try environment.write { transaction throws(RegistryError) in
            var report = GarbageCollection(deadHolders: 0, removedNames: [])
            for pair in try transaction.all() where pair.key != Self.nextSlotKey {
                let entry = try RegistryEntry.decode(pair.value, key: pair.key, path: directory)
                guard state(of: entry.slot) == .abandoned else { continue }
                try? lastCloseDuty(entry)
                try transaction.delete(pair.key)
                report.deadHolders += 1
                report.removedNames.append(entry.name)
            }
            return report
        }
    }

    /// What the last holder's close does: unlink shared memory, sync a file.
    /// - Throws: a file's failed `fsync`, which means its data may not be on disk. Clean-up
    ///   after crashed holders has no one to report to and ignores it.
    func lastCloseDuty(_ entry: RegistryEntry) throws(RegistryError) {
        switch entry.kind {
        case .sharedMemory, .mutex, .event:
            try? MemoryMappedFile.removeSharedMemory(systemName: entry.object)
        case .file:
            guard entry.access.canWrite, entry.access != .copyOnWrite else { return }
            do throws(MappedFileError) {
                let map = try MemoryMappedFile.createFromFile(path: entry.object, mode: .open)
                try map.close(flush: true)  // fsync: what every holder wrote reaches the disk
            } catch  where error.code == .notFound {
                return  // the file was deleted: nothing to sync
            } catch {
                throw RegistryError(error, operation: "close", path: entry.name)
            }
        }
    }
}
