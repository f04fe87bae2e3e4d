import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// Reads a whole file with plain syscalls.
func readWholeFile(_ path: String) -> [UInt8] {
    preadBytes(path, offset: 0, count: Int(fileStatus(path)?.st_size ?? 0))
}

/// What opening a damaged file gave: a typed error, or a table whose records are all intact.
enum OpenOutcome: Equatable {
    case error(RecordTableError.Code)
    case intact(count: Int)
    case wrongData(String)
}

/// Opens `path` both typed and untyped; any record that is not exactly `Sample(id: index)` is wrong data.
func openOutcome(_ path: String, bootIdentifier: [UInt8] = TableStorage.currentBootIdentifier) -> OpenOutcome {
    do {
        let storage = try TableStorage.open(
            path: path, writable: false, durability: .none, waitForWriter: nil, bootIdentifier: bootIdentifier)
        defer { try? storage.close() }
        guard storage.header.schema == Sample.schema else {
            return .wrongData("the schema changed: \(storage.header.schema)")
        }
        for index in 0..<storage.count {
            // Compare bytes: a damaged Bool must not even be loaded as a Bool.
            var expected = Sample(id: Int64(index))
            let same = withUnsafeBytes(of: &expected) { expected in
                memcmp(expected.baseAddress!, storage.records + index * 32, 32) == 0
            }
            if !same { return .wrongData("record \(index) of \(storage.count) is not Sample(id: \(index))") }
        }
        return .intact(count: storage.count)
    } catch {
        return .error(error.code)
    }
}

@Suite("Record tables: malformed files give typed errors, never traps or wrong data")
struct MalformedFileTests {
    let directory = TemporaryDirectory()

    /// A table of 10 samples, committed, closed; its bytes.
    func sampleTable(_ name: String) throws -> (path: String, bytes: [UInt8]) {
        let path = directory.file(name)
        let table = try RecordTable<Sample>.create(path: path, metadata: ["k": "v"])
        try table.append(contentsOf: (0..<10).map { Sample(id: Int64($0)) })
        try table.close()
        return (path, readWholeFile(path))
    }

    @Test("flipping every byte of the header, one at a time")
    func flipEveryHeaderByte() throws {
        let (path, original) = try sampleTable("flip.mrec")
        var outcomes: [String: Int] = [:]
        for offset in 0..<4096 {
            var damaged = original
            damaged[offset] ^= 0xFF
            writeFile(path, damaged)
            let outcome = openOutcome(path)
            switch outcome {
            case .wrongData(let detail): Issue.record("byte \(offset): wrong data presented as valid: \(detail)")
            case .intact(let count): #expect(count == 10 || count == 0, "byte \(offset): count \(count)")
            case .error: break
            }
            outcomes["\(outcome)", default: 0] += 1
        }
        print("flipEveryHeaderByte: \(outcomes.sorted { $0.key < $1.key })")
        #expect(outcomes["error(RecordTable.RecordTableError.Code.corrupt)"] ?? 0 > 0)
    }

