import Glibc
import MemoryMappedFiles

/// A record type that knows its schema version, for versioned migration plans.
public protocol VersionedRecord: MappedRecord {
    /// The version of this record's schema: 1, 2, 3…. A table of this type records it in its
    /// metadata under ``TableMigration/versionKey``.
    static var schemaVersion: Int { get }
}

/// A record type that gives fields added by a migration their values: added fields copy their
/// bytes from ``migrationDefault`` instead of being zero.
public protocol RecordDefaults: MappedRecord {
    /// A record whose values of added fields are the defaults.
    static var migrationDefault: Self { get }
}

/// The ordered versions of a record type and the stages between them, as SwiftData's
/// `SchemaMigrationPlan` has: a table at any older version migrates through each stage in turn.
///
/// ```swift
/// enum TradePlan: RecordMigrationPlan {
///     typealias Current = TradeV3
///     static let stages: [MigrationStage] = [
///         .lightweight(from: TradeV1.self, to: TradeV2.self),
///         .custom(from: TradeV2.self, to: TradeV3.self) { old in TradeV3(id: old.id, notional: old.price * Double(old.qty)) },
///     ]
/// }
/// try RecordTable<TradeV3>.migrate(path: "trades.mrec", plan: TradePlan.self)
/// ```
public protocol RecordMigrationPlan {
    /// The newest version.
    associatedtype Current: VersionedRecord
    /// The stages, from the oldest version to `Current`.
    static var stages: [MigrationStage] { get }
}

/// One step of a ``RecordMigrationPlan``: from one schema version to the next.
public struct MigrationStage: Sendable {
    let fromVersion: Int
    let toVersion: Int
    let fromSchema: RecordSchema
    let toSchema: RecordSchema
    let makeTransform: @Sendable () throws(RecordTableError) -> RecordTransform

    /// Fields matched by name: kept, moved, widened, renamed (`@Field(renamedFrom:)` or
    /// `options.renames`), narrowed when every value fits, added, and dropped when asked.
    public static func lightweight<Old: VersionedRecord, New: VersionedRecord>(
        from old: Old.Type, to new: New.Type, options: MigrationOptions = .init()
    ) -> MigrationStage {
        let from = Old.schema, to = New.schema, options = options.withDefaults(of: New.self)
        return MigrationStage(
            fromVersion: Old.schemaVersion, toVersion: New.schemaVersion, fromSchema: from, toSchema: to
        ) {
            () throws(RecordTableError) in
            try SchemaMapping(from: from, to: to, options: options).transform()
        }
    }

    /// Anything else: each old record becomes a new one through `transform`.
    public static func custom<Old: VersionedRecord, New: VersionedRecord>(
        from old: Old.Type, to new: New.Type, _ transform: @escaping @Sendable (Old) -> New
    ) -> MigrationStage {
        let compiled = customTransform(from: Old.self, to: New.self, transform)
        return MigrationStage(
            fromVersion: Old.schemaVersion, toVersion: New.schemaVersion, fromSchema: Old.schema, toSchema: New.schema
        ) {
            compiled
        }
    }
}

/// What a migration did.
public struct MigrationReport: Sendable {
    /// Whether the file was rewritten (false when it already had the target schema).
    public let migrated: Bool
    /// Records carried over.
    public let records: Int
    /// The schema before.
    public let from: RecordSchema
    /// The schema after.
    public let to: RecordSchema
    /// Leftovers of an earlier migration that crashed, removed first.
    public let removedLeftovers: [String]
}

/// Migration in place, safe from crashes at any moment (docs/EVOLUTION.md).
public enum TableMigration {
    /// The metadata key that records a table's schema version.
    public static let versionKey = "mappedrecords.schema-version"

    /// How long a migration waits for the writer lock before it fails with `writerActive`:
    /// a writer that is closing, or a process that another thread is starting (it holds copies
    /// of this process's descriptors until its `exec`), lets go within it.
    public static let defaultWriterWait: Duration = .seconds(1)

