// Holders: who has a name open. The kernel keeps that, as byte-range locks on the name's slot;
// the database only says which slot a name has.
//
// Every entry gets a slot when it is created: a byte offset of `holders.lock` that no other
// entry of this boot ever had (a counter in the database hands them out). A process holds a
// name by holding a shared OFD lock on that byte, through one open file description of
// `holders.lock` per process; the lock is taken once however many handles the process opens,
// and a count in the process says how many it has. The kernel drops the lock when the process
// closes its last handle of the name or dies, even by `kill -9`.
//
// Leaving: the last handle of a process drops the shared lock, then tries the byte's exclusive
// lock without waiting. If another process still holds the name, that fails, and leaving is
// done: nothing was written. If it succeeds, this process was the last holder: holding the
// exclusive lock, it removes the entry (if it is still the one with this slot) in a write
// transaction, and then does the last-close duty.
//
// Joining: look the name up in a read transaction, take the shared lock without waiting (a
// last closer holding the exclusive lock makes the joiner wait a little and look again), then
// ask the kernel whether another process holds the byte. If one does, the name was alive when
// the lock was taken; a second read transaction checks that the entry still has this slot (a
// last closer may have removed it between the lookup and the lock). If nobody else holds it,
// the name's holders all died: the joiner leaves as a last holder would, cleaning up after them,
// and the name is not found.
//
// So opening and closing a name that others hold write nothing: two read transactions and
// three `fcntl` calls. docs/REGISTRY.md, "Holders", has the rules and the races.

import Glibc
import MemoryMappedFiles
import Synchronization

/// This process's holds on names: one open file description of `holders.lock` whose shared
/// locks are the process's holds, and how many handles of the process share each slot.
final class SlotHolds: Sendable {
    /// The open file description whose locks are this process's holds.
    let file: MemoryMappedFile
    /// Handles per held slot; `closing` while this process's last handle is leaving it.
    let handles = Mutex<[UInt64: Int]>([:])
    /// The count that marks a slot this process is leaving as its last holder.
    static let closing = -1

    init(file: consuming MemoryMappedFile) {
        self.file = file
    }

    /// What ``enter(_:)`` found.
    enum Entered {
        /// This process held the slot already: one more handle.
        case alreadyHeld
        /// The shared lock was taken; whether another process holds the slot too.
        case locked(othersHold: Bool)
        /// A last closer holds the slot's exclusive lock (here or elsewhere): look again soon.
        case busy
    }

