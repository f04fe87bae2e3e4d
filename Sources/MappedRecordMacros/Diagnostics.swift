// The messages of @MappedRecord, each an error at the declaration it is about.

import SwiftDiagnostics
import SwiftSyntax

/// The macro's messages.
enum RecordDiagnostic: DiagnosticMessage {
    case notAStruct
    case noFields
    case lazy
    case tuplePattern
    case propertyWrapper(String)
    case unsupported(String)
    case fieldNeedsLiteral
    case observed
    case conditional
    case generic(String)
    case emptyCount
    case tooLarge(Int)
    case badName(String)
    case duplicateName(String, earlier: String)
    case tooManyFields

    var message: String {
        switch self {
        case .notAStruct: return "@MappedRecord applies to a struct: a record is a plain value copied into the file"
        case .noFields: return "@MappedRecord needs at least one stored property"
        case .lazy:
            return
                "a lazy property is filled in at first use; a record is stored as it is. Make it a plain stored property, or a computed one"
        case .tuplePattern: return "declare each stored property of a record on its own, so that it has a field name"
        case .propertyWrapper(let name):
            return
                "property wrapper '@\(name)' stores its wrapper, not the value; a record field must be the plain value"
        case .unsupported(let text): return text
        case .fieldNeedsLiteral:
            return
                "@Field needs a string literal: the macro reads the name from the source, and cannot evaluate a constant or an interpolation"
        case .observed:
            return
                "a stored property with willSet or didSet has no offset that MemoryLayout can report, so it cannot be a field; observe changes in a computed property over a plain stored one"
        case .conditional:
            return
                "@MappedRecord cannot tell which #if branch is active, and a file's layout must not change with build flags; declare the record's stored properties outside #if"
        case .generic(let name):
            return
                "@MappedRecord applies to a concrete struct: a file has one fixed layout, and a generic struct has one per type argument. Declare a struct for each layout (such as \(name)OfDouble) and mark it @MappedRecord"
        case .emptyCount:
            return
                "a field holds at least one element; a count of 0 stores nothing. Remove the property, or give it a count of 1 or more"
        case .tooLarge(let bytes):
            return
                "the record is at least \(bytes) bytes here, more than the format's 16 MiB (16,777,216 bytes) per record; store large data in a table of its own, and an index here"
        case .badName(let name):
            return
                "the field name '\(name)' is not 1 to 47 bytes of UTF-8 without NUL, as the file format needs; give it a shorter name with @Field(\"name\")"
        case .duplicateName(let name, let earlier):
            return
                "the field name '\(name)' is already the name of '\(earlier)'; each field needs its own name in the file. Rename one with @Field(\"name\")"
        case .tooManyFields:
            return
                "a record has at most 1,024 fields in the file format; group fields into InlineArray<N, T> or MappedBytes<N>"
        }
    }

    var diagnosticID: MessageID {
        let id: String
        switch self {
        case .notAStruct: id = "notAStruct"
        case .noFields: id = "noFields"
        case .lazy: id = "lazy"
        case .tuplePattern: id = "tuplePattern"
        case .propertyWrapper: id = "propertyWrapper"
        case .unsupported: id = "unsupportedType"
        case .fieldNeedsLiteral: id = "fieldNeedsLiteral"
        case .observed: id = "observedProperty"
        case .conditional: id = "conditionalProperty"
        case .generic: id = "genericStruct"
        case .emptyCount: id = "emptyCount"
        case .tooLarge: id = "recordTooLarge"
        case .badName: id = "badFieldName"
        case .duplicateName: id = "duplicateFieldName"
        case .tooManyFields: id = "tooManyFields"
        }
        return MessageID(domain: "MappedRecord", id: id)
    }

    var severity: DiagnosticSeverity { .error }
}

/// A fix-it's message.
struct RecordFixIt: FixItMessage {
    let message: String
    init(_ message: String) { self.message = message }
    var fixItID: MessageID { MessageID(domain: "MappedRecord", id: message) }
}

extension String {
    /// This text with every `target` replaced (no Foundation in a macro plugin).
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
