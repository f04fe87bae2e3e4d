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
    }

    /// Atomically adds `holder` to the live entry named `name`, or, if there is none and
    /// `candidate` is given, stores `candidate` as the new entry. A stale entry (no live
    /// holder) gets its last-close duty first.
    /// - Parameter kinds: The kinds the caller can use; a live entry of another kind is
    ///   `wrongKind`, refused before `holder` is added, so a failed open registers nothing.
    func claim(
        _ name: String, holder: UInt64, candidate: RegistryEntry?, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind],
        wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        retryPendingReleases()
        let key = Self.key(for: name)
        return try environment.write { transaction throws(RegistryError) in
            if let bytes = try transaction.get(key) {
                var entry = try RegistryEntry.decode(bytes, named: name)
                entry.holders.removeAll { !isAlive($0) }
                if !entry.holders.isEmpty {
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
                    entry.holders.append(holder)
                    try transaction.put(key, entry.encoded())
                    return .joined(entry)
                }
                try? lastCloseDuty(entry)  // its holders all died: clean up after them
                try transaction.delete(key)
            }
            guard var entry = candidate else {
                throw RegistryError(
                    .notFound, operation: operation, path: name,
                    message: "no live map, region or mutex has this name")
            }
            entry.holders = [holder]
            try transaction.put(key, entry.encoded())
            return .created(entry)
        }
    }

    /// Joins the live entry named `name` as a new holder: what every `openExisting` does.
    /// Throws `notFound` if no live holder has the name.
    static func join(
        _ name: String, accepting kinds: [RegistryEntry.Kind], wanted: String, registry: Registry?, operation: String
    ) throws(RegistryError) -> (entry: RegistryEntry, membership: Membership) {
        try validate(name, operation: operation)
        let registry = try resolve(registry)
        let holder = try registry.acquireHolder()
        guard
            case .joined(let entry) = try registry.claim(
                name, holder: holder.id, candidate: nil, mustCreate: false, accepting: kinds, wanted: wanted,
                operation: operation)
        else {
            preconditionFailure("claim without a candidate always joins")
        }
        return (entry, Membership(registry: registry, name: name, holder: holder))
    }

    /// `claim` with a new shared-memory object as the candidate. If the claim fails, or joins an
    /// existing entry instead, the candidate object is removed; an entry of a kind not in
    /// `kinds` is `wrongKind`, and the holder is not added.
    func claimSharedMemory(
        _ name: String, holder: UInt64, candidate: RegistryEntry, mustCreate: Bool,
        accepting kinds: [RegistryEntry.Kind], wanted: String, operation: String
    ) throws(RegistryError) -> Claim {
        let claim: Claim
        do {
            claim = try self.claim(
                name, holder: holder, candidate: candidate, mustCreate: mustCreate, accepting: kinds, wanted: wanted,
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

    /// Removes `holder` from `name`; if no live holder is left, does the last-close duty
    /// (after the commit, so that a failing fsync is reported to this closer).
    ///
    /// If the transaction fails, the release is kept and retried before this process's next
    /// registry operation: the process's holder lock lives on, so the name would otherwise stay.
    func release(_ name: String, holder: UInt64) throws(RegistryError) {
        retryPendingReleases()
        let finished: RegistryEntry?
        do {
            finished = try removeHolder(name, holder: holder)
        } catch {
            pendingReleases.withLock { $0.append((name, holder)) }
            throw error
        }
        if let finished { try lastCloseDuty(finished) }
    }

    /// The release transaction; returns the entry if this was its last live holder.
    private func removeHolder(_ name: String, holder: UInt64) throws(RegistryError) -> RegistryEntry? {
        let key = Self.key(for: name)
        return try environment.write { transaction throws(RegistryError) -> RegistryEntry? in
            guard let bytes = try transaction.get(key) else { return nil }
            var entry = try RegistryEntry.decode(bytes, named: name)
            // One membership goes: a process that joined a name twice is listed twice.
            if let mine = entry.holders.firstIndex(of: holder) { entry.holders.remove(at: mine) }
            entry.holders.removeAll { !isAlive($0) }
            if entry.holders.isEmpty {
                try transaction.delete(key)
                return entry
            }
            try transaction.put(key, entry.encoded())
            return nil
        }
    }

    /// Retries releases whose transaction failed earlier (see ``release(_:holder:)``).
    func retryPendingReleases() {
        let pending = pendingReleases.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        for (name, holder) in pending {
            do {
                if let finished = try removeHolder(name, holder: holder) { try? lastCloseDuty(finished) }
            } catch {
                pendingReleases.withLock { $0.append((name, holder)) }
            }
        }
    }
}