    @Test("truncating at every offset within the first two pages")
    func truncateEverywhere() throws {
        let (path, original) = try sampleTable("cut.mrec")
        for length in 0..<8192 {
            writeFile(path, Array(original.prefix(length)))
            switch openOutcome(path) {
            case .wrongData(let detail): Issue.record("length \(length): \(detail)")
            case .intact(let count):
                #expect(length >= 4096 + 10 * 32 && count == 10, "length \(length) opened with \(count) records")
            case .error(let code):
                #expect(length < 4096 + 10 * 32, "length \(length) failed with \(code)")
                if length == 0 { #expect(code == .notATable) }
            }
        }
    }

    @Test("a byte-swapped header is byteOrderMismatch; a future version is unsupportedVersion")
    func foreignHeaders() throws {
        let (path, original) = try sampleTable("foreign.mrec")
        var swapped = original
        swapped.replaceSubrange(8..<12, with: [0x0A, 0x0B, 0x0C, 0x0D])
        writeFile(path, swapped)
        #expect(openOutcome(path) == .error(.byteOrderMismatch))

        var future = original
        future[12] = 2  // major version 2
        writeFile(path, future)
        #expect(openOutcome(path) == .error(.unsupportedVersion))

        var newFeature = original
        newFeature[23] = 0x01  // an incompatible-feature flag bit
        writeFile(path, newFeature)
        #expect(openOutcome(path) == .error(.unsupportedVersion))

        var minorBump = original
        minorBump[14] = 9  // a newer minor version is readable (after fixing the checksum)
        minorBump.withUnsafeMutableBytes { bytes in
            let length = Int(UnsafeRawBufferPointer(bytes).loadLittleEndian(56, as: UInt32.self))
            bytes.storeLittleEndian(TableHeader.checksum(UnsafeRawBufferPointer(bytes), staticLength: length), at: 16)
        }
        writeFile(path, minorBump)
        #expect(openOutcome(path) == .intact(count: 10))
    }

    @Test("a count past the file's end is corrupt; a damaged commit slot falls back to the other")
    func badCounts() throws {
        let (path, original) = try sampleTable("count.mrec")
        let otherBoot = [UInt8](repeating: 9, count: 16)  // after a reboot only the commit slots count
        #expect(openOutcome(path, bootIdentifier: otherBoot) == .intact(count: 10))
        var tooMany = original
        tooMany.withUnsafeMutableBytes { bytes in
            CommitSlot(generation: 99, count: 1_000_000, capacity: 2_000_000).encode(into: bytes, at: 512)
        }
        writeFile(path, tooMany)
        #expect(openOutcome(path, bootIdentifier: otherBoot) == .error(.corrupt))

        var bothBad = original
        bothBad[512] ^= 1
        bothBad[1024] ^= 1
        writeFile(path, bothBad)
        #expect(openOutcome(path, bootIdentifier: otherBoot) == .error(.corrupt))

        var latestBad = original
        let latest = CommitSlot.latest(original.withUnsafeBytes { $0 })!
        latestBad[TableFormat.slotOffsets[Int(latest.generation % 2)] + 8] ^= 0x40
        writeFile(path, latestBad)
        #expect(openOutcome(path, bootIdentifier: otherBoot) == .intact(count: 0))  // the older commit point
    }

    @Test("a schema that overflows the stride is corrupt, even with a valid checksum")
    func schemaOverflowingStride() throws {
        let (path, original) = try sampleTable("schema.mrec")
        var bad = original
        bad.withUnsafeMutableBytes { bytes in
            bytes.storeLittleEndian(UInt32(30), at: TableFormat.schemaOffset + 52)  // 'id' (8 bytes) at offset 30 of 32
            let length = Int(UnsafeRawBufferPointer(bytes).loadLittleEndian(56, as: UInt32.self))
            bytes.storeLittleEndian(TableHeader.checksum(UnsafeRawBufferPointer(bytes), staticLength: length), at: 16)
        }
        writeFile(path, bad)
        #expect(openOutcome(path) == .error(.corrupt))
        let message = tableError { try DynamicRecordTable.open(path: path) }?.message ?? ""
        #expect(message.contains("overflows the stride 32"))
    }

    @Test("growing on a full file system is noSpace, and the table keeps its count")
    func noSpace() throws {
        try withSmallFileSystem(in: directory, size: "1m") { mountPoint in
            let path = mountPoint + "/full.mrec"
            let table = try RecordTable<Sample>.create(path: path, durability: .batch)
            var appended = 0
            var failure: RecordTableError?
            while failure == nil && appended < 1_000_000 {
                do {
                    try table.append(Sample(id: Int64(appended)))
                    appended += 1
                } catch let error as RecordTableError {
                    failure = error
                }
            }
            #expect(failure?.code == .noSpace)
            #expect(table.count == appended && appended > 1000)
            try table.close()
            #expect(openOutcome(path) == .intact(count: appended))
        }
    }

    @Test("numpy reads a table zero-copy with the schema's structured dtype")
    func numpyInterop() throws {
        let (probe, _) = run(["/bin/sh", "-c", "python3 -c 'import numpy' 2>/dev/null"])
        guard probe == .exited(0) else {
            print("skipped: python3 with numpy is not installed")
            return
        }
        let path = directory.file("numpy.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<1000).map { Sample(id: Int64($0)) })
        try table.close()
        let schema = Sample.schema
        let names = schema.fields.map { "'\($0.name)'" }.joined(separator: ",")
        let formats = schema.fields.map { "'\($0.numpyFormat)'" }.joined(separator: ",")
        let offsets = schema.fields.map { String($0.offset) }.joined(separator: ",")
        let script = """
            import numpy as np
            dtype = np.dtype({'names': [\(names)], 'formats': [\(formats)], 'offsets': [\(offsets)], 'itemsize': \(schema.stride)})
            records = np.memmap('\(path)', dtype=dtype, mode='r', offset=4096, shape=(1000,))
            print(int(records['id'].sum()), float(records['value'].sum()), int(records['flag'].sum()), records['tag'][7].decode(), int(records['check'][999]))
            """
        let (end, output) = run(["/usr/bin/env", "python3", "-c", script])
        #expect(end == .exited(0))
        #expect(output == "499500 249750.0 500 r7 \(Sample.expectedCheck(999))")
    }
}
