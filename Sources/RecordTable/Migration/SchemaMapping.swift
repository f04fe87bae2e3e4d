import MemoryMappedFiles

// Schema evolution (docs/EVOLUTION.md): a table written with one schema is rewritten with
// another. Fields are matched by name; types widen on their own, narrow only when every stored
// value fits, and are dropped only when asked. The rewrite goes to a new, unnamed file beside
// the old one, which replaces the old path in one rename: the path always holds a whole table.

/// What to do beyond the rules when a table migrates.
public struct MigrationOptions: Sendable {
    /// Old field names to new ones (`--rename old=new`), beside the renames the target schema
    /// declares with `@Field(renamedFrom:)`.
    public var renames: [String: String]
    /// Values of added fields, by field name; other added fields are zero.
    public var defaults: [String: FieldValue]
    /// Old fields to drop. Dropping loses data, so a field of the old schema that the new one
    /// lacks must be named here.
    public var drops: Set<String>

    /// Options.
    public init(renames: [String: String] = [:], defaults: [String: FieldValue] = [:], drops: Set<String> = []) {
        self.renames = renames
        self.defaults = defaults
        self.drops = drops
    }
}

/// How one field of the new schema gets its value, or how an old one goes: kept, moved,
/// widened, narrowed, added or dropped. (Before this release: `MigrationStep`.)
public struct FieldMapping: Sendable, Hashable, CustomStringConvertible {
    /// What happens to the field.
    public enum Kind: String, Sendable, Hashable {
        /// The same type at the same offset.
        case kept
        /// The same type at another offset.
        case moved
        /// A wider type that holds every value of the old one.
        case widened
        /// A narrower type: every stored value is checked to fit before anything is written.
        case narrowed
        /// New: zero, or its default.
        case added
        /// An old field, dropped as asked.
        case dropped
    }

    /// What happens.
    public let kind: Kind
    /// The field in the new schema (nil when dropped).
    public let target: RecordField?
    /// The field in the old schema (nil when added).
    public let source: RecordField?
    /// The value of an added field (nil: zero).
    public let defaultValue: FieldValue?

    /// Whether the field changed its name.
    public var isRenamed: Bool { source != nil && target != nil && source!.name != target!.name }

    /// One line, as `mrec migrate` prints the plan: `widened  qty: i32 @ 16 -> qty: i64 @ 16`.
    public var description: String {
        let word = kind.rawValue.padding(9)
        switch kind {
        case .added: return word + "\(target!)" + " = " + (defaultValue?.description ?? "0")
        case .dropped: return word + "\(source!)"
        case .narrowed:
            return word + "\(source!) -> \(target!)" + (isRenamed ? " (renamed)" : "")
                + " (checked: every stored value must fit)"
        default: return word + "\(source!) -> \(target!)" + (isRenamed ? " (renamed)" : "")
        }
    }
}

/// How a table of one schema becomes a table of another: a ``FieldMapping`` per field, matched
/// by name. ``TableMigration/plan(path:to:options:)`` makes one for a file without changing it;
/// `RecordTable.migrate(path:options:)` and ``TableMigration/migrate(path:to:options:waitForWriter:)``
/// make one and run it. (Before this release: `MigrationPlan`.)
public struct SchemaMapping: Sendable {
    /// The old schema (the file's).
    public let source: RecordSchema
    /// The new schema.
    public let target: RecordSchema
    /// One mapping per field of the new schema, in its order, then the dropped fields.
    public let fields: [FieldMapping]

    /// Whether nothing changes: the same layout.
    public var isIdentity: Bool { source == target }

