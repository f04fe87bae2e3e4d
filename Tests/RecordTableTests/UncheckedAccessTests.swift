import Glibc
import TestSupport
import Testing

@testable import RecordTable

/// A record without Bools: `table[unchecked:]` reads it with one plain load.
@MappedRecord
struct PlainPoint: Equatable {
    var id: Int64
    var x: Double
}

@Suite("table[unchecked:]: the subscript for callers that checked their indices")
struct UncheckedAccessTests {
    let directory = TemporaryDirectory()

    @Test("reads what table[i] reads, with and without Bools, and a damaged Bool byte reads as true")
    func reads() throws {
        let path = directory.file("s.mrec")
        let table = try RecordTable<Sample>.create(path: path)
        try table.append(contentsOf: (0..<100).map { Sample(id: Int64($0)) })
        try table.close()
        let descriptor = open(path, O_WRONLY)
        var two: UInt8 = 2
        #expect(pwrite(descriptor, &two, 1, off_t(4096 + 32 * 7 + 24)) == 1)  // record 7's flag
        close(descriptor)

        let reader = try RecordTable<Sample>.open(path: path)
        for index in reader.indices {
            let unchecked = unsafe reader[unchecked: index]
            #expect(unchecked == reader[index], "record \(index)")
        }
        let damaged = unsafe reader[unchecked: 7]
        #expect(damaged.flag == true && damaged.id == 7)
        #expect(unsafe withUnsafeBytes(of: damaged) { $0[24] } == 1)  // mended in the copy

        let points = try RecordTable<PlainPoint>.create(path: directory.file("p.mrec"))
        try points.append(contentsOf: (0..<50).map { PlainPoint(id: Int64($0), x: Double($0) / 2) })
        #expect(points.indices.allSatisfy { unsafe points[unchecked: $0] == points[$0] })
        try points.close()
    }

    @Test("writes in place as table[i] does: padding zeroed, the next durable commit covers them")
    func writes() throws {
        let path = directory.file("w.mrec")
        let table = try RecordTable<Sample>.create(path: path, durability: .batch)
        try table.append(contentsOf: (0..<20).map { Sample(id: Int64($0)) })
        try table.commit()
        unsafe table[unchecked: 3] = Sample(id: 300)
        unsafe table[unchecked: 4].value = 42
        #expect(table[3] == Sample(id: 300))
        #expect(table[4].value == 42 && table[4].id == 4)
        try table.close()
        let reader = try RecordTable<Sample>.open(path: path)
        #expect(reader[3] == Sample(id: 300) && reader[4].value == 42)
    }
}
