// The bodies of the fuzz targets: what `make fuzz` runs under libFuzzer, and what `swift test`
// replays over the seed corpus in Tests/FuzzCorpus. Each takes any bytes and must neither
// trap nor hang: bad input is a thrown, typed error.

import Glibc
import MappedRegistry
import MemoryMappedFiles
import RecordTable

/// The fuzz targets, named as the corpus folders are.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A whole table file: header, schema, commit slots, count, then every record decoded and verified.
    case tableFile = "table-file"
    /// Record bytes decoded through a schema: `schema text`, a NUL, then record bytes.
    case recordDecoder = "record-decoder"
    /// A registry entry as LMDB stores it; what decodes must encode back the same.
    case registryEntry = "registry-entry"
    /// The `--layout` / `--schema` text of mrec; what parses must read back from its specification.
    case schemaText = "schema-text"

    /// Runs the target on `bytes`.
    public func run(_ bytes: [UInt8]) {
        switch self {
        case .tableFile: fuzzTableFile(bytes)
        case .recordDecoder: fuzzRecordDecoder(bytes)
        case .registryEntry: fuzzRegistryEntry(bytes)
        case .schemaText: fuzzSchemaText(bytes)
        }
    }
}

/// One memory file, reused: the table target writes each input into it and opens it by path.
nonisolated(unsafe) private var scratchDescriptor: Int32 = -1

private func fuzzTableFile(_ bytes: [UInt8]) {
    if scratchDescriptor < 0 {
        // A file in memory, unlinked at once and reached through /proc/self/fd.
        let path = "/dev/shm/mapped-records-fuzz-\(getpid())"
        scratchDescriptor = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        precondition(scratchDescriptor >= 0, "cannot create \(path)")
        unlink(path)
    }
    precondition(ftruncate(scratchDescriptor, 0) == 0)
    let written = bytes.withUnsafeBytes { pwrite(scratchDescriptor, $0.baseAddress, $0.count, 0) }
    precondition(written == bytes.count)
    guard let table = try? DynamicRecordTable.open(path: "/proc/self/fd/\(scratchDescriptor)") else { return }
    for index in 0..<min(table.count, 256) {
        let record = table.record(at: index)
        for field in table.schema.fields { _ = record.value(of: field).description }
    }
    _ = table.verify()
    try? table.close()
}

private func fuzzRecordDecoder(_ bytes: [UInt8]) {
    guard let split = bytes.firstIndex(of: 0) else { return }
    guard let schema = try? RecordSchema(parsing: String(decoding: bytes[..<split], as: UTF8.self)) else { return }
    let records = Array(bytes[(split + 1)...])
    for start in stride(from: 0, to: records.count - schema.stride + 1, by: schema.stride) {
        let record = Array(records[start..<start + schema.stride])
        for field in schema.fields {
            _ = field.value(in: record.span.bytes).description
            _ = field.value(in: record.span.bytes, bigEndian: true).description
        }
    }
}

private func fuzzRegistryEntry(_ bytes: [UInt8]) {
    guard let entry = try? RegistryEntry.decode(bytes, name: "fuzz", path: "fuzz") else { return }
    let again = try? RegistryEntry.decode(entry.encoded(), name: "fuzz", path: "fuzz")
    precondition(again == entry, "a registry entry did not survive encode and decode")
}

private func fuzzSchemaText(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    guard let schema = try? RecordSchema(parsing: text) else { return }
    let again = try? RecordSchema(parsing: schema.specification, stride: schema.stride)
    precondition(
        again?.fields == schema.fields && again?.stride == schema.stride,
        "schema '\(text)' did not read back from '\(schema.specification)'")
}
