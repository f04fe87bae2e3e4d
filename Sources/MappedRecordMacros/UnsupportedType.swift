// The property types a record cannot hold, judged from their spelling, and what to use instead.

import SwiftDiagnostics
import SwiftSyntax

/// A property type the macro refuses, and what to use instead.
enum UnsupportedType {
    case text(String)
    case array(element: String)
    case optional
    case variableSize(String)
    case existential(String)
    case reference(String)
    case pointer(String)
    case tuple

    func diagnostic(at type: TypeSyntax) -> Diagnostic {
        switch self {
        case .text(let name):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "'\(name)' has no fixed size in a file; use MappedString<N> for UTF-8 text of up to N bytes"),
                fixIt: FixIt(
                    message: RecordFixIt("use MappedString<32>"),
                    changes: [
                        .replace(
                            oldNode: Syntax(type),
                            newNode: Syntax(
                                TypeSyntax(stringLiteral: "MappedString<32>").with(
                                    \.trailingTrivia, type.trailingTrivia)))
                    ]))
        case .array(let element):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "an Array stores its elements elsewhere, on the heap; use InlineArray<N, \(element)> for a fixed number of elements"
                ),
                fixIt: FixIt(
                    message: RecordFixIt("use InlineArray<4, \(element)>"),
                    changes: [
                        .replace(
                            oldNode: Syntax(type),
                            newNode: Syntax(
                                TypeSyntax(stringLiteral: "InlineArray<4, \(element)>").with(
                                    \.trailingTrivia, type.trailingTrivia)))
                    ]))
        case .optional:
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "an Optional has no fixed layout in a file; store a sentinel value, or a Bool field beside the value"
                ))
        case .variableSize(let name):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "'\(name)' has no fixed size in a file; use MappedBytes<N> for N raw bytes, or InlineArray<N, T>"))
        case .existential(let name):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "'\(name)' is a reference to a value stored elsewhere; a record holds only plain values (numbers, Bool, MappedString, MappedBytes, InlineArray, @MappedRecord structs)"
                ))
        case .reference(let name):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "'\(name)' is a reference; another process, or this one after a restart, cannot follow it"))
        case .tuple:
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "a tuple's elements have no names in a file; use InlineArray<N, T> for elements of one type, or a nested @MappedRecord struct"
                ))
        case .pointer(let name):
            return Diagnostic(
                node: type,
                message: RecordDiagnostic.unsupported(
                    "'\(name)' is an address in this process's memory; it means nothing in another process or after a restart. Store an index or an offset instead"
                ))
        }
    }
}

extension MappedRecordMacro {
    /// Why a declared type cannot be a field, and the part of it to blame, judged from its
    /// spelling; nil when it may be one. Types this cannot see (a class behind a name, an enum)
    /// are refused by the compiler at the generated `.field` call, with a message from RecordTable.
    static func unsupported(_ type: TypeSyntax) -> (UnsupportedType, TypeSyntax)? {
        if let tuple = type.as(TupleTypeSyntax.self) {
            for element in tuple.elements { if let problem = unsupported(element.type) { return problem } }
            // A tuple of plain values: its elements have no names in a file.
            return tuple.elements.count == 1 ? unsupported(tuple.elements.first!.type) : (.tuple, type)
        }
        return problem(of: type).map { ($0, type) }
    }

