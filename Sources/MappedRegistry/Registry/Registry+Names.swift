// Names: validation, keys, claiming a name (create or join), releasing it, the last-close duty.

import Glibc
import MemoryMappedFiles
import Synchronization

extension Registry {
    // MARK: Names

    /// The longest name, in bytes of UTF-8. (.NET's own tests use names of 1,032 characters.)
    public static let maximumNameLength = 4096
    /// Names longer than this are stored under a hash of themselves: LMDB keys are at most 511 bytes.
    static let longestPlainKey = 400

    /// Checks a name: 1 to ``maximumNameLength`` bytes of UTF-8, no NUL. A "/" is allowed, so
    /// .NET's `local/` and `global/` prefixes work (names never become paths).
    static func validate(_ name: String, operation: String) throws(RegistryError) {
        let bytes = name.utf8
        guard (1...maximumNameLength).contains(bytes.count), !bytes.contains(0) else {
            throw RegistryError(
                .invalidName, operation: operation, path: String(name.prefix(64)),
                message: "a name must be 1 to \(maximumNameLength) bytes of UTF-8 without NUL")
        }
    }

    /// The LMDB key of a name: the name itself, or for names over 400 bytes, a NUL (which no
    /// name contains) and 16 bytes of hash. The entry holds the full name, which every lookup
    /// compares, so two names with one hash can never be confused.
    static func key(for name: String) -> [UInt8] {
        let bytes = Array(name.utf8)
        guard bytes.count > longestPlainKey else { return bytes }
        var key: [UInt8] = [0]
        unsafe withUnsafeBytes(of: fnv1a(bytes, basis: 0xCBF2_9CE4_8422_2325).littleEndian) { unsafe key += $0 }
        unsafe withUnsafeBytes(of: fnv1a(bytes, basis: 0x6C62_272E_07BB_0142).littleEndian) { unsafe key += $0 }
        return key
    }

    /// A tag of this registry's boot directory (8 hex digits) that the names of its
    /// shared-memory objects carry, so each object in `/dev/shm` is traceable to its registry.
    public var objectTag: String {
        let hash = Self.fnv1a(bootDirectory.utf8, basis: 0xCBF2_9CE4_8422_2325)
        let text = String(hash & 0xFFFF_FFFF, radix: 16)
        return String(repeating: "0", count: 8 - text.count) + text
    }

    /// FNV-1a 64 of `bytes` from `basis`: for the keys of long names and the object tag.
    static func fnv1a(_ bytes: some Sequence<UInt8>, basis: UInt64) -> UInt64 {
        bytes.reduce(basis) { ($0 ^ UInt64($1)) &* 0x0000_0100_0000_01B3 }
    }

    /// A fresh system name for a shared-memory object: `mapped-records.PID.TAG.RANDOM`.
    func freshSystemName() -> String {
        "mapped-records.\(system_getpid()).\(objectTag).\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
    }

    /// How `claim` found the name.
    enum Claim {
        case created(RegistryEntry)
        case joined(RegistryEntry)

        /// The entry, created or joined.
        var entry: RegistryEntry {
            switch self {
            case .created(let entry), .joined(let entry): return entry
            }
        }
    }

    /// The key under which the database keeps the next free slot: a single NUL byte, which no
    /// name's key is (a name has no NUL, and a long name's key is 17 bytes).
    static let nextSlotKey: [UInt8] = [0]
    /// The first slot handed out: slots are byte offsets in `holders.lock`.
    static let firstSlot: UInt64 = 1

