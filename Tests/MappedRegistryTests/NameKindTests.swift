import Glibc
import MemoryMappedFiles
import TestSupport
import Testing

@testable import MappedRegistry

// Issue #24 item 7: an open of the wrong kind registers nothing. Issue #28 item 3:
// createOrOpen of a name a file map holds opens that map, as .NET's CreateOrOpen does.

@Suite("Names of one kind, opened as another", .serialized, .timeLimit(.minutes(3)))
final class NameKindTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }
    func registry() throws -> Registry { try Registry.open(directory: registryPath) }
    deinit { _ = try? Registry.open(directory: registryPath).collectGarbage() }

    /// The four kinds of named object, each made under `name` and kept until `close` runs.
    enum Kind: String, CaseIterable { case sharedMemory, file, mutex, event }

    /// Creates an object of `kind` named `name`; returns what closes it.
    func make(_ kind: Kind, named name: String, registry: Registry) throws -> () throws -> Void {
        switch kind {
        case .sharedMemory:
            let map = try MemoryMappedFile.createNew(name: name, capacity: 4096, registry: registry)
            let box = Box(map)
            return { try box.take().close() }
        case .file:
            let path = directory.file(name + ".data")
            writeFile(path, Array(repeating: 0, count: 4096))
            let map = try MemoryMappedFile.createFromFile(path: path, name: name, registry: registry)
            let box = Box(map)
            return { try box.take().close() }
        case .mutex:
            let mutex = Box(try NamedMutex(name: name, registry: registry))
            return { _ = mutex.take() }
        case .event:
            let event = Box(try NamedEvent(name: name, mode: .manualReset, registry: registry))
            return { _ = event.take() }
        }
    }

    /// Every way to open or create an object of `kind` by name; each returns after closing what it opened.
    func openers(registry: Registry) -> [(String, Kind, (String) throws -> Void)] {
        [
            (
                "createOrOpen(name:)", .sharedMemory,
                { name in
                    try MemoryMappedFile.createOrOpen(name: name, capacity: 4096, registry: registry).close()
                }
            ),
            (
                "openExisting(name:)", .sharedMemory,
                { name in
                    try MemoryMappedFile.openExisting(name: name, registry: registry).close()
                }
            ),
            ("NamedMutex(name:)", .mutex, { name in _ = try NamedMutex(name: name, registry: registry) }),
            (
                "NamedMutex.openExisting", .mutex,
                { name in _ = try NamedMutex.openExisting(name: name, registry: registry) }
            ),
            (
                "NamedEvent(name:)", .event,
                { name in
                    _ = try NamedEvent(name: name, mode: .autoReset, registry: registry)
                }
            ),
            (
                "NamedEvent.openExisting", .event,
                { name in _ = try NamedEvent.openExisting(name: name, registry: registry) }
            ),
        ]
    }

    /// Whether an opener for `opener` kind may open a name of `existing` kind.
    func fits(_ opener: Kind, _ existing: Kind) -> Bool {
        opener == existing || (opener == .sharedMemory && existing == .file)
    }

    @Test("a failed open of the wrong kind leaves no holder behind: every pair of kinds")
    func wrongKindRegistersNothing() throws {
        let registry = try registry()
        var pairs = 0
        for existing in Kind.allCases {
            for (label, openerKind, open) in openers(registry: registry) where !fits(openerKind, existing) {
                let name = "k-\(existing.rawValue)-\(pairs)"
                let close = try make(existing, named: name, registry: registry)
                let shmBefore = Set(directoryListing("/dev/shm") ?? [])
                let error = registryError { try open(name) }
                #expect(error?.code == .wrongKind, "\(label) on \(existing): \(String(describing: error))")
                #expect(
                    error?.message.contains(" a event") == false && error?.message.contains("belongs to") == true,
                    "\(String(describing: error?.message))")
                #expect(
                    try registry.entry(named: name).map { registry.holders(of: $0).handlesInThisProcess } == 1,
                    "\(label) on \(existing) registered a holder")
                try close()
                // The last real holder closed: the name and its object are gone.
                #expect(try registry.entry(named: name) == nil, "\(label) on \(existing): the name outlived its holder")
                // Only this registry's objects: other suites make their own meanwhile.
                let left = Set(directoryListing("/dev/shm") ?? []).subtracting(shmBefore)
                    .filter { $0.contains(".\(registry.objectTag).") }
                #expect(left.isEmpty, "\(label) on \(existing) left \(left)")
                pairs += 1
            }
        }
        #expect(pairs == 16)
    }

    @Test("createOrOpen(name:) of a name a file map holds opens that map, as .NET does")
    func createOrOpenJoinsAFileMap() throws {
        let registry = try registry()
        let path = directory.file("published.data")
        writeFile(path, Array(repeating: 0, count: 8192))
        let publisher = try MemoryMappedFile.createFromFile(
            path: path, name: "published", regionOffset: 4096, regionLength: 4096, registry: registry)
        var view = try publisher.makeViewAccessor()
        view.write(UInt64(0xFEED), at: 8)
        let joined = try MemoryMappedFile.createOrOpen(name: "published", capacity: 100, registry: registry)
        let other = try joined.makeViewAccessor()
        #expect(other.capacity == 4096)
        #expect(other.read(UInt64.self, at: 8) == 0xFEED)
        #expect(try registry.entry(named: "published").map { registry.holders(of: $0).handlesInThisProcess } == 2)
        try other.close()
        try joined.close()
        try view.close()
        try publisher.close()
    }

    @Test("write-only access is refused by createNew, createOrOpen and openExisting alike, registering nothing")
    func writeOnlyIsRefusedEverywhere() throws {
        let registry = try registry()
        let map = try MemoryMappedFile.createNew(name: "shared", capacity: 4096, registry: registry)
        let calls: [(String, () throws -> Void)] = [
            (
                "createNew",
                {
                    try MemoryMappedFile.createNew(name: "other", capacity: 4096, access: .write, registry: registry)
                        .close()
                }
            ),
            (
                "createOrOpen",
                {
                    try MemoryMappedFile.createOrOpen(
                        name: "shared", capacity: 4096, access: .write, registry: registry
                    ).close()
                }
            ),
            (
                "openExisting",
                { try MemoryMappedFile.openExisting(name: "shared", access: .write, registry: registry).close() }
            ),
        ]
        for (label, call) in calls {
            #expect(registryError { try call() }?.code == .invalidAccess, "\(label)")
        }
        #expect(try registry.entry(named: "shared").map { registry.holders(of: $0).handlesInThisProcess } == 1)
        #expect(try registry.entry(named: "other") == nil)
        try map.close()
    }

    @Test("a mutex whose memory another process damaged is a thrown corrupt, never a trap")
    func damagedMutexThrows() throws {
        let registry = try registry()
        let mutex = try NamedMutex(name: "scribbled", registry: registry)
        let object = try #require(try registry.entry(named: "scribbled")?.object)
        // As a hostile peer would: the mutex's kind word (glibc: bytes 16-19) made nonsense.
        let descriptor = open("/dev/shm/" + object, O_RDWR)
        var nonsense: UInt32 = 0x7F  // a type no pthread function knows: EINVAL
        #expect(pwrite(descriptor, &nonsense, 4, 16) == 4)
        close(descriptor)
        for (label, attempt) in [
            ("tryLock", { _ = try mutex.tryLock() }),
            ("lock(timeout:)", { _ = try mutex.lock(timeout: .milliseconds(50)) }),
            ("lock", { _ = try mutex.lock() }), ("unlock", { try mutex.unlock() }),
        ] as [(String, () throws -> Void)] {
            let error = registryError { try attempt() }
            #expect(error?.code == .corrupt, "\(label): \(String(describing: error))")
        }
    }

    @Test("createFromFile(name:) of a region past the file's end is an error, not a trap")
    func regionPastTheEnd() throws {
        let registry = try registry()
        let path = directory.file("short.data")
        writeFile(path, Array(repeating: 0, count: 4096))
        let error = registryError {
            try MemoryMappedFile.createFromFile(
                path: path, name: "short", regionOffset: 4096, regionLength: 4096, registry: registry)
        }
        #expect(error?.code == .invalidCapacity && error?.message.contains("outside the file") == true)
        #expect(try registry.entry(named: "short") == nil)
    }
}

/// Holds a non-copyable value until `take()` moves it out.
final class Box<Value: ~Copyable> {
    private var value: Value?
    init(_ value: consuming Value) { self.value = .some(value) }
    func take() -> Value {
        guard let value = value.take() else { preconditionFailure("Box: taken twice") }
        return value
    }
}
