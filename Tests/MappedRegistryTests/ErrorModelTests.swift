import CLMDB
import Glibc
import MappedRegistry
import MemoryMappedFiles
import NamedTables
import RecordTable
import TestSupport
import Testing

/// One error model for the three layers: the same field names, codes that match in `catch`
/// clauses, LMDB codes apart from errnos, and a wrapped error kept whole as the `cause`.
@Suite("One error model across the layers", .timeLimit(.minutes(3)))
struct ErrorModelTests {
    let directory = TemporaryDirectory()
    var registryPath: String { directory.file("registry") }

    @Test("each layer's codes match directly in catch clauses")
    func codesMatchInCatch() throws {
        var matched: [String] = []
        do {
            _ = try MemoryMappedFile.createFromFile(path: directory.file("missing"), mode: .open)
        } catch MappedFileError.notFound {
            matched.append("map")
        } catch {
            Issue.record("expected notFound, got \(error)")
        }

        let path = directory.file("table.mrec")
        let writer = try RecordTable<Sample>.create(path: path)
        do {
            _ = try RecordTable<Sample>.open(path: path, access: .readWrite, waitForWriter: .zero)
        } catch RecordTableError.notFound {
            Issue.record("a writerActive error matched notFound")
        } catch RecordTableError.writerActive {
            matched.append("table")
        } catch {
            Issue.record("expected writerActive, got \(error)")
        }
        try writer.close()

        let registry = try Registry.open(directory: registryPath)
        do {
            _ = try MemoryMappedFile.openExisting(name: "nobody-made-this", registry: registry)
        } catch RegistryError.notFound {
            matched.append("registry")
        } catch {
            Issue.record("expected notFound, got \(error)")
        }
        #expect(matched == ["map", "table", "registry"])
    }

    @Test("a table error keeps the mapping layer's error, with its code and operation, as its cause")
    func tableErrorKeepsCause() throws {
        let error = try #require(tableError { try RecordTable<Sample>.open(path: directory.path, access: .readWrite) })
        #expect(error.code == .isDirectory)
        #expect(error.path == directory.path && error.operation == "open")
        let cause = try #require(error.cause as? MappedFileError, "\(error)")
        #expect(cause.code == .isDirectory && cause.systemCall == "open" && cause.errno == EISDIR)
        #expect(cause.operation != error.operation)  // the lower layer's own operation survives
        #expect(error.errno == EISDIR && error.systemCall == "open")
        #expect((error.rootCause as? MappedFileError)?.code == .isDirectory)
        #expect(error.debugDescription.contains("\n  caused by: \(cause.operation) '\(directory.path)'"))
    }

    @Test("a registry error keeps the mapping layer's error; a table opened by name keeps the registry's")
    func registryErrorKeepsCause() throws {
        let registry = try Registry.open(directory: registryPath)
        let backing = directory.file("backing")
        let named = try MemoryMappedFile.createFromFile(
            path: backing, mode: .createNew, capacity: 4096, name: "backed", registry: registry)
        #expect(unlink(backing) == 0)
        let error = try #require(
            registryError { try MemoryMappedFile.openExisting(name: "backed", registry: registry) })
        #expect(error.code == .backingObjectMissing && error.errno == ENOENT && error.lmdbCode == nil)
        let cause = try #require(error.cause as? MappedFileError, "\(error)")
        #expect(cause.code == .notFound && cause.path == backing && cause.errno == ENOENT)
        try named.close()

        // RecordTable.open(name:) reports a registry failure as a table error and keeps it whole.
        let failure = try #require(tableError { try RecordTable<Sample>.open(name: "", registry: registry) })
        #expect(failure.code == .invalidArgument && failure.operation == "open(name:)", "\(failure)")
        let registryCause = try #require(failure.cause as? RegistryError, "\(failure)")
        #expect(registryCause.code == .invalidName && registryCause.operation == "entry(named:)")
    }

    @Test("LMDB's own codes are kept apart from errno")
    func lmdbCodesAreNotErrnos() throws {
        let damaged = directory.file("damaged")
        makeDamagedRegistry(at: damaged)
        let error = try #require(registryError { try Registry.open(directory: damaged) })
        #expect(error.code == .corrupt)
        #expect(error.lmdbCode == MDB_INVALID && error.errno == nil, "\(error)")
        #expect(error.systemCall == "mdb_env_open")
        #expect(error.description.hasSuffix("LMDB code \(MDB_INVALID))"), "\(error)")

        let notDirectory = directory.file("plain-file")
        writeFile(notDirectory, [1])
        let denied = try #require(registryError { try Registry.open(directory: notDirectory) })
        #expect(denied.code == .permissionDenied && denied.lmdbCode == nil)
    }

    @Test("every layer's error reads the same through any MappedRecordsError")
    func oneVocabulary() throws {
        func details(_ body: () throws -> Void) -> (operation: String, message: String)? {
            do {
                try body()
                return nil
            } catch let error as any MappedRecordsError {
                return (error.operation, error.message)
            } catch {
                Issue.record("not a MappedRecordsError: \(error)")
                return nil
            }
        }
        let map = details { _ = try MemoryMappedFile.createFromFile(path: directory.file("none"), mode: .open) }
        let table = details { _ = try RecordTable<Sample>.open(path: directory.file("none")) }
        let registry = details {
            _ = try MemoryMappedFile.openExisting(name: "none", registry: try Registry.open(directory: registryPath))
        }
        #expect(map?.operation == "createFromFile" && map?.message == "the file does not exist")
        #expect(table?.operation == "open" && table?.message == "the file does not exist")
        #expect(registry?.operation == "openExisting" && registry?.message.isEmpty == false)
    }
}
