import MemoryMappedFiles

/// A small shared-memory object that the registry names: the memory behind a named mutex or
/// a named event. It is fully initialized before the registry can hand it to anyone.
struct SmallNamedObject: ~Copyable {
    var named: NamedMemoryMappedFile
    var view: MappedViewAccessor
    let createdNew: Bool

    /// Joins the object named `name`, which must be of `kind`; `notFound` if there is none.
    static func openExisting(
        _ name: String, kind: RegistryEntry.Kind, size: Int, registry: Registry?, operation: String
    ) throws(RegistryError) -> SmallNamedObject {
        let (entry, membership) = try Registry.join(
            name, accepting: [kind], wanted: kind.withArticle, registry: registry, operation: operation)
        let map = try mapping(operation: operation, path: name) { () throws(MappedFileError) in
            try MemoryMappedFile.openSharedMemory(systemName: entry.object)
        }
        let named = NamedMemoryMappedFile(
            name: name, map: map, regionOffset: 0, regionLength: size, membership: membership)
        let view = try named.makeViewAccessor()
        return SmallNamedObject(named: named, view: view, createdNew: false)
    }

    /// Creates the object (`initialize` fills a fresh one) or, unless `mustCreate`, joins the
    /// one that has the name.
    static func openOrCreate(
        _ name: String, kind: RegistryEntry.Kind, size: Int, mustCreate: Bool, registry: Registry?, operation: String,
        initialize: (UnsafeMutableRawBufferPointer) throws(RegistryError) -> Void
    ) throws(RegistryError) -> SmallNamedObject {
        try Registry.validate(name, operation: operation)
        let registry = try Registry.resolve(registry)
        let systemName = registry.freshSystemName()
        let candidate = try mapping(operation: operation, path: name) { () throws(MappedFileError) in
            try MemoryMappedFile.createSharedMemory(systemName: systemName, mode: .createNew, capacity: size)
        }
        let candidateView: MappedViewAccessor
        do {
            candidateView = try mappedView(candidate, operation: operation, path: name)
        } catch {
            try? MemoryMappedFile.removeSharedMemory(systemName: systemName)  // no one else knows it
            throw error
        }
        do {
            try unsafe candidateView.withUnsafeMutableBytes { (bytes) throws(RegistryError) in
                try unsafe initialize(bytes)
            }
        } catch {
            try? MemoryMappedFile.removeSharedMemory(systemName: systemName)  // no one else knows it
            throw error
        }
        let entry = RegistryEntry(
            name: name, kind: kind, object: systemName, offset: 0, length: size,
            access: .readWrite, createdNanoseconds: realtimeNanoseconds(), slot: 0)
        let claim = try registry.claimSharedMemory(
            name, candidate: entry, mustCreate: mustCreate, accepting: [kind],
            wanted: kind.withArticle, operation: operation)
        let membership = Membership(registry: registry, name: name, slot: claim.entry.slot)
        switch claim {
        case .created:
            let named = NamedMemoryMappedFile(
                name: name, map: candidate, regionOffset: 0, regionLength: size, membership: membership)
            return SmallNamedObject(named: named, view: candidateView, createdNew: true)
        case .joined(let existing):
            let map = try mapping(operation: operation, path: name) { () throws(MappedFileError) in
                try MemoryMappedFile.openSharedMemory(systemName: existing.object)
            }
            let named = NamedMemoryMappedFile(
                name: name, map: map, regionOffset: 0, regionLength: size, membership: membership)
            let view = try named.makeViewAccessor()
            return SmallNamedObject(named: named, view: view, createdNew: false)
        }
    }
}