    /// Rewrites the table at `path` with `build`'s transform, or leaves it when `build` says
    /// there is nothing to do. Holds the writer lock throughout; checks every record first
    /// when the transform narrows; writes the new table unnamed beside the old one, syncs it,
    /// and renames it over the old path (then syncs the directory). A crash at any moment
    /// leaves the whole old table or the whole new one at the path.
    static func rewrite(
        path: String, waitForWriter: Duration = TableMigration.defaultWriterWait,
        build: (_ schema: RecordSchema, _ metadata: [(key: String, value: String)]) throws(RecordTableError) -> (
            RecordTransform, [(key: String, value: String)]
        )?
    ) throws(RecordTableError) -> MigrationReport {
        // A symbolic link is followed: the table it names is migrated in its own directory, and
        // the link stays a link (renaming over the link would replace it with a regular file).
        let path = try resolvingSymbolicLinks(path)
        let old = unsafe try TableStorage.open(
            path: path, writable: true, durability: .batch, waitForWriter: waitForWriter, ringsReaders: false)
        defer { try? old.close(committing: false) }
        // Validate before anything is written: another name of the file would keep the old
        // table, and a table whose owner this process cannot keep would change hands.
        let links = try old.linkCount()
        guard links == 1 else {
            throw RecordTableError(
                .invalidArgument, operation: "migrate", path: path,
                message:
                    "the file has \(links) hard links; a migration replaces one name, and the other \(links - 1) would keep the old table. Remove the other links first; nothing was changed"
            )
        }
        let ownership = try old.ownership()
        let user = system_geteuid()
        guard user == 0 || ownership.owner == user else {
            throw RecordTableError(
                .permissionDenied, operation: "migrate", path: path,
                message:
                    "the table belongs to uid \(ownership.owner), and only root could give the new table that owner; migrate it as its owner or as root. Nothing was changed"
            )
        }
        let leftovers = MemoryMappedFile.removeLeftoverReplacements(for: path)
        guard let (transform, metadata) = try build(old.header.schema, old.header.metadata) else {
            return unsafe MigrationReport(
                migrated: false, records: old.count, from: old.header.schema, to: old.header.schema,
                removedLeftovers: leftovers)
        }
        let count = unsafe old.count, chunk = 1 << 16
        if let check = unsafe transform.check {
            for start in stride(from: 0, to: count, by: chunk) {
                for index in start..<min(count, start + chunk) {
                    if let problem = unsafe check(UnsafeRawPointer(old.records + index * transform.sourceStride)) {
                        throw RecordTableError(
                            .valueDoesNotFit, operation: "migrate", path: path,
                            message: "record \(index), \(problem); nothing was changed")
                    }
                }
                old.advise(.doneWith, records: start..<min(count, start + chunk))
            }
        }
        let durability = Durability(rawValue: old.header.flags & 3) ?? .batch
        // The new file gets the old one's owner, group, mode and extended attributes (POSIX ACLs
        // among them) while it is still unnamed, before its doorbell (whose mode follows the
        // file's) exists: a private table stays private, a group's table stays the group's.
        let new = try TableStorage.create(
            path: path, schema: transform.targetSchema, metadata: metadata, capacity: count,
            durability: durability, replacing: true
        ) { (file: borrowing MemoryMappedFile) throws(MappedFileError) in
            try file.setOwnership(ownership)
            try old.copyExtendedAttributes(to: file)
        }
        defer { try? new.close() }
        // Records are built in a small buffer and written with pwrite: the new file's pages are
        // never faulted in through the mapping (which zero-fills each one first), and the old
        // mapping lets go of what it has read, so memory stays flat (it streams).
        let buffer = UnsafeMutableRawBufferPointer.allocate(
            byteCount: max(1, chunk * transform.targetStride), alignment: 64)
        defer { unsafe buffer.deallocate() }
        // Reading ahead: the chunk after next is asked for (MADV_WILLNEED starts its reads and
        // returns), so that on a cold page cache the disk reads while this chunk is converted
        // and written, instead of one page fault's readahead at a time.
        old.advise(.willNeed, records: 0..<min(count, 2 * chunk))
        for start in stride(from: 0, to: count, by: chunk) {
            let end = min(count, start + chunk)
            let ahead = start + 2 * chunk
            if ahead < count { old.advise(.willNeed, records: ahead..<min(count, ahead + chunk)) }
            let bytes = (end - start) * transform.targetStride
            unsafe buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            unsafe transform.applyRecords(
                UnsafeRawPointer(old.records + start * transform.sourceStride), buffer.baseAddress!, end - start)
            unsafe try new.writeRecords(UnsafeRawBufferPointer(rebasing: buffer[0..<bytes]), at: start)
            try new.publish(count: end)
            old.advise(.doneWith, records: start..<end)
        }
        try new.commit()
        try new.replaceFile()
        return MigrationReport(
            migrated: true, records: count, from: old.header.schema, to: transform.targetSchema,
            removedLeftovers: leftovers)
    }

