// Holders: each open of a name is a holder, recognised as alive by its lock.

import Glibc
import MemoryMappedFiles
import Synchronization

extension Registry {
    // MARK: Holders

    /// This process's holder lock, taken on first use: its own open file description of
    /// `holders.lock`, locking one byte until the process ends.
    func acquireHolder() throws(RegistryError) -> HolderLock {
        let result: Result<HolderLock, RegistryError> = processHolder.withLock { holder in
            if let holder { return .success(holder) }
            do throws(RegistryError) {
                var file = try Self.openHoldersFile(
                    in: bootDirectoryDescriptor, shownAs: bootDirectory + "/holders.lock", operation: "acquireHolder")
                file.markAsProcessLifetime()  // kept until the process ends: not a leak
                while true {
                    let id = UInt64.random(in: 4096..<(1 << 40))
                    let locked = try mapping(operation: "acquireHolder", path: bootDirectory + "/holders.lock") {
                        () throws(MappedFileError) in
                        try file.tryLock(bytes: Int(id)..<Int(id) + 1)
                    }
                    if locked {
                        let taken = HolderLock(id: id, file: file)
                        holder = taken
                        return .success(taken)
                    }
                }
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Whether a holder's lock is still held (by any process, this one included).
    func isAlive(_ holder: UInt64) -> Bool {
        (try? checker.isLockedElsewhere(bytes: Int(holder)..<Int(holder) + 1)) ?? true
    }

    /// The entry's holders, with their liveness.
    public func holders(of entry: RegistryEntry) -> [RegistryHolder] {
        entry.holders.map { RegistryHolder(id: $0, isAlive: isAlive($0)) }
    }
}
