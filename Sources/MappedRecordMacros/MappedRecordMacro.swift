// The @MappedRecord macro: a plain struct becomes a record type whose schema lists every stored
// property, in declaration order, so no field can be forgotten. Offsets come from
// MemoryLayout.offset(of:) at run time (through RecordSchema), never from guesses here.
//
// What the format refuses at run time (docs/FORMAT.md, "Schema region") is refused here at
// compile time wherever the syntax shows it: more than 1,024 fields, a field name of more than
// 47 bytes or used twice, a count of 0, a record larger than 16 MiB. A nested record's fields
// and the size of a type behind a name are not visible to a macro; those limits are checked
// when the schema is first built, with a message that names the field.

import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxBuilder
import SwiftSyntaxMacros

/// The format's limits that the macro checks (RecordSchema's, docs/FORMAT.md).
enum FormatLimits {
    static let maximumFieldCount = 1024
    static let maximumNameLength = 47
    static let maximumStride = 1 << 24
}

/// `@MappedRecord`: adds the `MappedRecord` conformance and its `schema`.
public struct MappedRecordMacro: ExtensionMacro {
    /// The `MappedRecord` extension: the schema, one field per stored property, in order.
    public static func expansion(
        of node: AttributeSyntax,
        attachedTo declaration: some DeclGroupSyntax,
        providingExtensionsOf type: some TypeSyntaxProtocol,
        conformingTo protocols: [TypeSyntax],
        in context: some MacroExpansionContext
    ) throws -> [ExtensionDeclSyntax] {
        guard let structure = declaration.as(StructDeclSyntax.self) else {
            context.diagnose(Diagnostic(node: node, message: RecordDiagnostic.notAStruct))
            return []
        }
        if let generics = structure.genericParameterClause {
            context.diagnose(Diagnostic(node: generics, message: RecordDiagnostic.generic(structure.name.text)))
            return []
        }
        let typeName = type.trimmedDescription
        var entries: [String] = []
        var failed = false
        var wireNames: [String: String] = [:]  // wire name -> the property that has it
        var fieldCount = 0
        var leastSize = 0
        func refuse(_ node: some SyntaxProtocol, _ message: RecordDiagnostic) {
            context.diagnose(Diagnostic(node: node, message: message))
            failed = true
        }
        for member in structure.memberBlock.members {
            if let conditional = member.decl.as(IfConfigDeclSyntax.self) {
                // The macro sees only the members it is given, not which branch is active.
                if let stored = storedPropertyInside(conditional) { refuse(stored, .conditional) }
                continue
            }
            guard let variable = member.decl.as(VariableDeclSyntax.self) else { continue }
            if variable.modifiers.contains(where: { ["static", "class"].contains($0.name.text) }) { continue }
            if variable.modifiers.contains(where: { $0.name.text == "lazy" }) {
                refuse(variable, .lazy)
                continue
            }
            let marks = FieldMarks(variable.attributes)
            for wrapper in marks.others {
                refuse(wrapper, .propertyWrapper(wrapper.attributeName.trimmedDescription))
            }
            for argument in marks.nonLiterals { refuse(argument, .fieldNeedsLiteral) }
            for binding in variable.bindings {
                guard isStored(binding) else { continue }
                if let observers = observers(of: binding) {
                    refuse(observers, .observed)
                    continue
                }
                guard let pattern = binding.pattern.as(IdentifierPatternSyntax.self) else {
                    refuse(binding.pattern, .tuplePattern)
                    continue
                }
                // The type of a later binding in `var a, b: Int` is on the last one.
                let declaredType = binding.typeAnnotation?.type ?? variable.bindings.last?.typeAnnotation?.type
                if let declaredType {
                    if let (problem, offending) = unsupported(declaredType) {
                        context.diagnose(problem.diagnostic(at: offending))
                        failed = true
                        continue
                    }
                    if let empty = emptyCount(in: declaredType) {
                        refuse(empty, .emptyCount)
                        continue
                    }
                    leastSize += leastByteCount(of: declaredType)
                    if leastSize > FormatLimits.maximumStride {
                        refuse(declaredType, .tooLarge(leastSize))
                        continue
                    }
                }
                let property = pattern.identifier.trimmedDescription
                let bare = property.hasPrefix("`") ? String(property.dropFirst().dropLast()) : property
                if marks.isPadding {
                    entries.append(".padding(\\\(typeName).\(property))")
                    continue
                }
                let wireName = marks.wireName ?? bare
                if wireName.utf8.count > FormatLimits.maximumNameLength || wireName.isEmpty || wireName.contains("\0") {
                    refuse(binding.pattern, .badName(wireName))
                    continue
                }
                if let earlier = wireNames[wireName] {
                    refuse(binding.pattern, .duplicateName(wireName, earlier: earlier))
                    continue
                }
                wireNames[wireName] = bare
                fieldCount += 1
                if fieldCount == FormatLimits.maximumFieldCount + 1 { refuse(binding.pattern, .tooManyFields) }
                let renames = marks.renamedFrom.map { ", renamedFrom: \(literal($0))" } ?? ""
                entries.append(".field(\(literal(wireName)), \\\(typeName).\(property)\(renames))")
            }
        }
        guard !failed else { return [] }
        guard !entries.isEmpty else {
            context.diagnose(Diagnostic(node: node, message: RecordDiagnostic.noFields))
            return []
        }
        let access =
            structure.modifiers.first { ["public", "package"].contains($0.name.text) }.map { $0.name.text + " " } ?? ""
        let conformance = protocols.isEmpty ? "" : ": MappedRecord"
        let list = entries.map { "        \($0)," }.joined(separator: "\n")
        let source: DeclSyntax = """
            extension \(raw: typeName)\(raw: conformance) {
                /// The record's layout: every stored property, in declaration order (generated by @MappedRecord).
                \(raw: access)static let schema = RecordSchema(\(raw: typeName).self, fields: [
            \(raw: list)
                ])
            }
            """
        guard let extensionDeclaration = source.as(ExtensionDeclSyntax.self) else { return [] }
        return [extensionDeclaration]
    }

