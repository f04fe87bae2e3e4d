import CMappedShims
import Foundation
import Glibc
import TestSupport
import Testing

@testable import RecordTable

// The shared format vectors (Tests/FormatVectors, written by make_vectors.py): every table gets
// exactly the outcome expected.json gives it, through open, refresh and waitForRecords alike.
// python/tests/test_format_vectors.py reads the same files and expects the same outcomes.

/// One vector of expected.json.
struct FormatVector: Decodable, CustomTestStringConvertible, Sendable {
    let file: String
    let description: String
    let thisBoot: Bool?
    let count: Int?
    let error: String?
    /// The next file the seal mark names; nil for an unsealed table.
    let sealed: Int?
    var testDescription: String { file }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("FormatVectors").path

    static let all: [FormatVector] = {
        struct Root: Decodable { let vectors: [FormatVector] }
        let data = FileManager.default.contents(atPath: folder + "/expected.json")!
        return try! JSONDecoder().decode(Root.self, from: data).vectors
    }()
}

@Suite("Shared format vectors, as Python reads them too", .timeLimit(.minutes(3)))
struct FormatVectorTests {
    let directory = TemporaryDirectory()

    @Test("every vector has its outcome", arguments: FormatVector.all)
    func vector(_ vector: FormatVector) throws {
        let path = directory.file(vector.file)
        var bytes = readWholeFile(FormatVector.folder + "/" + vector.file)
        if vector.thisBoot == true {
            bytes.replaceSubrange(
                TableFormat.liveOffset..<TableFormat.liveOffset + 16, with: TableStorage.currentBootIdentifier)
        }
        writeFile(path, bytes)
        if let expected = vector.error {
            let error = tableError { try DynamicRecordTable.open(path: path) }
            #expect(error?.code.rawValue == expected, "\(vector.description): \(String(describing: error))")
            return
        }
        let expected = try #require(vector.count)
        let table = try DynamicRecordTable.open(path: path)
        #expect(table.count == expected, "\(vector.description)")
        #expect(table.sealedSuccessor == vector.sealed, "seal: \(vector.description)")
        #expect(try table.refresh() == expected, "refresh: \(vector.description)")
        #expect(
            try table.waitForRecords(beyond: max(0, expected - 1), timeout: .zero) == expected,
            "waitForRecords: \(vector.description)")
        for index in 0..<expected where table.record(at: index)["id"] != .int(Int64(index)) {
            Issue.record("record \(index) of \(vector.file)")
            break
        }
        try table.close()
    }

    @Test("the folder holds exactly the vectors expected.json names")
    func everyFileIsAVector() {
        let files = Set((directoryListing(FormatVector.folder) ?? []).filter { $0.hasSuffix(".mrec") })
        #expect(files == Set(FormatVector.all.map(\.file)))
        #expect(FormatVector.all.count >= 30)
    }

    @Test("C's declaration of the layout (MappedTableLayout.h) agrees with TableFormat")
    func cLayoutAgrees() {
        #expect(Int(MREC_STRIDE_OFFSET) == TableFormat.strideOffset)
        #expect(Int(MREC_DATA_OFFSET_OFFSET) == TableFormat.dataOffsetOffset)
        #expect(Int(MREC_LIVE_AREA_OFFSET) == TableFormat.liveOffset)
        #expect(Int(MREC_LIVE_WORD_OFFSET) == TableFormat.liveCountOffset)
        #expect(Int(MREC_DOORBELL_WORD_OFFSET) == DoorbellFormat.liveAreaOffset)
        #expect(Int(MREC_SEAL_WORD_OFFSET) == TableFormat.sealWordOffset)
        #expect(Int(MREC_APPENDER_LOCK_OFFSET) == AppenderLock.wordOffset)
        #expect(Int(MREC_APPENDER_WAITERS_OFFSET) == AppenderLock.waitersOffset)
        #expect(UInt64(MREC_LIVE_COUNT_MASK) == UInt64(LiveCount.maximum))
    }
}
