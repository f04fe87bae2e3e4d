import Glibc
import RecordTable
import TestSupport
import Testing

// The snippet, as a user writes it: nothing but `import RecordTable` and the macro.
@MappedRecord
struct Trade {
    var id: Int64
    var price: Double
    var qty: Int32
    var side: UInt8
}

@MappedRecord
struct Quote {
    var side: UInt8
    var price: Double
    var qty: Int32
}

@MappedRecord
struct Vector {
    var x: Float
    var y: Float
}

@MappedRecord
struct Body: Equatable {
    var id: UInt32
    var position: Vector
    var velocity: Vector
    @Field("display_name") var name: MappedString<6>
    var raw: MappedBytes<3>
    var alive: Bool
    var levels: InlineArray<2, Int16>
    var computed: Int { Int(id) * 2 }
    static let unit = "m"

    static func == (lhs: Body, rhs: Body) -> Bool {
        lhs.id == rhs.id && lhs.position.x == rhs.position.x && lhs.velocity.y == rhs.velocity.y && lhs.name == rhs.name
    }
}

extension Vector: Equatable {}

/// A hand-written schema that forgets `side`.
struct Forgetful: MappedRecord {
    var id: Int64
    var price: Double
    var side: UInt8
    static let schema = RecordSchema(Forgetful.self, fields: [.field("id", \.id), .field("price", \.price)])
}

/// A hand-written schema that forgets `c`, a byte that size arithmetic cannot miss-count:
/// the record's size is the same with or without it.
struct Sneaky: MappedRecord {
    var a: Int32
    var b: UInt8
    var c: UInt8
    var d: Int16
    static let schema = RecordSchema(Sneaky.self, fields: [.field("a", \.a), .field("b", \.b), .field("d", \.d)])
}

@Suite("@MappedRecord: declared once, checked, padding zeroed", .timeLimit(.minutes(3)))
struct MappedRecordTests {
    let directory = TemporaryDirectory()

