import Glibc
import MemoryMappedFiles
import NamedTables
import RecordTable
import TestSupport
import Testing

@testable import MappedRegistry

/// Regression tests for issue #12, items 1, 2, 3 and 8. The attacks run as two real users:
/// root, and uid 65534 (nobody), which a helper process becomes with setuid.
@Suite("registry security: owners, symbolic links, access, a full disk")
struct RegistrySecurityTests {
    let directory = TemporaryDirectory()

    /// Lets uid 65534 create entries in the test's directory (sticky, like /tmp).
    func openDirectoryToOthers() {
        #expect(chmod(directory.path, 0o1777) == 0)
    }

    @Test("root refuses a registry that another user created and published into")
    func rootRefusesAnotherUsersRegistry() throws {
        guard isRoot else {
            print("skipped: needs root to act as two users (root and uid 65534)")
            return
        }
        openDirectoryToOthers()
        let victim = directory.file("root-owned.data")
        writeFile(victim, Array(repeating: 0x11, count: 4096), mode: 0o644)
        let registryPath = directory.file("planted-registry")
        let attacker = ChildProcess(helper("publish-as-nobody", registryPath, "victim", victim))
        #expect(attacker.readLine() == "published")
        #expect(fileStatus(registryPath)?.st_uid == 65534)

        let error = registryError { try Registry.open(directory: registryPath) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("belongs to user 65534") == true, "\(String(describing: error))")
        #expect(preadBytes(victim, offset: 0, count: 1) == [0x11])
        attacker.writeLine("done")
        #expect(attacker.wait() == .exited(0))
        // The attacker's registry holds no live names now; nothing of it is left in /dev/shm.
    }

    @Test("root refuses a symbolic link planted at the registry path, and creates nothing where it points")
    func rootRefusesPlantedSymlink() throws {
        guard isRoot else {
            print("skipped: needs root to act as two users (root and uid 65534)")
            return
        }
        openDirectoryToOthers()
        let target = directory.file("root-only")
        #expect(mkdir(target, 0o700) == 0)
        let link = directory.file("registry-link")
        let (end, output) = run(helper("symlink-as-nobody", target, link))
        #expect(end == .exited(0) && output == "planted")

        let error = registryError { try Registry.open(directory: link) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("symbolic link") == true, "\(String(describing: error))")
        #expect(directoryListing(target) == [], "the registry created files through the link")
    }

    @Test("a symbolic link is refused even when the same user planted it, and so is a writable directory")
    func symlinkAndWritableDirectory() throws {
        let real = directory.file("real")
        #expect(mkdir(real, 0o700) == 0)
        let link = directory.file("link")
        #expect(symlink(real, link) == 0)
        #expect(registryError { try Registry.open(directory: link) }?.code == .permissionDenied)
        #expect(directoryListing(real) == [])

        let open = directory.file("group-writable")
        #expect(mkdir(open, 0o700) == 0 && chmod(open, 0o770) == 0)
        let error = registryError { try Registry.open(directory: open) }
        #expect(error?.code == .permissionDenied)
        #expect(error?.message.contains("mode 0770") == true, "\(String(describing: error))")
    }