    /// Holds `slot` for one more handle of this process.
    func enter(_ slot: UInt64, path: String, operation: String) throws(RegistryError) -> Entered {
        let bytes = Int(slot)..<Int(slot) + 1
        let result: Result<Entered, RegistryError> = handles.withLock { handles in
            switch handles[slot] {
            case .some(Self.closing): return .success(.busy)
            case .some(let count):
                handles[slot] = count + 1
                return .success(.alreadyHeld)
            case .none:
                do throws(RegistryError) {
                    let locked = try mapping(operation: operation, path: path) { () throws(MappedFileError) in
                        try file.tryLockShared(bytes: bytes)
                    }
                    guard locked else { return .success(.busy) }
                    let other: Int32
                    do throws(RegistryError) {
                        other = try mapping(operation: operation, path: path) { () throws(MappedFileError) in
                            try file.lockTypeElsewhere(bytes: bytes)
                        }
                    } catch {
                        file.unlock(bytes: bytes)  // no handle was made: the hold goes
                        throw error
                    }
                    handles[slot] = 1
                    return .success(.locked(othersHold: other != F_UNLCK))
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    /// Gives up one handle's hold on `slot`. Returns true if this process was the last holder
    /// anywhere: it then holds the slot's exclusive lock, which ``finishLeaving(_:)`` drops.
    func leave(_ slot: UInt64) -> Bool {
        let bytes = Int(slot)..<Int(slot) + 1
        return handles.withLock { handles in
            guard let count = handles[slot], count > 0 else { return false }
            if count > 1 {
                handles[slot] = count - 1
                return false
            }
            file.unlock(bytes: bytes)
            // A failing fcntl is taken for another holder: the name then stays until the next
            // look at it finds nobody, which is safe; removing a held name is not.
            guard (try? file.tryLock(bytes: bytes)) == true else {
                handles[slot] = nil
                return false
            }
            handles[slot] = Self.closing
            return true
        }
    }

    /// Drops the exclusive lock a last holder took in ``leave(_:)``.
    func finishLeaving(_ slot: UInt64) {
        handles.withLock { handles in
            file.unlock(bytes: Int(slot)..<Int(slot) + 1)
            handles[slot] = nil
        }
    }

    /// This process's handles of `slot`: 0 if it does not hold it.
    func count(_ slot: UInt64) -> Int {
        handles.withLock { max($0[slot] ?? 0, 0) }
    }
}

/// Who holds a name now, as the kernel's locks tell.
public struct RegistryHolders: Sendable, Hashable {
    /// The handles this process has open on the name.
    public var handlesInThisProcess: Int
    /// How many other processes hold the name (each once, however many handles it has): read
    /// from `/proc/locks`, so 0 where that file cannot be read.
    public var otherProcesses: Int
    /// Whether any process holds the name. False for a name whose holders all died without
    /// closing: the next operation on it, or ``Registry/collectGarbage()``, removes it.
    public var isHeld: Bool
}

extension Registry {
    // MARK: Holders

    /// What the kernel says of an entry's slot.
    enum SlotState {
        /// Some process holds the name.
        case held
        /// Its last holder is removing it.
        case closing
        /// Nobody holds it: its holders died without closing.
        case abandoned
    }

    /// The state of `slot`, asked of the kernel through ``checker`` (which holds no locks, so
    /// this process's own holds count).
    func state(of slot: UInt64) -> SlotState {
        if holds.count(slot) > 0 { return .held }
        // A failing fcntl is taken for a holder: nothing is removed on a guess.
        guard let type = try? checker.lockTypeElsewhere(bytes: Int(slot)..<Int(slot) + 1) else { return .held }
        switch type {
        case F_RDLCK: return .held
        case F_WRLCK: return .closing
        default: return .abandoned
        }
    }

    /// Who holds `entry`'s name now.
    public func holders(of entry: RegistryEntry) -> RegistryHolders {
        let mine = holds.count(entry.slot)
        let state = state(of: entry.slot)
        let counted = Self.sharedLockCount(onByte: entry.slot, ofFile: holdersFileIdentity)
        return RegistryHolders(
            handlesInThisProcess: mine, otherProcesses: max(0, counted - (mine > 0 ? 1 : 0)),
            isHeld: state == .held)
    }

    /// The number of shared OFD locks covering byte `slot` of the file `identity` names,
    /// from `/proc/locks` (one line per lock: `N: OFDLCK ADVISORY READ -1 MAJ:MIN:INODE START END`).
    static func sharedLockCount(onByte slot: UInt64, ofFile identity: String) -> Int {
        guard let file = unsafe fopen("/proc/locks", "r") else { return 0 }
        defer { unsafe fclose(file) }
        var count = 0
        var line: UnsafeMutablePointer<CChar>? = nil
        var capacity = 0
        defer { unsafe free(line) }
        while unsafe getline(&line, &capacity, file) > 0 {
            guard let line = unsafe line else { break }
            let fields = unsafe String(cString: line).split(whereSeparator: { $0 == " " || $0 == "\n" })
            // "1:", "OFDLCK", "ADVISORY", "READ", "-1", identity, start, end
            guard fields.count >= 8, fields[1] == "OFDLCK", fields[3] == "READ", fields[5] == identity,
                let start = UInt64(fields[6])
            else { continue }
            let end = fields[7] == "EOF" ? UInt64.max : UInt64(fields[7]) ?? 0
            if start <= slot && slot <= end { count += 1 }
        }
        return count
    }
}