    /// The file `path` names, when it is a symbolic link (followed to the end, relative links
    /// against their own directory); else `path` as it is.
    static func resolvingSymbolicLinks(_ path: String) throws(RecordTableError) -> String {
        guard system_isSymbolicLink(path) else { return path }
        guard let resolved = system_realpath(path) else {
            let value = lastErrno
            throw RecordTableError(
                value == ENOENT ? .notFound : .ioError, operation: "migrate", path: path, systemCall: "realpath",
                errno: value,
                message: value == ENOENT
                    ? "the symbolic link names a file that does not exist" : "cannot follow the symbolic link")
        }
        return resolved
    }

    /// Plans the migration of the table at `path` to `target`, without changing anything.
    public static func plan(
        path: String, to target: RecordSchema, options: MigrationOptions = .init()
    ) throws(RecordTableError) -> SchemaMapping {
        let table = try DynamicRecordTable.open(path: path)
        defer { try? table.close() }
        do {
            return try SchemaMapping(from: table.schema, to: target, options: options)
        } catch {
            throw RecordTableError(error.code, operation: "migrate", path: path, message: error.message, cause: error)
        }
    }

    /// Migrates the table at `path` to `target` by field names (see ``SchemaMapping``).
    /// - Complexity: O(*n*) in the records: one pass that reads each record once and writes
    ///   the new table, then one `fsync` and one rename; memory stays bounded (a window of the
    ///   old file at a time).
    @discardableResult
    public static func migrate(
        path: String, to target: RecordSchema, options: MigrationOptions = .init(),
        waitForWriter: Duration = defaultWriterWait
    ) throws(RecordTableError) -> MigrationReport {
        try migrate(path: path, to: target, options: options, version: nil, waitForWriter: waitForWriter)
    }

    /// ``migrate(path:to:options:waitForWriter:)``, recording `version` in the new table's metadata when given.
    static func migrate(
        path: String, to target: RecordSchema, options: MigrationOptions, version: Int?, waitForWriter: Duration
    ) throws(RecordTableError) -> MigrationReport {
        try rewrite(path: path, waitForWriter: waitForWriter) { (schema, metadata) throws(RecordTableError) in
            guard schema != target else { return nil }
            do throws(RecordTableError) {
                return (
                    try SchemaMapping(from: schema, to: target, options: options).transform(),
                    metadata.settingVersion(version)
                )
            } catch {
                throw RecordTableError(
                    error.code, operation: "migrate", path: path, message: error.message, cause: error)
            }
        }
    }
}

extension RecordTable {
    /// Migrates the table at `path` to `Record`'s schema by field names, in place: added
    /// fields are zero (or `Record.migrationDefault`'s, for ``RecordDefaults``), renames come
    /// from `@Field(renamedFrom:)` and `options`, widening is automatic, narrowing is checked,
    /// and dropping needs `options.drops`. Does nothing if the file already has the schema.
    /// - Throws: `schemaMismatch` (a field that cannot convert, an unasked drop),
    ///   `valueDoesNotFit` (naming the first record and field), `writerActive` (after
    ///   `waitForWriter`), `noSpace`
    ///   (the old table is untouched), and every error of opening.
    /// - Complexity: O(*n*) in the records: one pass, one `fsync`, one rename.
    @discardableResult
    public static func migrate(
        path: String, options: MigrationOptions = .init(), waitForWriter: Duration = TableMigration.defaultWriterWait
    ) throws(RecordTableError) -> MigrationReport {
        try TableMigration.migrate(
            path: path, to: Record.schema, options: options.withDefaults(of: Record.self),
            version: (Record.self as? any VersionedRecord.Type)?.schemaVersion, waitForWriter: waitForWriter)
    }
}