    @Test("a name published .read opens .read by default, and .readWrite is permissionDenied")
    func openExistingHonoursTheCreatorsAccess() throws {
        let registry = try Registry.open(directory: directory.file("registry"))
        let path = directory.file("shared.data")
        writeFile(path, Array(repeating: 5, count: 4096))
        let published = try MemoryMappedFile.createFromFile(
            path: path, access: .read, name: "readonly", registry: registry)

        let denied = registryError {
            try MemoryMappedFile.openExisting(name: "readonly", access: .readWrite, registry: registry)
        }
        #expect(denied?.code == .permissionDenied)
        #expect(denied?.message.contains(".read access") == true)
        let opened = try MemoryMappedFile.openExisting(name: "readonly", registry: registry)
        #expect(opened.map.access == .read)
        // Copy-on-write needs only read: its writes stay in this process.
        let private_ = try MemoryMappedFile.openExisting(name: "readonly", access: .copyOnWrite, registry: registry)
        var view = try private_.makeViewAccessor()
        view.write(UInt8(9), at: 0)
        #expect(preadBytes(path, offset: 0, count: 1) == [5])
        try view.close()
        try private_.close()
        try opened.close()

        let writable = try MemoryMappedFile.createNew(name: "rw", capacity: 4096, registry: registry)
        #expect(
            registryError {
                try MemoryMappedFile.openExisting(name: "rw", access: .readWriteExecute, registry: registry)
            }?.code == .permissionDenied)
        #expect(try MemoryMappedFile.openExisting(name: "rw", registry: registry).map.access == .readWrite)
        try writable.close()
        try published.close()
    }

    @Test("a new registry on a full file system is noSpace, never a SIGBUS inside liblmdb")
    func fullFileSystem() throws {
        let mounted = withSmallFileSystem(in: directory, size: "256k") { mountPoint in
            // Fill the file system, leaving room for directories and empty files only.
            let filler = mountPoint + "/filler"
            let descriptor = open(filler, O_CREAT | O_WRONLY | O_CLOEXEC, 0o600)
            let chunk = [UInt8](repeating: 1, count: 4096)
            while chunk.withUnsafeBytes({ write(descriptor, $0.baseAddress, $0.count) }) > 0 {}
            close(descriptor)
            let (end, output) = run(helper("registry-open", mountPoint + "/registry"))
            #expect(end == .exited(3), "the helper ended \(end): \(output)")
            #expect(output == "error noSpace")
        }
        if !mounted { print("skipped: needs root to mount a small tmpfs") }
    }
}

/// Issue #14: a table published by name keeps its name through a migration.
@Suite("a published table after a migration")
struct PublishedMigrationTests {
    let directory = TemporaryDirectory()

    @Test("the name finds the migrated table: new openers get the new file while the publisher still holds the name")
    func nameAfterMigration() throws {
        let registryPath = directory.file("registry")
        let path = directory.file("published.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<100).map { Sample(id: Int64($0)) })
        try table.close()
        let publisher = ChildProcess(helper("table-publish-hold", registryPath, path, "samples"))
        #expect(publisher.readLine() == "published")
        let wider = try RecordSchema(parsing: "id:i64,value:f64,check:u64,flag:bool,tag:char[16],extra:u32")
        try TableMigration.migrate(path: path, to: wider)

        let registry = try Registry.open(directory: registryPath)
        let entry = try #require(try registry.entry(named: "samples"))
        let reopened = try DynamicRecordTable.open(path: entry.object)
        #expect(reopened.schema == wider && reopened.count == 100)
        #expect(
            tableError { try RecordTable<Sample>.open(name: "samples", registry: registry) }?.code == .schemaMismatch)
        publisher.writeLine("done")
        #expect(publisher.wait() == .exited(0))
    }
}

/// Issue #17: named maps created and opened with every access .NET allows.
@Suite("named maps: creation access and argument errors")
struct NamedCreationTests {
    let directory = TemporaryDirectory()

