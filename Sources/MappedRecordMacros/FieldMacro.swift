// @Field and @Padding: marks on stored properties that @MappedRecord reads. They expand to
// nothing; what they say is read from the syntax, so their arguments must be literals.

import SwiftDiagnostics
import SwiftSyntax
import SwiftSyntaxMacros

/// `@Field("wire_name")` and `@Field(renamedFrom: "old")`: marks read by @MappedRecord; they add nothing.
public struct FieldMacro: PeerMacro {
    /// Nothing: the attribute is a mark.
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol,
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] { [] }
}

/// `@Padding`: a stored property that holds no field (bytes the file leaves unused); @MappedRecord reads it.
public struct PaddingMacro: PeerMacro {
    /// Nothing: the attribute is a mark.
    public static func expansion(
        of node: AttributeSyntax, providingPeersOf declaration: some DeclSyntaxProtocol,
        in context: some MacroExpansionContext
    ) throws -> [DeclSyntax] { [] }
}

/// The attributes of a stored property that the macro reads.
struct FieldMarks {
    var wireName: String?
    var renamedFrom: String?
    var isPadding = false
    /// Attributes that are neither @Field nor @Padding: property wrappers, refused.
    var others: [AttributeSyntax] = []
    /// @Field arguments that are not plain string literals: the macro cannot read them.
    var nonLiterals: [ExprSyntax] = []

    init(_ attributes: AttributeListSyntax) {
        for element in attributes {
            guard let attribute = element.as(AttributeSyntax.self) else { continue }
            switch attribute.attributeName.trimmedDescription {
            case "Field", "RecordTable.Field":
                for argument in attribute.arguments?.as(LabeledExprListSyntax.self) ?? [] {
                    // A name the macro cannot read would silently become the property's name.
                    guard let text = argument.expression.as(StringLiteralExprSyntax.self)?.representedLiteralValue
                    else {
                        nonLiterals.append(argument.expression)
                        continue
                    }
                    if argument.label?.text == "renamedFrom" { renamedFrom = text } else { wireName = text }
                }
            case "Padding", "RecordTable.Padding":
                isPadding = true
            case "available", "usableFromInline", "inlinable":
                continue
            default:
                others.append(attribute)
            }
        }
    }
}