    /// Whether a binding stores a value: no accessors, or only observers (willSet, didSet).
    static func isStored(_ binding: PatternBindingSyntax) -> Bool {
        guard let block = binding.accessorBlock else { return true }
        switch block.accessors {
        case .getter: return false
        case .accessors(let list):
            return list.allSatisfy { ["willSet", "didSet"].contains($0.accessorSpecifier.text) }
        }
    }

    /// The `willSet`/`didSet` block of a stored property, if it has one: `MemoryLayout.offset(of:)`
    /// gives no offset for such a property, so it cannot be a field.
    static func observers(of binding: PatternBindingSyntax) -> AccessorBlockSyntax? {
        guard let block = binding.accessorBlock, case .accessors(let list) = block.accessors, !list.isEmpty else {
            return nil
        }
        return block
    }

    /// The first stored instance property declared inside an `#if`, at any depth.
    static func storedPropertyInside(_ conditional: IfConfigDeclSyntax) -> VariableDeclSyntax? {
        for clause in conditional.clauses {
            guard case .decls(let members) = clause.elements else { continue }
            for member in members {
                if let nested = member.decl.as(IfConfigDeclSyntax.self), let found = storedPropertyInside(nested) {
                    return found
                }
                guard let variable = member.decl.as(VariableDeclSyntax.self),
                    !variable.modifiers.contains(where: { ["static", "class"].contains($0.name.text) }),
                    variable.bindings.contains(where: isStored)
                else { continue }
                return variable
            }
        }
        return nil
    }

    /// A Swift string literal for `text`.
    static func literal(_ text: String) -> String {
        "\"" + text.replacingOccurrences("\\", with: "\\\\").replacingOccurrences("\"", with: "\\\"") + "\""
    }
}
