// The declarations `mrec schema --swift` prints for each table of the test corpus, verbatim
// (the test `schemaSwiftRoundTrip` checks that the tool still prints exactly these, and that
// each one opens its file). They compile here, so the tool's output compiles.

import RecordTable

// mrec schema --swift --name CorpusMixed Tests/FuzzCorpus/table-file/bools-chars-arrays.mrec
@MappedRecord
struct CorpusMixed {
    var id: Int64
    var x: Double
    var name: MappedString<12>
    var v: InlineArray<3, Float>
    var ok: Bool
    @Padding var _padding0: UInt8
    @Padding var _padding1: UInt16
    @Padding var _padding2: UInt32
}

// mrec schema --swift --name CorpusEmpty Tests/FuzzCorpus/table-file/empty.mrec
@MappedRecord
struct CorpusEmpty {
    var id: Int64
}

// mrec schema --swift --name CorpusPixel Tests/FuzzCorpus/table-file/pixels-with-metadata.mrec
@MappedRecord
struct CorpusPixel {
    var red: Int16
    var green: Int16
    var blue: Int16
    var alpha: Int16
}

// mrec schema --swift --name CorpusGappy Tests/FuzzCorpus/table-file/gaps-and-dots.mrec
@MappedRecord
struct CorpusGappy {
    var flag: UInt8
    @Padding var _padding0: UInt8
    @Padding var _padding1: UInt16
    @Field("position.x") var position_x: Float
    @Field("position.y") var position_y: Float
    @Padding var _padding2: UInt32
    var when: Int64
    @Padding var _padding3: UInt16
    @Padding var _padding4: UInt8
    var code: MappedString<3>
    var `default`: UInt16
}
