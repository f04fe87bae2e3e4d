import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// The cache of validated headers (ValidatedHeaders.swift) may only skip work: whatever a file
/// holds, opening it must decide as a full decoding would.
@Suite("Record tables: headers validated before", .timeLimit(.minutes(3)))
struct ValidatedHeaderTests {
    let directory = TemporaryDirectory()

    /// A header whose data starts at 8192, so a file of 4096 bytes cannot hold its records.
    private func headerBytes(metadata value: String = "v") -> [UInt8] {
        let header = TableHeader(
            schema: Sample.schema, metadata: [(key: "k", value: value)], flags: 0, versionMinor: 1, dataOffset: 8192)
        return header.encoded(capacity: 4)
    }

    private func decode(_ bytes: [UInt8], fileSize: Int) throws(FormatProblem) -> TableHeader {
        let decoded = unsafe bytes.withUnsafeBytes { buffer in
            Result { () throws(FormatProblem) in try unsafe TableHeader.decode(buffer, fileSize: fileSize) }
        }
        return try decoded.get()
    }

    @Test("equal bytes decoded again still check the data offset against this file's size")
    func sizeIsCheckedOnEveryDecode() throws {
        let bytes = headerBytes()
        let first = try decode(bytes, fileSize: 8192 + 4 * 64)
        #expect(first.dataOffset == 8192)
        #expect(try decode(bytes, fileSize: 8192 + 4 * 64) == first)
        var problem: FormatProblem?
        do { _ = try decode(bytes, fileSize: 4096) } catch { problem = error }
        #expect(problem?.kind == .corrupt)
        #expect(problem?.message.contains("data offset") == true)
    }

    @Test("a header that differs in one byte from one decoded before is decoded in full")
    func anyChangedByteIsDecodedAgain() throws {
        let bytes = headerBytes(metadata: "before")
        _ = try decode(bytes, fileSize: 8192)
        // A damaged byte in the fixed header, in a field name and in the metadata: each is caught
        // by the checksum, though bytes equal to all the others were validated a moment ago.
        let metadataStart = TableFormat.schemaOffset + Sample.schema.fields.count * TableFormat.fieldEntrySize
        for offset in [40, TableFormat.schemaOffset + 1, metadataStart + 5] {
            var damaged = bytes
            damaged[offset] ^= 0x01
            var problem: FormatProblem?
            do { _ = try decode(damaged, fileSize: 8192) } catch { problem = error }
            #expect(problem?.kind == .corrupt, "byte \(offset)")
        }
        // A different valid header gives its own values, not the ones remembered.
        let other = try decode(headerBytes(metadata: "after!"), fileSize: 8192)
        #expect(other.metadata.first?.value == "after!")
    }

    @Test("a table damaged after it was opened once is refused when it is opened again")
    func reopeningADamagedTableFails() throws {
        let path = directory.file("damaged.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(Sample(id: 1))
        try table.close()
        try RecordTable<Sample>.open(path: path).close()
        // Rename field 0 without updating the checksum, as a stray write would.
        let descriptor = open(path, O_WRONLY)
        var letter: UInt8 = UInt8(ascii: "Z")
        #expect(pwrite(descriptor, &letter, 1, off_t(TableFormat.schemaOffset)) == 1)
        close(descriptor)
        let error = tableError { try RecordTable<Sample>.open(path: path) }
        #expect(error?.code == .corrupt)
    }
}