    /// The problem with a type that is not a tuple.
    static func problem(of type: TypeSyntax) -> UnsupportedType? {
        if type.is(OptionalTypeSyntax.self) || type.is(ImplicitlyUnwrappedOptionalTypeSyntax.self) { return .optional }
        if type.is(ArrayTypeSyntax.self) {
            return .array(element: type.as(ArrayTypeSyntax.self)!.element.trimmedDescription)
        }
        if type.is(DictionaryTypeSyntax.self) { return .variableSize(type.trimmedDescription) }
        if let some = type.as(SomeOrAnyTypeSyntax.self) { return .existential(some.trimmedDescription) }
        if type.is(FunctionTypeSyntax.self) { return .reference(type.trimmedDescription) }
        guard let named = type.as(IdentifierTypeSyntax.self) else { return nil }
        let name = named.name.text
        switch name {
        case "String", "Substring", "Character", "StaticString": return .text(name)
        case "Array", "ContiguousArray", "ArraySlice":
            let element = named.genericArgumentClause?.arguments.first?.argument.trimmedDescription ?? "Element"
            return .array(element: element)
        case "Optional": return .optional
        case "Dictionary", "Set", "Data": return .variableSize(name)
        case "Any", "AnyObject", "AnyClass": return .existential(name)
        case "UnsafePointer", "UnsafeMutablePointer", "UnsafeRawPointer", "UnsafeMutableRawPointer",
            "OpaquePointer", "UnsafeBufferPointer", "UnsafeMutableBufferPointer", "UnsafeRawBufferPointer",
            "UnsafeMutableRawBufferPointer", "Unmanaged":
            return .pointer(name)
        default: return nil
        }
    }

    /// The count argument of `InlineArray<0, T>`, `[0 of T]`, `MappedString<0>` or
    /// `MappedBytes<0>` (at any depth): a field holds at least one element.
    static func emptyCount(in type: TypeSyntax) -> Syntax? {
        if let sugar = type.as(InlineArrayTypeSyntax.self) {
            if integer(sugar.count.argument.trimmedDescription) == 0 { return Syntax(sugar.count) }
            if case .type(let element) = sugar.element.argument { return emptyCount(in: element) }
            return nil
        }
        if let tuple = type.as(TupleTypeSyntax.self) {
            for element in tuple.elements { if let found = emptyCount(in: element.type) { return found } }
            return nil
        }
        guard let named = type.as(IdentifierTypeSyntax.self), let arguments = named.genericArgumentClause?.arguments
        else { return nil }
        switch named.name.text {
        case "InlineArray", "MappedString", "MappedBytes":
            if let count = arguments.first, integer(count.argument.trimmedDescription) == 0 { return Syntax(count) }
        default: break
        }
        for argument in arguments {
            if case .type(let inner) = argument.argument, let found = emptyCount(in: inner) { return found }
        }
        return nil
    }

    /// The fewest bytes a value of `type` takes, from what its spelling shows: the sizes of the
    /// standard scalars, `MappedString<N>` and `MappedBytes<N>`, and counts of `InlineArray`;
    /// 0 for a type behind a name (a nested record), whose size the macro cannot know.
    static func leastByteCount(of type: TypeSyntax) -> Int {
        if let tuple = type.as(TupleTypeSyntax.self) {
            return tuple.elements.reduce(0) { saturatingAdd($0, leastByteCount(of: $1.type)) }
        }
        if let sugar = type.as(InlineArrayTypeSyntax.self) {
            guard let count = integer(sugar.count.argument.trimmedDescription),
                case .type(let element) = sugar.element.argument
            else { return 0 }
            return saturatingMultiply(count, leastByteCount(of: element))
        }
        guard let named = type.as(IdentifierTypeSyntax.self) else { return 0 }
        let arguments = named.genericArgumentClause.map { Array($0.arguments) } ?? []
        switch named.name.text {
        case "Int8", "UInt8", "Bool", "CChar": return 1
        case "Int16", "UInt16", "Float16": return 2
        case "Int32", "UInt32", "Float", "Float32": return 4
        case "Int64", "UInt64", "Double", "Float64", "Int", "UInt": return 8
        case "MappedString", "MappedBytes":
            return arguments.first.flatMap { integer($0.argument.trimmedDescription) } ?? 0
        case "InlineArray":
            guard arguments.count == 2, let count = integer(arguments[0].argument.trimmedDescription),
                case .type(let element) = arguments[1].argument
            else { return 0 }
            return saturatingMultiply(count, leastByteCount(of: element))
        default: return 0
        }
    }

    /// An integer literal's value (`1_000`), or nil.
    static func integer(_ text: String) -> Int? { Int(text.split(separator: "_").joined()) }

    static func saturatingAdd(_ a: Int, _ b: Int) -> Int {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    static func saturatingMultiply(_ a: Int, _ b: Int) -> Int {
        let (product, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : product
    }
}
