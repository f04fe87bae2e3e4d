import Glibc
import Synchronization

/// Table headers this process has decoded and validated, kept with their exact bytes, so that
/// opening a file whose header bytes are equal to one of them skips the decoding: the checksum,
/// the schema's field entries, their strings and the schema checks (about 8 µs of a 40 µs open
/// on the machine of docs/PERFORMANCE.md, "Open to first read").
///
/// The bytes compared are every byte that decoding reads: the fixed header (0..<512, which
/// holds the checksum) and the schema region (field entries and metadata). The commit slots and
/// the live area, which change as records are committed, are not part of it. Equal bytes
/// decode to an equal header, so a hit is as safe as decoding again; a header that differs in
/// any byte, damaged or not, is decoded and validated in full. What depends on the file rather
/// than the header bytes (the data offset lying inside the file) is checked on every open.
///
/// The cache is small (the last eight headers, each at most 16 KiB) and lives as long as the
/// process. Lookups and insertions take one lock.
enum ValidatedHeaders {
    /// One validated header and the bytes it was decoded from: the fixed header, then the
    /// schema region.
    private struct Entry: Sendable {
        let bytes: [UInt8]
        let header: TableHeader
    }

    private static let entries = Mutex<[Entry]>([])
    private static let capacity = 8
    /// Larger headers (a lot of metadata) are decoded every time.
    private static let largestCachedRegion = 16 << 10

    /// Where the bytes lie that a header's validity depends on: nil when `bytes` is too short
    /// to hold them, or the schema region is larger than the cache keeps.
    private static func keyRanges(_ bytes: RawSpan) -> (fixed: Range<Int>, schema: Range<Int>)? {
        guard bytes.byteCount >= TableFormat.pageSize else { return nil }
        let schemaLength = Int(bytes.loadLittleEndian(TableFormat.staticLengthOffset, as: UInt32.self))
        guard schemaLength <= largestCachedRegion, schemaLength <= bytes.byteCount - TableFormat.schemaOffset else {
            return nil
        }
        return (0..<TableFormat.slotOffsets[0], TableFormat.schemaOffset..<TableFormat.schemaOffset + schemaLength)
    }

    /// The header decoded before from bytes equal to these, if there is one.
    static func header(matching bytes: RawSpan) -> TableHeader? {
        guard let (fixed, schema) = keyRanges(bytes) else { return nil }
        return unsafe bytes.withUnsafeBytes { bytes in
            entries.withLock { entries in
                let index = entries.firstIndex { entry in
                    guard entry.bytes.count == fixed.count + schema.count else { return false }
                    return unsafe entry.bytes.withUnsafeBytes { stored in
                        // SAFETY: both ranges lie inside `bytes` (keyRanges checked them) and
                        // together fill `stored`, whose length was checked above.
                        let fixedEqual = unsafe memcmp(stored.baseAddress!, bytes.baseAddress!, fixed.count) == 0
                        return unsafe fixedEqual
                            && memcmp(
                                stored.baseAddress! + fixed.count, bytes.baseAddress! + schema.lowerBound,
                                schema.count) == 0
                    }
                }
                return index.map { entries[$0].header }
            }
        }
    }

    /// Keeps `header`, which was decoded and validated from `bytes`; the oldest entry goes when
    /// the cache is full.
    static func remember(_ header: TableHeader, from bytes: RawSpan) {
        guard let (fixed, schema) = keyRanges(bytes) else { return }
        var copy = [UInt8]()
        copy.reserveCapacity(fixed.count + schema.count)
        unsafe bytes.withUnsafeBytes { bytes in
            unsafe copy.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[fixed]))
            unsafe copy.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[schema]))
        }
        let entry = Entry(bytes: copy, header: header)
        entries.withLock { entries in
            if entries.count == capacity { entries.removeFirst() }
            entries.append(entry)
        }
    }
}