    /// Plans the migration from `source` to `target` by field names.
    /// - Throws: `schemaMismatch` for a field whose type cannot become the new one (say what a
    ///   custom stage should do), or an old field that would be dropped without being named in
    ///   `options.drops`; `invalidArgument` for a default that does not fit its field.
    public init(
        from source: RecordSchema, to target: RecordSchema, options: MigrationOptions = .init()
    ) throws(RecordTableError) {
        func refuse(_ message: String, code: RecordTableError.Code = .schemaMismatch) -> RecordTableError {
            RecordTableError(code, operation: "migrate", path: "", message: message)
        }
        var renames = options.renames  // old -> new
        for (new, old) in target.previousNames where renames[old] == nil { renames[old] = new }
        let newToOld = Dictionary(renames.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
        for (old, new) in options.renames {
            guard source.field(named: old) != nil else {
                throw refuse("--rename \(old)=\(new): the old schema has no field '\(old)'", code: .invalidArgument)
            }
            guard target.field(named: new) != nil else {
                throw refuse("--rename \(old)=\(new): the new schema has no field '\(new)'", code: .invalidArgument)
            }
        }
        for name in options.defaults.keys where target.field(named: name) == nil {
            throw refuse("a default for '\(name)': the new schema has no such field", code: .invalidArgument)
        }
        for name in options.drops where source.field(named: name) == nil {
            throw refuse("dropping '\(name)': the old schema has no such field", code: .invalidArgument)
        }
        var steps: [FieldMapping] = []
        var used = Set<String>()
        for field in target.fields {
            let old =
                newToOld[field.name].flatMap { source.field(named: $0) }
                ?? (renames[field.name] == nil ? source.field(named: field.name) : nil)
            guard let old, !options.drops.contains(old.name) else {
                let value = options.defaults[field.name]
                if let value, let problem = FieldCodec.encodingProblem(value, for: field) {
                    throw refuse("the default for '\(field.name)': \(problem)", code: .invalidArgument)
                }
                steps.append(FieldMapping(kind: .added, target: field, source: nil, defaultValue: value))
                continue
            }
            used.insert(old.name)
            guard let change = FieldCodec.change(from: old, to: field) else {
                throw refuse(
                    "field '\(field.name)': \(old.type.name)\(old.count == 1 ? "" : "[\(old.count)]") cannot become "
                        + "\(field.type.name)\(field.count == 1 ? "" : "[\(field.count)]") by itself; give the migration a custom stage"
                )
            }
            let kind: FieldMapping.Kind =
                change == .same
                ? (old.offset == field.offset ? .kept : .moved)
                : change == .widen ? .widened : .narrowed
            steps.append(FieldMapping(kind: kind, target: field, source: old, defaultValue: nil))
        }
        let lost = source.fields.filter { !used.contains($0.name) }
        let unasked = lost.filter { !options.drops.contains($0.name) }
        guard unasked.isEmpty else {
            throw refuse(
                "the new schema has no field for \(unasked.map { "'\($0.name)'" }.joined(separator: ", ")); "
                    + "dropping loses data, so ask for it (MigrationOptions.drops, mrec migrate --drop), or rename it")
        }
        steps += lost.map { FieldMapping(kind: .dropped, target: nil, source: $0, defaultValue: nil) }
        self.source = source
        self.target = target
        self.fields = steps
    }

    /// The record transform this plan compiles to: plain integer operations (no Strings or
    /// Arrays touched per record), adjacent copies merged into one, and the defaults of added
    /// fields in a template record that each new record starts from.
    func transform() -> RecordTransform {
        var operations: [FieldOperation] = []
        var template = [UInt8](repeating: 0, count: target.stride)
        for step in fields {
            guard let target = step.target else { continue }
            if let source = step.source {
                operations.append(FieldOperation(source: source, target: target))
            } else if let value = step.defaultValue {
                let bytes = FieldCodec.encode(value, for: target)
                template.replaceSubrange(target.offset..<target.offset + bytes.count, with: bytes)
            }
        }
        let checked = operations.filter(\.needsCheck)
        let compiled = CompiledOperation.compile(operations)
        let usesTemplate = template.contains { $0 != 0 }
        let sourceStride = source.stride, targetStride = target.stride
        return unsafe RecordTransform(
            sourceStride: sourceStride, targetStride: targetStride,
            check: checked.isEmpty
                ? nil
                : { record in
                    for index in checked.indices {
                        if let problem = unsafe checked[index].problem(in: record) { return problem }
                    }
                    return nil
                },
            applyRecords: { source, target, count in
                unsafe compiled.withUnsafeBufferPointer { operations in
                    unsafe template.withUnsafeBytes { template in
                        for record in 0..<count {
                            let input = unsafe source + record &* sourceStride,
                                output = unsafe target + record &* targetStride
                            if usesTemplate {
                                unsafe output.copyMemory(from: template.baseAddress!, byteCount: targetStride)
                            }
                            for index in operations.indices { unsafe operations[index].apply(input, output) }
                        }
                    }
                }
            },
            targetSchema: target)
    }
}

/// The name of ``SchemaMapping`` before this release.
@available(*, deprecated, renamed: "SchemaMapping")
public typealias MigrationPlan = SchemaMapping

/// The name of ``FieldMapping`` before this release.
@available(*, deprecated, renamed: "FieldMapping")
public typealias MigrationStep = FieldMapping

extension SchemaMapping {
    /// The name of ``fields`` before this release.
    @available(*, deprecated, renamed: "fields")
    public var steps: [FieldMapping] { fields }
}