    @Test("the issue's snippet runs, and mrec info lists all four fields at their real offsets")
    func tradeSnippet() throws {
        let path = directory.file("trades.mrec")
        let table = try RecordTable<Trade>.create(path: path, durability: .batch)
        try table.append(Trade(id: 1, price: 101.5, qty: 10, side: 1))
        try table.close()
        let info = mrec("info", path).1
        #expect(
            info.contains(
                """
                fields
                  id              i64         offset 0
                  price           f64         offset 8
                  qty             i32         offset 16
                  side            u8          offset 20
                """), "\(info)")
        #expect(mrec("dump", "--format", "csv", path).1 == "id,price,qty,side\n1,101.5,10,1")
    }

    @Test("nested records are flattened into dotted names; every field kind has its file type")
    func nestedAndEveryKind() throws {
        let fields = Body.schema.fields.map { "\($0)" }
        #expect(
            fields == [
                "id: u32 @ 0", "position.x: f32 @ 4", "position.y: f32 @ 8", "velocity.x: f32 @ 12",
                "velocity.y: f32 @ 16",
                "display_name: char[6] @ 20", "raw: bytes[3] @ 26", "alive: bool @ 29", "levels: i16[2] @ 30",
            ])
        #expect(Body.schema.stride == MemoryLayout<Body>.stride)
        let path = directory.file("bodies.mrec")
        let table = try RecordTable<Body>.create(path: path)
        let body = Body(
            id: 7, position: Vector(x: 1, y: 2), velocity: Vector(x: 3, y: 4), name: "probe",
            raw: MappedBytes([1, 2, 3]), alive: true, levels: [5, 6])
        try table.append(body)
        try table.close()
        let reopened = try RecordTable<Body>.open(path: path, access: .readOnly)
        #expect(reopened[0] == body)
        let csv = mrec("dump", "--format", "csv", path).1
        #expect(
            csv
                == "id,position.x,position.y,velocity.x,velocity.y,display_name,raw,alive,levels\n7,1.0,2.0,3.0,4.0,probe,010203,true,\"[5,6]\""
        )
    }

    @Test("a hand-written schema that leaves out a stored property traps, naming it")
    func forgottenFieldTraps() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Forgetful.schema
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(
            message.contains(
                "RecordSchema for Forgetful: the stored property 'side' (UInt8, 1 bytes at offset 16) is not in the schema"
            ), "\(message)")
        let sneaky = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Sneaky.schema
        }
        let sneakyMessage = String(decoding: sneaky?.standardErrorContent ?? [], as: UTF8.self)
        #expect(sneakyMessage.contains("'c' (UInt8, 1 bytes at offset 5)"), "\(sneakyMessage)")
    }

    @Test("padding bytes on disk are zero on every typed write path, whatever memory held")
    func paddingIsZeroed() throws {
        // Quote: side@0, 7 bytes of padding, price@8, qty@16, 4 bytes of tail padding (stride 24).
        func dirtyQuotes(_ count: Int) -> [Quote] {
            Array(unsafeUninitializedCapacity: count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).initializeMemory(as: UInt8.self, repeating: 0xAA)
                for index in 0..<count {
                    buffer[index].side = 1
                    buffer[index].price = Double(index)
                    buffer[index].qty = Int32(index)
                }
                initialized = count
            }
        }
        let many = dirtyQuotes(4)
        try #require(
            many.withUnsafeBytes { Array($0[1..<8]) + Array($0[3 * 24 + 20..<3 * 24 + 24]) }
                == [UInt8](repeating: 0xAA, count: 11),
            "the test needs records whose padding is not zero in memory")
        let dirty = many[0]  // a copy: its padding holds whatever the copy left there

        let path = directory.file("padding.mrec")
        let table = try RecordTable<Quote>.create(path: path, capacity: 16, durability: .none)
        // The file under the slots is dirty too, so even bytes a store does not cover must be zeroed.
        let descriptor = open(path, O_WRONLY)
        let garbage = [UInt8](repeating: 0xAA, count: 16 * 24)
        #expect(pwrite(descriptor, garbage, garbage.count, 4096) == garbage.count)
        close(descriptor)
        try table.append(dirty)  // append
        try table.append(contentsOf: many)  // bulk append
        try table.append(contentsOf: dirtyQuotes(4))
        table[5] = dirty  // subscript setter
        var swapped = dirty
        swap(&table[6], &swapped)  // _modify with a whole value
        let again = open(path, O_WRONLY)
        #expect(pwrite(again, garbage, 7, 4096 + 8 * 24 + 1) == 7)  // record 8's padding, dirty once more
        close(again)
        table[8].side = 2  // _modify of one field, over dirty padding
        table[0].qty = 9  // _modify of one field
        try table.close()
        let bytes = preadBytes(path, offset: 4096, count: 9 * 24)
        for record in 0..<9 {
            let base = record * 24
            #expect(
                Array(bytes[base + 1..<base + 8]) + Array(bytes[base + 20..<base + 24])
                    == [UInt8](repeating: 0, count: 11), "record \(record)")
        }
        let verify = mrec("verify", path)
        #expect(verify.1 == "\(path): ok, 9 records checked (every byte read, 11 padding bytes)", "\(verify)")
    }

    @Test("mrec schema --swift prints, for every table of the test corpus, a declaration that compiles and opens it")
    func schemaSwiftRoundTrip() throws {
        let source = String(decoding: readWholeFile(sourceDirectory() + "/GeneratedDeclarations.swift"), as: UTF8.self)
        let blocks = source.split(separator: "// mrec schema --swift --name ").dropFirst()
        #expect(blocks.count == 4)
        for block in blocks {
            let lines = block.split(separator: "\n", omittingEmptySubsequences: false)
            let arguments = lines[0].split(separator: " ").map(String.init)
            let declaration = lines.dropFirst().joined(separator: "\n").trimmingSuffix()
            let (end, output, _) = mrec(
                "schema", "--swift", "--name", arguments[0], repositoryRoot() + "/" + arguments[1])
            #expect(end == .exited(0))
            #expect(
                output.split(separator: "\n", omittingEmptySubsequences: false).dropFirst(2).joined(separator: "\n")
                    == declaration)
        }
        try expectOpens(CorpusMixed.self, "bools-chars-arrays.mrec")
        try expectOpens(CorpusEmpty.self, "empty.mrec")
        try expectOpens(CorpusPixel.self, "pixels-with-metadata.mrec")
        try expectOpens(CorpusGappy.self, "gaps-and-dots.mrec")
    }

    /// Opens a corpus table with its generated type, and checks every field's bytes against
    /// the untyped reader's.
    func expectOpens<Record: MappedRecord>(_: Record.Type, _ name: String) throws {
        let path = repositoryRoot() + "/Tests/FuzzCorpus/table-file/" + name
        let typed = try RecordTable<Record>.open(path: path, access: .readOnly)
        let dynamic = try DynamicRecordTable.open(path: path)
        #expect(typed.count == dynamic.count)
        for index in 0..<typed.count {
            let record = typed[index]
            let typedBytes = withUnsafeBytes(of: record) { Array($0) }
            dynamic.withRecordBytes(at: index) { bytes in
                for field in dynamic.schema.fields {
                    for offset in field.offset..<field.offset + field.size {
                        #expect(
                            typedBytes[offset] == bytes.unsafeLoad(fromByteOffset: offset, as: UInt8.self),
                            "\(name) record \(index) field \(field.name)")
                    }
                }
            }
        }
    }
}

/// This test file's directory.
func sourceDirectory(_ file: String = #filePath) -> String {
    String(file[..<file.lastIndex(of: "/")!])
}

/// The repository's root, two levels above this file's directory.
func repositoryRoot() -> String {
    var path = sourceDirectory()
    for _ in 0..<2 { path = String(path[..<path.lastIndex(of: "/")!]) }
    return path
}

extension StringProtocol {
    /// Without trailing newlines.
    func trimmingSuffix() -> String {
        var text = String(self)
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}
