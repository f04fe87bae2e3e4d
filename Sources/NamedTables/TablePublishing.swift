// Record tables by name: the glue between the table format (RecordTable) and the name
// registry (MappedRegistry), so that neither depends on the other. Apps that want named tables
// import this module; apps that embed tables need neither LMDB nor the registry.

import MappedRegistry
import MemoryMappedFiles
import RecordTable

/// A name published for a table file, independent of any table handle; the name lives while
/// this is open (or until its process dies). Most code wants `RecordTable.publish(as:registry:)`,
/// whose names live as long as the table.
public struct TablePublication: ~Copyable, Sendable {
    let named: NamedMemoryMappedFile

    /// Publishes the table file at `path` under `name`, for as long as the result is kept open.
    /// - Throws: `nameExists` if a live holder has the name; `invalidName`.
    public init(publishing path: String, as name: String, registry: Registry? = nil) throws(RegistryError) {
        named = try MemoryMappedFile.createFromFile(path: path, access: .read, name: name, registry: registry)
    }

    /// The published name.
    public var name: String { named.name }

    /// Withdraws the name (it also goes when the publisher's process dies).
    public consuming func close() throws(RegistryError) {
        try named.close()
    }
}

/// A name that a table keeps while it is open (`RecordTable.publish(as:registry:)`).
final class PublishedName: TableCompanion, @unchecked Sendable {
    // SAFETY (Sendable): used from the table's thread, as the table is.
    let name: String
    private var publication: TablePublication?

    init(_ publication: consuming TablePublication) {
        name = publication.name
        self.publication = Optional(publication)
    }

    /// Withdraws the name now; the table's close does it otherwise.
    func withdraw() throws(RegistryError) {
        if let publication = publication.take() { try publication.close() }
    }

    func tableDidClose() {
        try? withdraw()  // a failed release is retried by the registry before its next operation
    }
}

extension RecordTable {
    /// Publishes this table under `name`, so other processes can open it with
    /// ``open(name:access:durability:registry:)``. The table keeps the name until it closes
    /// (or its process dies); ``withdrawPublication(_:)`` withdraws it earlier. There is no
    /// handle to keep, so the name cannot vanish by accident.
    /// - Throws: `nameExists` if a live holder has the name; `invalidName`.
    public func publish(as name: String, registry: Registry? = nil) throws(RegistryError) {
        attach(PublishedName(try TablePublication(publishing: path, as: name, registry: registry)))
    }

    /// The names this table has published.
    public var publishedNames: [String] { companions.compactMap { ($0 as? PublishedName)?.name } }

    /// Withdraws a name this table published, before the table closes.
    /// Traps if the table did not publish `name`.
    public func withdrawPublication(_ name: String) throws(RegistryError) {
        guard let published = companions.lazy.compactMap({ $0 as? PublishedName }).first(where: { $0.name == name })
        else {
            preconditionFailure("RecordTable: this table did not publish the name '\(name)'")
        }
        detach(published)
        try published.withdraw()
    }

    /// Opens the table published under `name`.
    /// - Throws: `notFound` if no live publisher has the name, and every error of
    ///   ``open(path:access:durability:waitForWriter:)``.
    public static func open(
        name: String, access: TableAccess = .readOnly, durability: Durability = .batch, registry: Registry? = nil
    ) throws(RecordTableError) -> RecordTable {
        let path: String
        do {
            let registry = try Registry.resolve(registry)
            guard let entry = try registry.entry(named: name), entry.kind == .file,
                registry.holders(of: entry).isHeld
            else {
                throw RecordTableError(
                    .notFound, operation: "open(name:)", path: name,
                    message: "no live table is published under this name")
            }
            path = entry.object
        } catch let error as RecordTableError {
            throw error
        } catch let error as RegistryError {
            throw RecordTableError(
                RecordTableError.Code(registryCode: error.code), operation: "open(name:)", path: name,
                systemCall: error.systemCall, errno: error.errno, message: "the registry failed: \(error.message)",
                cause: error)
        } catch {
            preconditionFailure("RecordTable.open(name:): unexpected error \(error)")
        }
        return try open(path: path, access: access, durability: durability)
    }
}

extension RecordTableError.Code {
    /// The table code for a registry failure while looking up a name.
    init(registryCode code: RegistryError.Code) {
        switch code {
        case .notFound, .backingObjectMissing: self = .notFound
        case .permissionDenied: self = .permissionDenied
        case .noSpace: self = .noSpace
        case .invalidName: self = .invalidArgument
        default: self = .ioError
        }
    }
}
