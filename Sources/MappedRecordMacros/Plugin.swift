// The compiler plug-in that provides @MappedRecord, @Field and @Padding.

import SwiftCompilerPlugin
import SwiftSyntaxMacros

@main
struct MappedRecordPlugin: CompilerPlugin {
    let providingMacros: [Macro.Type] = [MappedRecordMacro.self, FieldMacro.self, PaddingMacro.self]
}