    /// Atomically holds the live entry named `name` for one more handle of this process, or, if
    /// there is none and `candidate` is given, stores `candidate` as the new entry, with a slot
    /// of its own, held by this process. An abandoned entry (its holders died) gets its
    /// last-close duty first, and so does one whose last holder is removing it.
    /// - Parameter kinds: The kinds the caller can use; a live entry of another kind is
    ///   `wrongKind`, refused before it is held, so a failed open holds nothing.
    func claim(
        _ name: String, candidate: RegistryEntry?, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind],
        wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        let key = Self.key(for: name)
        // The transaction may run its body again (a full map grows): the hold a failed run took
        // is given back first, and so is the hold of a transaction that fails.
        var taken: UInt64?
        func giveBack() {
            if let slot = taken, holds.leave(slot) { holds.finishLeaving(slot) }
            taken = nil
        }
        do {
            return try environment.write { transaction throws(RegistryError) in
                giveBack()
                if let bytes = try transaction.get(key) {
                    let entry = try RegistryEntry.decode(bytes, named: name)
                    if state(of: entry.slot) == .held {
                        if mustCreate {
                            throw RegistryError(
                                .nameExists, operation: operation, path: name,
                                message: "a live map or mutex already has this name")
                        }
                        guard kinds.contains(entry.kind) else {
                            throw RegistryError(
                                .wrongKind, operation: operation, path: name,
                                message: "the name belongs to \(entry.kind.withArticle), not \(wanted)")
                        }
                        // Held, and its last holder cannot remove it while this transaction
                        // runs: the hold is taken without waiting.
                        if case .busy = try holds.enter(entry.slot, path: name, operation: operation) {
                            // Its last holder left just now and waits for this transaction:
                            // the entry is removed here instead (below).
                        } else {
                            taken = entry.slot
                            return .joined(entry)
                        }
                    }
                    try? lastCloseDuty(entry)  // nobody holds it, or its last holder is leaving
                    try transaction.delete(key)
                }
                guard var entry = candidate else {
                    throw RegistryError(
                        .notFound, operation: operation, path: name,
                        message: "no live map, region or mutex has this name")
                }
                entry.slot = try nextSlot(transaction)
                guard case .locked = try holds.enter(entry.slot, path: name, operation: operation) else {
                    throw RegistryError(
                        .ioError, operation: operation, path: name,
                        message: "the fresh slot \(entry.slot) of holders.lock is locked by another process")
                }
                taken = entry.slot
                try transaction.put(key, entry.encoded())
                return .created(entry)
            }
        } catch {
            giveBack()
            throw error
        }
    }

    /// Hands out the next slot, which no entry of this boot's registry has had.
    private func nextSlot(_ transaction: Transaction) throws(RegistryError) -> UInt64 {
        var next = Self.firstSlot
        if let bytes = try transaction.get(Self.nextSlotKey) {
            guard bytes.count == 8 else {
                throw RegistryError(
                    .corrupt, operation: "claim", path: directory, message: "the registry's slot counter is damaged")
            }
            next = bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
        }
        guard next >= Self.firstSlot, next < UInt64(Int64.max) else {
            throw RegistryError(
                .corrupt, operation: "claim", path: directory, message: "the registry's slot counter is out of range")
        }
        try transaction.put(Self.nextSlotKey, (0..<8).map { UInt8(truncatingIfNeeded: (next + 1) >> ($0 * 8)) })
        return next
    }

    /// Joins the live entry named `name` as one more handle of this process: what every
    /// `openExisting` does. Throws `notFound` if no live holder has the name.
    ///
    /// Writes nothing to the database unless the name was abandoned (see the top of
    /// Registry+Holders.swift).
    static func join(
        _ name: String, accepting kinds: [RegistryEntry.Kind], wanted: String, registry: Registry?, operation: String
    ) throws(RegistryError) -> (entry: RegistryEntry, membership: Membership) {
        try validate(name, operation: operation)
        let registry = try resolve(registry)
        let entry = try registry.joinHeld(name, accepting: kinds, wanted: wanted, operation: operation)
        return (entry, Membership(registry: registry, name: name, slot: entry.slot))
    }

    /// The join protocol: look up, hold, and check.
    private func joinHeld(
        _ name: String, accepting kinds: [RegistryEntry.Kind], wanted: String, operation: String
    ) throws(RegistryError) -> RegistryEntry {
        let key = Self.key(for: name)
        func lookUp() throws(RegistryError) -> RegistryEntry? {
            try environment.read { transaction throws(RegistryError) in
                try transaction.get(key).map { bytes throws(RegistryError) in
                    try RegistryEntry.decode(bytes, named: name)
                }
            }
        }
        var pause: UInt32 = 20
        while true {
            guard let entry = try lookUp() else {
                throw RegistryError(
                    .notFound, operation: operation, path: name, message: "no live map, region or mutex has this name")
            }
            guard kinds.contains(entry.kind) else {
                // Refused before it is held; an abandoned entry of another kind is not found.
                guard state(of: entry.slot) != .abandoned else { try collect(name, slot: entry.slot); continue }
                throw RegistryError(
                    .wrongKind, operation: operation, path: name,
                    message: "the name belongs to \(entry.kind.withArticle), not \(wanted)")
            }
            switch try holds.enter(entry.slot, path: name, operation: operation) {
            case .alreadyHeld:
                return entry  // this process holds it: it cannot be removed meanwhile
            case .busy:
                // Its last holder is removing it: look again when it is done.
                usleep(pause)
                pause = min(pause * 2, 5_000)
            case .locked(othersHold: true):
                // Alive when the hold was taken; the entry must still be the one with this slot.
                if let current = try lookUp(), current.slot == entry.slot { return entry }
                try release(name, slot: entry.slot)
            case .locked(othersHold: false):
                // Its holders died: clean up after them, as their last closer would have.
                try release(name, slot: entry.slot, forAbandoned: true)
            }
        }
    }

    /// Removes the abandoned entry `name` if it still has `slot`, doing its last-close duty.
    private func collect(_ name: String, slot: UInt64) throws(RegistryError) {
        guard case .locked(othersHold: false) = try holds.enter(slot, path: name, operation: "collect") else {
            if holds.leave(slot) { holds.finishLeaving(slot) }
            return
        }
        try release(name, slot: slot, forAbandoned: true)
    }

    /// `claim` with a new shared-memory object as the candidate. If the claim fails, or joins an
    /// existing entry instead, the candidate object is removed; an entry of a kind not in
    /// `kinds` is `wrongKind`, and the holder is not added.
    func claimSharedMemory(
        _ name: String, candidate: RegistryEntry, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind], wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        let claim: Claim
        do {
            claim = try self.claim(
                name, candidate: candidate, mustCreate: mustCreate, accepting: kinds, wanted: wanted,
                operation: operation)
        } catch {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
            throw error
        }
        if case .joined = claim {
            try? MemoryMappedFile.removeSharedMemory(systemName: candidate.object)
        }
        return claim
    }

    /// Gives up one handle's hold on `name`. If it was the last holder anywhere, removes the
    /// entry (if it still has `slot`) and then does the last-close duty, so that a failing fsync
    /// is reported to this closer. `forAbandoned`: the hold was taken on an entry whose holders
    /// died; its duty's failure has nobody to be reported to.
    ///
    /// If the removal's transaction fails, the entry stays, held by nobody: the next operation
    /// on the name, or ``collectGarbage()``, removes it and does the duty.
    func release(_ name: String, slot: UInt64, forAbandoned: Bool = false) throws(RegistryError) {
        guard holds.leave(slot) else { return }
        let finished: RegistryEntry?
        do {
            finished = try removeEntry(name, slot: slot)
        } catch {
            holds.finishLeaving(slot)
            throw error
        }
        holds.finishLeaving(slot)
        guard let finished else { return }
        if forAbandoned { try? lastCloseDuty(finished) } else { try lastCloseDuty(finished) }
    }

    /// The last holder's transaction: removes the entry `name` if it still has `slot`.
    private func removeEntry(_ name: String, slot: UInt64) throws(RegistryError) -> RegistryEntry? {
        let key = Self.key(for: name)
        return try environment.write { transaction throws(RegistryError) -> RegistryEntry? in
            guard let bytes = try transaction.get(key) else { return nil }
            let entry = try RegistryEntry.decode(bytes, named: name)
            guard entry.slot == slot else { return nil }  // removed and made anew meanwhile
            try transaction.delete(key)
            return entry
        }
    }
}
