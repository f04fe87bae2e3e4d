import MemoryMappedFiles
import RecordTable

/// A record table published under a name; the name lives while this is open.
public struct TablePublication: ~Copyable, Sendable {
    let named: NamedMemoryMappedFile

    /// The published name.
    public var name: String { named.name }

    /// Withdraws the name (it also goes when the publisher's process dies).
    public consuming func close() throws(RegistryError) {
        try named.close()
    }
}

extension RecordTable {
    /// Publishes this table under `name`, so other processes can open it with
    /// ``open(name:access:registry:)``. The name stays while the returned publication is open.
    public func publish(as name: String, registry: Registry? = nil) throws(RegistryError) -> TablePublication {
        TablePublication(named: try MemoryMappedFile.createFromFile(path: path, access: .read, name: name, registry: registry))
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
                  registry.holders(of: entry).contains(where: \.isAlive) else {
                throw RecordTableError(.notFound, operation: "open(name:)", path: name, message: "no live table is published under this name")
            }
            path = entry.object
        } catch let error as RecordTableError {
            throw error
        } catch {
            throw RecordTableError(.ioError, operation: "open(name:)", path: name, message: "the registry failed: \(error)")
        }
        return try open(path: path, access: access, durability: durability)
    }
}