    @Test(
        "createOrOpen(.read) opens an existing map; named shared memory can be created .read, .readExecute and .copyOnWrite"
    )
    func readOnlyNames() throws {
        let registry = try Registry.open(directory: directory.file("registry"))
        let writer = try MemoryMappedFile.createNew(name: "data", capacity: 4096, registry: registry)
        var view = try writer.makeViewAccessor()
        view.write(UInt64(42), at: 0)
        let reader = try MemoryMappedFile.createOrOpen(name: "data", capacity: 4096, access: .read, registry: registry)
        #expect(reader.map.access == .read)
        #expect(try reader.makeViewAccessor().read(UInt64.self, at: 0) == 42)
        try reader.close()
        try view.close()
        try writer.close()

        for (index, access) in [MemoryMappedFileAccess.read, .readExecute, .copyOnWrite].enumerated() {
            let named = try MemoryMappedFile.createNew(
                name: "made-\(index)", capacity: 8192, access: access, registry: registry)
            #expect(named.map.access == access && named.capacity == 8192)
            #expect(try named.makeViewAccessor().read(UInt64.self, at: 8184) == 0)
            #expect(
                registryError {
                    try MemoryMappedFile.openExisting(name: "made-\(index)", access: .readWrite, registry: registry)
                }?.code == .permissionDenied)
            try named.close()
        }
    }

    @Test("bad arguments of named calls are argument errors, not ioError")
    func argumentErrors() throws {
        let registry = try Registry.open(directory: directory.file("registry"))
        #expect(
            registryError { try MemoryMappedFile.createNew(name: "zero", capacity: 0, registry: registry) }?.code
                == .invalidCapacity)
        #expect(
            registryError { try MemoryMappedFile.createOrOpen(name: "negative", capacity: -1, registry: registry) }?
                .code == .invalidCapacity)
        #expect(
            registryError {
                try MemoryMappedFile.createNew(name: "wo", capacity: 4096, access: .write, registry: registry)
            }?.code == .invalidAccess)
        #expect(
            registryError {
                try MemoryMappedFile.createOrOpen(name: "wo", capacity: 4096, access: .write, registry: registry)
            }?.code == .invalidAccess)
        #expect(
            registryError {
                try MemoryMappedFile.createNew(
                    name: "opts", capacity: 4096, options: MemoryMappedFileOptions(rawValue: 1 << 9), registry: registry
                )
            }?.code == .invalidAccess)
        #expect(
            registryError { try MemoryMappedFile.createNew(name: "", capacity: 4096, registry: registry) }?.code
                == .invalidName)
    }
}

/// Issue #17: long names and .NET's prefixes.
@Suite("names of up to 4096 bytes")
struct LongNameTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }

    @Test("a 1,032-character name and local/ global/ prefixes work across two processes")
    func longNamesAcrossProcesses() throws {
        let registry = try Registry.open(directory: registryPath)
        for name in [
            String(repeating: "n", count: 1032), "local/testmap", "global/testmap",
            "ü" + String(repeating: "x", count: 399),
        ] {
            let created = try MemoryMappedFile.createNew(name: name, capacity: 4096, registry: registry)
            let (end, output) = run(helper("named-write", registryPath, name, "8", "77"))
            #expect(end == .exited(0), "\(output)")
            #expect(try created.makeViewAccessor().read(UInt64.self, at: 8) == 77)
            #expect(try registry.entries().contains { $0.name == name })
            try created.close()
            #expect(
                registryError { try MemoryMappedFile.openExisting(name: name, registry: registry) }?.code == .notFound)
        }
    }

    @Test("a name past 4096 bytes, or with NUL, is invalidName; two long names that share a key are told apart")
    func limitsAndCollisions() throws {
        let registry = try Registry.open(directory: registryPath)
        #expect(
            registryError {
                try MemoryMappedFile.createNew(
                    name: String(repeating: "x", count: 4097), capacity: 4096, registry: registry)
            }?.code == .invalidName)
        #expect(
            registryError { try MemoryMappedFile.createNew(name: "a\u{0}b", capacity: 4096, registry: registry) }?.code
                == .invalidName)
        #expect(
            try MemoryMappedFile.createNew(
                name: String(repeating: "y", count: 4096), capacity: 4096, registry: registry
            ).capacity == 4096)

        // Force a collision: store another name's entry under this long name's key.
        let wanted = String(repeating: "w", count: 500)
        let other = try MemoryMappedFile.createNew(
            name: String(repeating: "o", count: 500), capacity: 4096, registry: registry)
        let stored = try #require(try registry.entry(named: other.name))
        try registry.environment.write { transaction throws(RegistryError) in
            try transaction.put(Registry.key(for: wanted), stored.encoded())
        }
        let error = registryError { try MemoryMappedFile.openExisting(name: wanted, registry: registry) }
        #expect(
            error?.code == .nameExists && error?.message.contains("hash collision") == true,
            "\(String(describing: error))")
        try other.close()
    }
}