extension RecordTable where Record: VersionedRecord {
    /// Migrates the table at `path` through the stages of `plan`, from the version the file
    /// records (or whose schema it has) to `Record`'s, in one pass and one rewrite.
    /// - Complexity: O(*n*) in the records, whatever the number of stages: one pass.
    @discardableResult
    public static func migrate<Plan: RecordMigrationPlan>(
        path: String, plan: Plan.Type, waitForWriter: Duration = TableMigration.defaultWriterWait
    ) throws(RecordTableError) -> MigrationReport where Plan.Current == Record {
        try TableMigration.rewrite(path: path, waitForWriter: waitForWriter) {
            (schema, metadata) throws(RecordTableError) in
            func refuse(_ message: String) -> RecordTableError {
                RecordTableError(.schemaMismatch, operation: "migrate", path: path, message: message)
            }
            let recorded = metadata.first { $0.key == TableMigration.versionKey }.flatMap { Int($0.value) }
            let stages = Plan.stages
            guard
                var version = recorded
                    ?? (schema == Record.schema
                        ? Record.schemaVersion : stages.first { $0.fromSchema == schema }?.fromVersion)
            else {
                throw refuse(
                    "the file's schema is none of the plan's versions: "
                        + schema.differences(from: Record.schema, otherName: "\(Record.self)").joined(separator: "; "))
            }
            if version == Record.schemaVersion {
                guard schema == Record.schema else {
                    throw refuse("the file says version \(version), but its schema differs from \(Record.self)")
                }
                return nil
            }
            var transform: RecordTransform?
            var current = schema
            while version != Record.schemaVersion {
                guard let stage = stages.first(where: { $0.fromVersion == version }) else {
                    throw refuse("the plan has no stage from version \(version)")
                }
                guard stage.fromSchema == current else {
                    throw refuse(
                        "the file's schema is not the one of version \(version): "
                            + current.differences(from: stage.fromSchema, otherName: "version \(version)").joined(
                                separator: "; "))
                }
                let next = try stage.makeTransform()
                transform = transform.map { $0.then(next) } ?? next
                current = stage.toSchema
                version = stage.toVersion
            }
            return (transform!, metadata.settingVersion(Record.schemaVersion))
        }
    }
}

extension [(key: String, value: String)] {
    /// This metadata with the schema version set to `version` (left as it is when nil).
    func settingVersion(_ version: Int?) -> [(key: String, value: String)] {
        guard let version else { return self }
        return filter { $0.key != TableMigration.versionKey } + [(TableMigration.versionKey, String(version))]
    }
}

extension MigrationOptions {
    /// These options, with the defaults of `Record.migrationDefault` for added fields that have none.
    func withDefaults<Record: MappedRecord>(of _: Record.Type) -> MigrationOptions {
        guard let type = Record.self as? any RecordDefaults.Type else { return self }
        var options = self
        let record = type.defaultRecordBytes()
        for field in Record.schema.fields where options.defaults[field.name] == nil {
            options.defaults[field.name] = unsafe field.value(in: record.span.bytes)
        }
        return options
    }
}

extension RecordDefaults {
    /// `migrationDefault`'s bytes.
    static func defaultRecordBytes() -> [UInt8] {
        unsafe withUnsafeBytes(of: migrationDefault) { bytes in
            unsafe Array(bytes) + [UInt8](repeating: 0, count: MemoryLayout<Self>.stride - bytes.count)
        }
    }
}

/// A typed stage's transform: the old record is loaded (its Bool bytes made 0 or 1 first), and
/// the new one stored with zero padding.
private func customTransform<Old: MappedRecord, New: MappedRecord>(
    from _: Old.Type, to _: New.Type, _ body: @escaping @Sendable (Old) -> New
) -> RecordTransform {
    let boolOffsets = Old.schema.boolOffsets
    let paddingRuns = New.schema.paddingRuns
    let scratch = unsafe ScratchBox(
        UnsafeMutableRawPointer.allocate(
            byteCount: MemoryLayout<Old>.stride, alignment: max(16, MemoryLayout<Old>.alignment)))
    return unsafe RecordTransform(
        sourceStride: MemoryLayout<Old>.stride, targetStride: MemoryLayout<New>.stride, check: nil,
        applyRecords: { source, target, count in
            for record in 0..<count {
                unsafe scratch.pointer.copyMemory(
                    from: source + record * MemoryLayout<Old>.stride, byteCount: MemoryLayout<Old>.stride)
                for offset in boolOffsets where unsafe scratch.pointer.load(fromByteOffset: offset, as: UInt8.self) > 1
                {
                    unsafe scratch.pointer.storeBytes(of: 1, toByteOffset: offset, as: UInt8.self)
                }
                let new = unsafe body(scratch.pointer.load(as: Old.self))
                let output = unsafe target + record * MemoryLayout<New>.stride
                unsafe output.storeBytes(of: new, as: New.self)
                for run in paddingRuns {
                    unsafe (output + run.offset).initializeMemory(as: UInt8.self, repeating: 0, count: run.length)
                }
            }
        },
        targetSchema: New.schema)
}
